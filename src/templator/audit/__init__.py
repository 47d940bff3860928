"""The audit trail of sensitive actions."""
