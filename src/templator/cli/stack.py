"""The commands' one way to a running `templator up` stack: its discovery lives in the
development tooling (`templator.dev.localstack`), loaded only when a store URL is unset."""

from __future__ import annotations

from pathlib import Path

from templator.store_urls import RunningStack


def find_local_stack(var_dir: Path) -> RunningStack | None:
    """The stores of the `templator up` running on `var_dir`, or None (a `StackFinder`)."""
    from templator.dev.localstack import discover_running_stack

    return discover_running_stack(var_dir)
