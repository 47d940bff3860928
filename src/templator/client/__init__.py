"""The Python client of the Templator API (sync `Client`, async `AsyncClient`, on httpx),
typed with the server's own schemas, and the worker runtime on it (`client.worker`)."""

from templator.client.aio import AsyncClient
from templator.client.errors import ApiError, ApiUnavailable
from templator.client.sync import Client

__all__ = ["ApiError", "ApiUnavailable", "AsyncClient", "Client"]
