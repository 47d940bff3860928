"""Health probing, below every domain: each store checked on its own (`checks`), the
schema's revision against the code's (`schema`, `revisions`), and the one-shot light
probes of `templator health` (`probes`). The connection layer's readiness and the
command both report through `checks.run_checks`."""
