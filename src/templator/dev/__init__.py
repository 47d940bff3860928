"""Development tooling beside the runtime: the embedded local stack (`localstack`), seed
data (`seed`) and the end-to-end demo (`demo`).

Only the commands that use them import these packages (`templator up`, `demo`, `db seed`
and the few others that find a running local stack), each inside the command, so the
API and the domains never load them; `tests/test_architecture.py` checks it.
"""
