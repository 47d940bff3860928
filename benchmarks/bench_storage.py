"""Uploads through our ObjectStore vs the raw boto3 call, against a real SeaweedFS.

10 MB and 200 MB, streamed from a generator-backed file object on both sides (nothing
whole in memory); the raw side is boto3's own `upload_fileobj` (managed multipart).
Reports throughput ratio (target >= 0.9x), the 10 MB time (target <= 0.3 s; the
plan's is 5 s) and the peak RSS increase during our 200 MB upload (target <= 100 MB).

    .venv/bin/python -m benchmarks.bench_storage [--quick]
"""

from __future__ import annotations

import io
import shutil
import statistics
import threading
import time
import uuid

import psutil
from boto3.s3.transfer import TransferConfig

from benchmarks.common import machine, parser
from templator.config import PROJECT_ROOT, Settings
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.kit.ids import new_id
from templator.storage.service import ObjectStore

MB = 1024 * 1024
HTML = b"<!DOCTYPE html>"
# 1 MiB of non-trivial text: an upload's whole content is checked (UTF-8, no NUL), so the
# stream is an HTML design, the type that streams as it is checked.
BLOCK = bytes(range(32, 127)) * 11037 + b" " * 61  # 1 MiB


class Stream(io.IOBase):
    """`size` bytes made on the fly, starting with an HTML doctype (a plain read() stream)."""

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        remaining = self.size - self.pos
        n = remaining if n < 0 else min(n, remaining)
        if n <= 0:
            return b""
        start = self.pos % len(BLOCK)
        repeats = (start + n) // len(BLOCK) + 1
        chunk = (BLOCK * repeats)[start : start + n] if repeats > 1 else BLOCK[start : start + n]
        if self.pos == 0:
            chunk = HTML + chunk[len(HTML) :]
        self.pos += n
        return chunk


class PeakRss:
    """Samples this process's RSS every 5 ms."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(rounds: int) -> None:
    folder = PROJECT_ROOT / "var" / f"bench-s3-{uuid.uuid4().hex[:6]}"
    server = SeaweedFS(folder, access_key="bench", secret_key="bench-secret")
    server.start()
    try:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            s3_endpoint_url=server.endpoint_url,
            s3_access_key="bench",
            s3_secret_key="bench-secret",
            s3_bucket="bench-uploads",
            upload_max_bytes=1024 * MB,
        )
        store = ObjectStore.from_settings(settings, endpoint_url=server.endpoint_url)
        store.ensure_bucket()
        raw_config = TransferConfig(
            multipart_threshold=8 * MB, multipart_chunksize=8 * MB, max_concurrency=1
        )
        print(machine())
        for size_mb in (10, 200):
            ours, raw = [], []
            for _ in range(rounds * 3 if size_mb == 10 else rounds):  # small: more samples
                started = time.perf_counter()
                stored = store.upload_design(
                    new_id(), Stream(size_mb * MB), content_type="text/html"
                )
                ours.append(time.perf_counter() - started)
                assert stored.size == size_mb * MB
                started = time.perf_counter()
                store.client.upload_fileobj(
                    Stream(size_mb * MB),
                    store.bucket,
                    f"raw/{uuid.uuid4().hex}.png",
                    Config=raw_config,
                )
                raw.append(time.perf_counter() - started)
            o, r = statistics.median(ours), statistics.median(raw)
            print(
                f"{size_mb:>4} MB  ours {o:6.3f} s ({size_mb / o:7.1f} MB/s)   "
                f"raw boto3 {r:6.3f} s ({size_mb / r:7.1f} MB/s)   "
                f"ratio {r / o:.2f}x (target >= 0.9x)"
            )
            if size_mb == 10:
                print(f"        10 MB through our service: {o:.3f} s (target <= 0.3 s)")
        with PeakRss() as rss:
            store.upload_design(new_id(), Stream(200 * MB), content_type="text/html")
        print(
            f"peak RSS during our 200 MB upload: +{(rss.peak - rss.baseline) / MB:.1f} MB "
            "over baseline (target <= 100 MB)"
        )
        store.delete_many([o["key"] for o in store.iter_objects()])
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    main(rounds=1 if args.quick else 3)
