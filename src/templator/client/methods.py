"""The clients' methods, listed once for both: each is a `Method` of a `calls.py` builder,
which, read from a client, sends the built call with that client's `send` — so on
`Client` it answers the result and on `AsyncClient` an awaitable of it (the type
checker is told as much by `__get__`'s overloads)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from templator.client import calls

if TYPE_CHECKING:
    from templator.client.aio import AsyncClient
    from templator.client.sync import Client

P = ParamSpec("P")
T = TypeVar("T")


class Method(Generic[P, T]):
    """A call of `calls.py` as a method: `client.name(*args)` is
    `client.send(calls.name(*args))`."""

    def __init__(self, build: Callable[P, calls.Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> Method[P, T]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, T]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self
        build = self.build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client.send(build(*args, **kwargs))

        return method


class Calls:
    """Every API call of `calls.py`, as methods of `Client` and `AsyncClient`."""

    create_project = Method(calls.create_project)
    create_session = Method(calls.create_session)
    submit_session = Method(calls.submit_session)
    get_session = Method(calls.get_session)
    session_state = Method(calls.session_state)
    cancel_session = Method(calls.cancel_session)
    attempts = Method(calls.attempts)
    upload_design = Method(calls.upload_design)
    direct_upload = Method(calls.direct_upload)
    confirm_design = Method(calls.confirm_design)
    list_designs = Method(calls.list_designs)
    claim = Method(calls.claim)
    heartbeat = Method(calls.heartbeat)
    release = Method(calls.release)
    record_phase = Method(calls.record_phase)
    append_logs = Method(calls.append_logs)
    complete = Method(calls.complete)
    fail = Method(calls.fail)
    template_from_session = Method(calls.template_from_session)
    project_templates = Method(calls.project_templates)
    export_module = Method(calls.export_module)
