"""The scrape of /metrics with the store collector's cache warm, beside its baselines.

In-process, on the real app over ASGI (no network), against a migrated PostgreSQL, Redis
and a SeaweedFS bucket with objects; the app has served requests on a dozen routes first
so the HTTP histograms have series:

* ours, warm — GET /metrics while the collector's figures are fresh (METRICS_CACHE_SECONDS):
  what nearly every Prometheus scrape costs;
* ours, cold — the same with the cache off: every scrape asks every store (the raw cost
  of the store queries, INFO and the bucket listing that the cache saves);
* baselines — prometheus_client's generate_latest of an empty registry, and of the
  process's default registry (what /metrics served before the store collector).

Prints median and p95 milliseconds per scrape, ours-warm / default-registry, and checks
the issue's target: ≤ 50 ms warm.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/15 .venv/bin/python -m benchmarks.bench_metrics [--quick]
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from benchmarks.common import bench_redis_url, machine, parser, scratch_database
from templator.app import create_app
from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.seaweedfs import SeaweedFS

REDIS_URL = bench_redis_url(15)
TARGET_MS = 50.0


async def _time(name: str, runs: int, step: Callable[[], Awaitable[object]]) -> float:
    for _ in range(min(20, runs)):  # warm-up
        await step()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    median = statistics.median(samples)
    p95 = samples[int(0.95 * (len(samples) - 1))]
    print(f"  {name:<44} median {median:8.3f} ms   p95 {p95:8.3f} ms")
    return median


async def _scrapes(conf: Settings, s3_url: str, runs: int, *, label: str) -> float:
    assert conf.database_url and conf.redis_url
    urls = StoreUrls(conf.database_url, conf.redis_url, s3_url)
    conns = Connections(conf, urls=urls, role=ProcessRole.BENCH)
    app = create_app(conf, connections=conns)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                for path in ("/health", "/health/ready", "/api/v1/templates", "/api/v1/users/me",
                             "/api/v1/projects", "/dashboard", "/nope"):  # fmt: skip
                    for _ in range(5):
                        await http.get(path)
                size = len((await http.get("/metrics")).content)
                print(f"  (one scrape: {size:,} bytes)")

                async def scrape() -> None:
                    response = await http.get("/metrics")
                    assert response.status_code == 200

                return await _time(label, runs, scrape)
    finally:
        await conns.close()


async def run(runs: int) -> None:
    folder = PROJECT_ROOT / "var" / f"bench-metrics-{uuid.uuid4().hex[:8]}"
    s3 = SeaweedFS(folder, access_key="bench", secret_key="bench-secret")
    s3.start()
    try:
        with scratch_database() as url:
            base = {
                "_env_file": None,
                "database_url": url,
                "redis_url": REDIS_URL,
                "s3_endpoint_url": s3.endpoint_url,
                "s3_access_key": "bench",
                "s3_secret_key": "bench-secret",
                "s3_bucket": f"bench-{uuid.uuid4().hex[:8]}",
                "cache_namespace": "bench-metrics",
            }
            warm = Settings(**base, metrics_cache_seconds=3600, metrics_object_store_seconds=3600)  # type: ignore[arg-type]
            cold = Settings(**base, metrics_cache_seconds=0, metrics_object_store_seconds=0)  # type: ignore[arg-type]
            probe = Connections(
                warm, urls=StoreUrls(url, REDIS_URL, s3.endpoint_url), role=ProcessRole.BENCH
            )
            store = probe.require_store()
            store.ensure_bucket()
            for i in range(200):
                store.client.put_object(
                    Bucket=store.bucket, Key=f"designs/s{i}/d.png", Body=b"d" * 512
                )
            await probe.close()
            print(f"bench_metrics on {machine()}, {runs} scrapes each")
            empty = CollectorRegistry()

            async def empty_registry() -> None:
                generate_latest(empty)

            async def default_registry() -> None:
                generate_latest(REGISTRY)

            base_empty = await _time(
                "baseline: generate_latest(empty registry)", runs, empty_registry
            )
            warm_ms = await _scrapes(
                warm, s3.endpoint_url, runs, label="ours: GET /metrics, cache warm"
            )
            base_default = await _time(
                "baseline: generate_latest(default registry)", runs, default_registry
            )
            cold_ms = await _scrapes(
                cold,
                s3.endpoint_url,
                max(20, runs // 5),
                label="ours: GET /metrics, cache off (every store asked)",
            )
            print(f"  warm / default registry: {warm_ms / base_default:.1f}x   "
                  f"warm / empty registry: {warm_ms / max(base_empty, 1e-6):.0f}x   "
                  f"cold / warm: {cold_ms / warm_ms:.1f}x")  # fmt: skip
            verdict = "OK" if warm_ms <= TARGET_MS else "ABOVE TARGET"
            print(f"  target: warm scrape <= {TARGET_MS:.0f} ms -> {warm_ms:.2f} ms {verdict}")
    finally:
        s3.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Run the benchmark."""
    args = parser(__doc__ or "").parse_args()
    asyncio.run(run(100 if args.quick else 500))


if __name__ == "__main__":
    main()
