"""Why the 100-user flow's first call (`create project`) looked slow, in one run:

* 100 users whose HTTP clients are built as each user starts (what bench_api did) against
  the same 100 users with their clients built before any timer starts;
* on a fresh server, three bursts of 100 concurrent `POST /projects` (the first one
  opens every pooled connection) and one of `POST /sessions`, with the ratio of the
  cold burst to the warm ones.

    .venv/bin/python -m benchmarks.bench_first_writes
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
import uvloop

from benchmarks.bench_api import api_env, bootstrap, serve, user_client
from benchmarks.common import machine, scratch_database
from templator.config import PROJECT_ROOT
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS

USERS = 100


async def _timed(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
    started = time.perf_counter()
    response = await client.request(method, path, **kw)
    response.raise_for_status()
    return time.perf_counter() - started, response.json()


async def _burst(clients: list[httpx.AsyncClient], method: str, path: str, **kw: Any) -> Any:
    results = await asyncio.gather(*(_timed(c, method, path, **kw) for c in clients))
    return statistics.median(r[0] for r in results) * 1000, results[0][1]


async def _first_call(base: str, token: str, *, built_first: bool) -> float:
    """p50 of each user's first `POST /projects`, clients built late or first."""
    latencies: list[float] = []

    async def user(client: httpx.AsyncClient | None) -> None:
        client = client or user_client(base, token)
        async with client:
            latencies.append(
                (await _timed(client, "POST", "/api/v1/projects", json={"name": "L"}))[0]
            )

    clients = [user_client(base, token) for _ in range(USERS)] if built_first else [None] * USERS
    await asyncio.gather(*(user(c) for c in clients))
    return statistics.median(latencies) * 1000


def main() -> None:
    folder = PROJECT_ROOT / "var" / f"bench-first-s3-{uuid.uuid4().hex[:6]}"
    s3 = SeaweedFS(folder, access_key="bench", secret_key="bench-secret")
    s3.start()
    try:
        with scratch_database() as url:
            env = api_env(url, s3.endpoint_url, namespace="bench-first")
            token = bootstrap(env)
            port = free_port()
            server = serve(env, port)
            base = f"http://127.0.0.1:{port}"
            print(machine())
            try:

                async def bursts() -> None:
                    clients = [user_client(base, token) for _ in range(USERS)]
                    cold, project = await _burst(
                        clients, "POST", "/api/v1/projects", json={"name": "L"}
                    )
                    warm = [
                        (await _burst(clients, "POST", "/api/v1/projects", json={"name": "L"}))[0]
                        for _ in range(2)
                    ]
                    sessions, _ = await _burst(
                        clients, "POST", "/api/v1/sessions", json={"project_id": project["id"]}
                    )
                    for client in clients:
                        await client.aclose()
                    print(
                        f"fresh server, {USERS} concurrent POST /projects: cold burst p50 {cold:.0f} ms, then {warm[0]:.0f} and {warm[1]:.0f} ms; POST /sessions burst {sessions:.0f} ms"
                    )
                    print(f"ratio cold/warm burst: {cold / statistics.mean(warm):.2f}x")
                    late = await _first_call(base, token, built_first=False)
                    first = await _first_call(base, token, built_first=True)
                    print(
                        f"{USERS} users' first call: p50 {late:.0f} ms with clients built as users start, {first:.0f} ms with them built first"
                    )
                    print(f"ratio late/first: {late / first:.2f}x")

                uvloop.run(bursts())
            finally:
                server.terminate()
                server.wait(15)
    finally:
        s3.stop()


if __name__ == "__main__":
    main()
