"""The embedded local stack: private PostgreSQL, Redis and SeaweedFS under var/."""

from templator.dev.localstack.process import LocalStackError
from templator.dev.localstack.stack import (
    LocalStack,
    StackAlreadyRunning,
    StackUrls,
    discover_running_stack,
    sweep_stale,
)

__all__ = [
    "LocalStack",
    "LocalStackError",
    "StackAlreadyRunning",
    "StackUrls",
    "discover_running_stack",
    "sweep_stale",
]
