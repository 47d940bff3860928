"""The `templator` command line."""
