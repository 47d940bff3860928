"""The Redis client: short timeouts, retries with backoff, a client name per process role.

`REDIS_URL` chooses the kind: `redis://` (or `rediss://`) one server,
`redis+sentinel://` the master the sentinels name, `redis+cluster://` a Redis Cluster
(redis-py's asyncio `RedisCluster`, which routes each command to the node of its slot).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError

from templator.config import ProcessRole, Settings

RedisClient: TypeAlias = Redis | RedisCluster
"""What `create_client` returns: one server (direct or through a sentinel) or a cluster."""
K = TypeVar("K", str, bytes)


def describe_url(url: str) -> str:
    """host:port/db of a Redis URL, without credentials, for messages."""
    rest = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    return rest or url


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def _hosts(netloc: str, default_port: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """(username, password, [(host, port)…]) of `[user:password@]host[:port][,host…]`."""
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    found: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, default_port
        if not host or not port.isdigit():
            raise ValueError(f"bad address {item!r} in REDIS_URL")
        found.append((host.strip("[]"), int(port)))
    return unquote(username) or None, unquote(password) or None, found


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    """`redis+sentinel://[:password@]host:26379[,host:26379…]/service[/db]`; TLS to the
    master with `rediss+sentinel://`; `?sentinel_password=` when the sentinels have one."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int
    password: str | None
    sentinel_password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        """Parse a sentinel URL; ValueError naming what is wrong."""
        parts = urlsplit(url)
        _, password, sentinels = _hosts(parts.netloc, "26379")
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError(
                "REDIS_URL redis+sentinel://host:26379/SERVICE[/DB] needs the master's name"
            )
        if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ValueError(f"bad path {parts.path!r} in REDIS_URL: expected /SERVICE[/DB]")
        query = parse_qs(parts.query)
        return cls(
            sentinels=sentinels,
            service=unquote(path[0]),
            db=int(path[1]) if len(path) == 2 else 0,
            password=password,
            sentinel_password=query.get("sentinel_password", [""])[0] or None,
            tls=parts.scheme.startswith("rediss"),
        )


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """`redis+cluster://[[user]:password@]host:6379[,host:6379…][?ssl_ca_certs=…]`: any
    of the cluster's nodes (the client learns the others from them); TLS with
    `rediss+cluster://`. A cluster has database 0 only."""

    nodes: list[tuple[str, int]]
    username: str | None
    password: str | None
    tls: bool
    ssl_ca_certs: str | None

    @classmethod
    def parse(cls, url: str) -> ClusterUrl:
        """Parse a cluster URL; ValueError naming what is wrong."""
        parts = urlsplit(url)
        username, password, nodes = _hosts(parts.netloc, "6379")
        if parts.path.strip("/") not in ("", "0"):
            raise ValueError(
                f"bad path {parts.path!r} in REDIS_URL: a Redis Cluster has database 0 only"
            )
        query = parse_qs(parts.query)
        return cls(
            nodes=nodes,
            username=username,
            password=password,
            tls=parts.scheme.startswith("rediss"),
            ssl_ca_certs=query.get("ssl_ca_certs", [""])[0] or None,
        )


def is_cluster(client: RedisClient) -> bool:
    """Whether `client` talks to a Redis Cluster (keys of one command must share a slot)."""
    return isinstance(client, RedisCluster)


def by_slot(client: RedisClient, keys: Iterable[K]) -> list[list[K]]:
    """`keys` in groups that share a hash slot, in first-seen order: one group on a
    single server, where any keys may go together."""
    if not isinstance(client, RedisCluster):
        return [list(keys)]
    groups: dict[int, list[K]] = {}
    for key in keys:
        groups.setdefault(client.keyslot(key), []).append(key)
    return list(groups.values())


def create_client(settings: Settings, *, url: str, role: ProcessRole) -> RedisClient:
    """Build the pooled async client; connections are opened lazily.

    A blocking pool: under a burst wider than the pool, callers wait (up to the socket
    timeout) for a free connection instead of failing with "Too many connections",
    which would push the cache into bypass for no reason.
    """
    scheme = urlsplit(url).scheme
    if scheme in SENTINEL_SCHEMES:
        return _sentinel_client(settings, SentinelUrl.parse(url), role=role)
    if scheme in CLUSTER_SCHEMES:
        return _cluster_client(settings, ClusterUrl.parse(url), role=role)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        retry=_retry(settings, RedisConnectionError),
        retry_on_error=[RedisConnectionError],
        client_name=f"templator-{role.value}",
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def _retry(settings: Settings, *errors: type[RedisError]) -> Retry:
    """Retry a command whose connection failed (a pooled connection the server closed or
    reset, a restart, a refused connect), with a fresh connection, after a short backoff.

    Not a timeout: a server that did not answer within `REDIS_SOCKET_TIMEOUT` is hung or
    overloaded, and waiting for it again would multiply the time before the cache serves
    from PostgreSQL. The asyncio Retry: the synchronous one would return the command's
    coroutine unawaited, so its failure would escape every retry.
    """
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), settings.redis_retries, errors)


def _sentinel_client(settings: Settings, url: SentinelUrl, *, role: ProcessRole) -> Redis:
    """A client of the master that the sentinels name, found again after a failover:
    a connection error or a READONLY reply from a demoted master makes the pool ask the
    sentinels, and the retry policy sends the command to the new master."""
    timeouts = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        url.sentinels,
        sentinel_kwargs={**timeouts, "password": url.sentinel_password},
        **timeouts,
    )
    client: Redis = sentinel.master_for(
        url.service,
        redis_class=Redis,
        db=url.db,
        password=url.password,
        ssl=url.tls,
        max_connections=settings.redis_max_connections,
        retry=_retry(settings, RedisConnectionError, ReadOnlyError),
        retry_on_error=[RedisConnectionError, ReadOnlyError],
        client_name=f"templator-{role.value}",
        health_check_interval=30,
    )
    return client


def _cluster_client(settings: Settings, url: ClusterUrl, *, role: ProcessRole) -> RedisCluster:
    """A client of a Redis Cluster: it reads the slot map from the nodes given, sends
    each command to the node of its keys' slot, and follows MOVED/ASK redirections
    (re-reading the map) when slots move or a replica is promoted."""
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in url.nodes],
        username=url.username,
        password=url.password,
        ssl=url.tls,
        ssl_ca_certs=url.ssl_ca_certs,
        max_connections=settings.redis_max_connections,  # per node
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        # The cluster client's own loop retries timeouts too, re-reading the slot map.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), settings.redis_retries),
        client_name=f"templator-{role.value}",
        health_check_interval=30,
    )
