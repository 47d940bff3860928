"""pgAdmin 4 for a developer: installed from PyPI into its own environment on first use,
run in desktop mode on 127.0.0.1 with our database registered (`templator pgadmin`)."""
