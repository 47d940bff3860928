"""REDIS_URL=redis+cluster://…: a real 3-master Redis Cluster that the test starts itself.

Every multi-key operation of ours must stay within one hash slot or be split per slot:
the cache's conditional store with its generation key, the fast path's MGET of token and
template, invalidations of many keys (with their messages), failed-login counting, the
progress pub/sub and the cache sweep. A cross-slot command fails on a cluster
(`CROSSSLOT`), and the cache would then bypass Redis: these tests count on no bypass, no
refusal and no warning at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import delete

from templator.api.auth_limit import AuthFailureLimiter
from templator.api.sse import ProgressHub
from templator.app import create_app
from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService, record_key
from templator.cache import CACHE_REFUSED, Cache
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.exceptions import TooManyFailedAuthentications
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from templator.models import User, UserRole
from templator.monitoring.maintenance import sweep_session_keys
from templator.redis import ClusterUrl, create_client, is_cluster
from templator.template.service import template_key
from templator.user.schemas import UserCreate
from templator.user.service import UserService
from tests.support.factories import hubspot_config


def _cluster_ports(count: int) -> tuple[int, ...]:
    """`count` free ports whose cluster-bus ports (port + 10000) are free too: each test
    process (pytest-xdist worker) starts a cluster of its own."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535 or port in found:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        found.append(port)
    return tuple(found)


NODES = 3


def _wait(
    check: Callable[[], bool],
    what: str,
    timeout: float = 30.0,
    alive: Callable[[], str | None] = lambda: None,
) -> None:
    """Wait for `check`; `alive` names a reason to stop waiting (a node that exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if (gone := alive()) is not None:
            raise NodeExited(gone)
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class NodeExited(Exception):
    """A node's redis-server exited while starting (its port was taken meanwhile)."""


def _cluster_ok(ports: tuple[int, ...]) -> bool:
    return all(
        redis.Redis(port=port).cluster("info").get("cluster_state") == "ok"  # type: ignore[no-untyped-call]
        for port in ports
    )


def _all_answer(ports: tuple[int, ...]) -> bool:
    return all(redis.Redis(port=port).ping() for port in ports)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(10)


