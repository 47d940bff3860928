"""Bounded waits for something a background task does (no timed assertions: the bound
only stops a test that would otherwise hang)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable


async def until(
    condition: Callable[[], bool], *, within: float = 10.0, every: float = 0.02
) -> None:
    """Return once `condition()` holds; AssertionError when it has not within `within` s."""
    for _ in range(math.ceil(within / every)):
        if condition():
            return
        await asyncio.sleep(every)
    if not condition():
        raise AssertionError(f"not so within {within} s")
