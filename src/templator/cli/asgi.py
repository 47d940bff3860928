"""The API as `templator serve` runs it: uvicorn imports this factory in each worker."""

from __future__ import annotations

from fastapi import FastAPI

from templator import app
from templator.cli.stack import find_local_stack


def create_app() -> FastAPI:
    """`templator.app.create_app`, with a running local stack's stores used when no
    store URL is configured."""
    return app.create_app(find_stack=find_local_stack)