def _start_nodes(folder: Path) -> tuple[tuple[int, ...], list[subprocess.Popen[bytes]]]:
    """Three cluster-enabled nodes on ports picked now, not at import: under pytest-xdist a
    module is imported minutes before its fixture runs, and ports picked then may have been
    taken by another test's server in between (CI saw the nodes never answer). A node that
    exits at once lost such a race: pick again, at most three times; its log says why."""
    failures: list[str] = []
    for _ in range(3):
        ports = _cluster_ports(NODES)
        processes = [
            subprocess.Popen(
                [
                    *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
                    *("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"),
                    *("--save", "", "--appendonly", "no", "--dir", str(folder)),
                    *("--logfile", str(folder / f"node-{port}.log")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]

        def exited(
            procs: list[subprocess.Popen[bytes]] = processes, at: tuple[int, ...] = ports
        ) -> str | None:
            for port, process in zip(at, procs, strict=True):
                if process.poll() is not None:
                    log = folder / f"node-{port}.log"
                    tail = log.read_text()[-500:] if log.exists() else "(no log)"
                    return f"node on port {port} exited {process.returncode}: {tail}"
            return None

        try:
            _wait(
                functools.partial(_all_answer, ports),
                f"the nodes on ports {ports} to start",
                alive=exited,
            )
            return ports, processes
        except NodeExited as gone:
            failures.append(str(gone))
            _stop(processes)
        except BaseException:
            _stop(processes)
            raise
    raise AssertionError("the cluster's nodes would not start: " + " | ".join(failures))


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[tuple[int, ...]]:
    """Three masters with 16384 slots between them (no replicas), gone after the module."""
    folder = Path(tempfile.mkdtemp(prefix="templator-cluster-"))
    ports, processes = _start_nodes(folder)
    try:
        subprocess.run(
            [
                *("redis-cli", "--cluster", "create"),
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait(lambda: _cluster_ok(ports), "the cluster to agree on its slots")
        yield ports
    finally:
        _stop(processes)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(cluster_ports: tuple[int, ...]) -> str:
    """The cluster's URL, naming two of its three nodes (the client finds the third)."""
    return f"redis+cluster://127.0.0.1:{cluster_ports[0]},127.0.0.1:{cluster_ports[1]}"


@pytest.fixture
async def cluster_conns(cluster: str, settings: Settings) -> AsyncIterator[Connections]:
    """The connection layer on the test database and the cluster, with an empty cluster."""
    conf = settings.model_copy(update={"redis_url": cluster})
    assert conf.database_url is not None
    conns = Connections(
        conf, urls=StoreUrls(conf.database_url, cluster, None), role=ProcessRole.TEST
    )
    assert isinstance(conns.redis, RedisCluster)
    await conns.redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield conns
    await conns.redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    await conns.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("templator")
    ]


def _refused() -> float:
    return sum(CACHE_REFUSED.labels(reason)._value.get() for reason in ("proof", "expired"))


def test_cluster_urls_parse() -> None:
    url = ClusterUrl.parse(
        "rediss+cluster://app:p%40ss%2Fw@10.0.0.1:7000,10.0.0.2?ssl_ca_certs=/ca"
    )
    assert url.nodes == [("10.0.0.1", 7000), ("10.0.0.2", 6379)]
    assert (url.username, url.password, url.tls, url.ssl_ca_certs) == ("app", "p@ss/w", True, "/ca")
    with pytest.raises(ValueError, match="database 0 only"):
        ClusterUrl.parse("redis+cluster://127.0.0.1:7000/3")
    with pytest.raises(ValueError, match="bad address"):
        ClusterUrl.parse("redis+cluster://127.0.0.1:port")


def test_a_key_and_its_generation_share_a_slot_and_things_spread_over_slots(
    cluster: str, settings: Settings
) -> None:
    client = create_client(settings, url=cluster, role=ProcessRole.TEST)
    assert isinstance(client, RedisCluster) and is_cluster(client)
    cache = Cache(client, namespace="ns", default_ttl=60)
    assert cache.key("template", "T1") == "ns:{template:T1}"
    assert cache.key("session", "S1", "state") == "ns:{session:S1}:state"
    assert cache.channel("session:S1") == "ns:session:S1"  # channels carry no tag
    for key in (cache.key("template", "T1"), cache.key("token", "abc")):
        assert client.keyslot(key) == client.keyslot(cache._generation_key(key))
    slots = {client.keyslot(cache.key("template", str(i))) for i in range(100)}
    assert len(slots) > 90


async def test_the_api_caches_invalidates_and_answers_the_fast_path_through_a_cluster(
    cluster_conns: Connections, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    conns, cache = cluster_conns, cluster_conns.cache
    refused_before = _refused()
    async with unit_of_work(conns.sessionmaker, cache) as session:
        user = await UserService(session, cache).create(
            UserCreate(email=f"{new_id()}@example.com", role=UserRole.USER), origin=CLI
        )
        token = await TokenService(session, cache).create(
            user.id, TokenCreate(name="cluster"), origin=CLI
        )
    headers = {"Authorization": f"Bearer {token.token}"}
    app = create_app(conns.settings, connections=conns)
    hub = ProgressHub(conns.redis)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http,
        ):
            project = await http.post("/api/v1/projects", json={"name": "C"}, headers=headers)
            assert project.status_code == 201, project.text
            pid = project.json()["id"]
            body = {
                "project_id": pid,
                "name": "Hero",
                "html_content": "<section>{{ module.title }}</section>",
                "hubspot_config": hubspot_config(),
            }
            created = await http.post("/api/v1/templates", json=body, headers=headers)
            assert created.status_code == 201, created.text
            tid = created.json()["id"]

            hits = cache.stats.hits
            first = await http.get(f"/api/v1/templates/{tid}", headers=headers)  # the route
            second = await http.get(f"/api/v1/templates/{tid}", headers=headers)  # fast path
            assert first.status_code == second.status_code == 200
            assert second.content == first.content
            assert (
                cache.stats.hits - hits >= 3
            )  # the token once by the route, both by the fast path
            assert await conns.redis.exists(template_key(cache, tid)) == 1

            renamed = await http.patch(
                f"/api/v1/templates/{tid}", json={"name": "Hero 2"}, headers=headers
            )
            assert renamed.status_code == 200, renamed.text
            assert await conns.redis.exists(template_key(cache, tid)) == 0  # invalidated
            for _ in range(2):
                read = await http.get(f"/api/v1/templates/{tid}", headers=headers)
                assert read.status_code == 200 and read.json()["name"] == "Hero 2"

            listed = await http.get("/api/v1/projects", headers=headers)  # cached per user
            assert listed.status_code == 200 and [p["id"] for p in listed.json()["items"]] == [pid]

            # Session progress: invalidation of its state key and the message, one script
            # on the key's node, delivered through the cluster's pub/sub.
            sid = (
                await http.post("/api/v1/sessions", json={"project_id": pid}, headers=headers)
            ).json()["id"]
            async with hub.listen(cache.channel(f"session:{sid}")) as listener:
                started = await http.post(f"/api/v1/sessions/{sid}/start", headers=headers)
                assert started.status_code == 200, started.text
                message = await listener.next(10)
            assert message is not None and message["status"] == "PROCESSING"
            assert (await http.get(f"/api/v1/sessions/{sid}", headers=headers)).status_code == 200

            # A revoked token: its cached record is invalidated, the fast path and the
            # route refuse it.
            tokens = (await http.get("/api/v1/tokens", headers=headers)).json()
            revoked = await http.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=headers)
            assert revoked.status_code == 200, revoked.text
            assert await conns.redis.exists(record_key(cache, token.token.split("_")[1])) == 0
            assert (await http.get(f"/api/v1/templates/{tid}", headers=headers)).status_code == 401
    finally:
        await hub.close()
        async with conns.sessionmaker() as session:
            await session.execute(delete(User).where(User.id == user.id))
            await session.commit()

    assert cache.stats.bypasses == 0
    assert _refused() == refused_before
    assert _warnings(caplog) == []


async def test_a_mass_invalidation_spans_every_node_and_publishes_once(
    cluster_conns: Connections,
) -> None:
    client = cluster_conns.redis
    assert isinstance(client, RedisCluster)
    cache = Cache(client, namespace="mass", default_ttl=60)
    keys = [cache.key("template", str(i)) for i in range(1234)]
    await client.mset_nonatomic({key: b"cached" for key in keys})
    owners = {client.get_node_from_key(key).name for key in keys}
    assert len(owners) == NODES  # the keys live on every master
    hub = ProgressHub(client)
    try:
        async with hub.listen(cache.channel("events")) as listener:
            await cache.invalidate_and_publish(keys, [("events", {"n": 1}), ("events", {"n": 2})])
            assert [await listener.next(5), await listener.next(5)] == [{"n": 1}, {"n": 2}]
            assert await listener.next(0.3) is None  # published once, not per slot
    finally:
        await hub.close()
    assert await client.exists(*keys) == 0
    generations = await client.mget_nonatomic([cache._generation_key(key) for key in keys])
    assert set(generations) == {b"1"}
    assert cache.available and cache.stats.bypasses == 0


async def test_peek_reads_keys_of_several_slots_in_order(cluster_conns: Connections) -> None:
    cache = cluster_conns.cache
    keys = [cache.key("thing", str(i)) for i in range(20)]
    for i, key in enumerate(keys[::2]):
        await cluster_conns.redis.set(key, cache.seal(key, "0", {"v": i}, 60))
    found = await cache.peek(*keys)
    assert found == [{"v": i // 2} if i % 2 == 0 else None for i in range(20)]
    assert cache.available


async def test_a_full_node_pool_bypasses_one_call_without_marking_redis_down(
    cluster: str, settings: Settings
) -> None:
    """redis-py's cluster client raises at once when a node's pool is full (it does not
    wait): those calls read the source of truth, and the cache stays available."""
    conf = settings.model_copy(update={"redis_max_connections": 1})
    client = create_client(conf, url=cluster, role=ProcessRole.TEST)
    cache = Cache(client, namespace="full", default_ttl=60)
    key = cache.key("thing", "busy")

    async def load() -> dict[str, int]:
        await asyncio.sleep(0)
        return {"v": 1}

    try:
        answers = await asyncio.gather(
            *(cache.get_or_load(key, load, encode=dict, decode=dict) for _ in range(20))
        )
        assert answers == [{"v": 1}] * 20
        assert cache.stats.bypasses > 0  # some calls found the node's one connection busy
        assert cache.available  # ... and Redis was not taken for down
        assert await cache.get_or_load(key, load, encode=dict, decode=dict) == {"v": 1}
        assert cache.stats.hits >= 1
    finally:
        await client.aclose()


async def test_failed_logins_are_counted_in_the_cluster(cluster_conns: Connections) -> None:
    limiter = AuthFailureLimiter(cluster_conns.redis, namespace="limit", limit=2, window=60)
    await limiter.failed("10.0.0.9")
    await limiter.failed("10.0.0.9")
    with pytest.raises(TooManyFailedAuthentications):
        await limiter.failed("10.0.0.9")
    assert await cluster_conns.redis.get("limit:authfail:10.0.0.9") == b"3"
    assert not limiter._local  # counted in Redis, not in-process


async def test_the_cache_sweep_scans_every_node(cluster_conns: Connections) -> None:
    client = cluster_conns.redis
    cache = Cache(client, namespace="sweep", default_ttl=60)
    stray = [cache.key("session", f"s{i}", "state") for i in range(300)]
    live = [cache.key("session", f"l{i}", "state") for i in range(30)]
    await client.mset_nonatomic({key: b"x" for key in stray})
    for key in live:
        await client.set(key, b"x", ex=300)
    await client.set("sweep:session:old:state", b"x")  # the format before hash tags
    await client.set(cache.key("template", "keep"), b"x")

    swept = await sweep_session_keys(client, "sweep", batch=50)

    assert (swept.scanned, swept.deleted) == (331, 301)
    assert await client.exists(*stray, "sweep:session:old:state") == 0
    assert await client.exists(*live, cache.key("template", "keep")) == 31
