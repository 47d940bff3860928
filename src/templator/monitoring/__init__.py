"""Store metrics (collector, pools, history) and maintenance (health probing is
`templator.health`)."""
