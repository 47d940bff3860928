"""The work queue: AI sessions claimed by workers under leases, retried, rescued, fair
across tenants (docs/work-queue.md)."""
