"""Users: who uses Templator, and with which role."""
