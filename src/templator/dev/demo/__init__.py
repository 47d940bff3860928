"""`templator demo`: one realistic Templator session end to end, over the HTTP API."""
