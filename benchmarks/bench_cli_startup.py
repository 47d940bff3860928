"""How fast the `templator` command starts: `--help` and `health`, beside `python -c pass`.

Each command runs as a fresh process, the way an operator or a cron job runs it, several
times in turn with the baselines (so load on the machine hits all alike); the median and
the best run are printed, with the ratio to `python -c pass` and to `import typer` (the
floor of any Typer command). `health` probes the stores of DATABASE_URL / REDIS_URL /
S3_ENDPOINT_URL as set in the environment (or of a running `templator up`); by default
the shared PostgreSQL at 127.0.0.1:5432 and BENCH_REDIS_URL (default 127.0.0.1:6379).
Python's bytecode cache matters as much as our imports: with PYTHONDONTWRITEBYTECODE set
and no cache written, every library is compiled again at every start; the line printed
first says which case this run measured.

    .venv/bin/python -m benchmarks.bench_cli_startup [--quick]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import machine, parser

TARGET_SECONDS = 0.5
TEMPLATOR = str(Path(sys.executable).parent / "templator")


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    env.setdefault("REDIS_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    return env


def _bytecode_cached() -> bool:
    import typer

    cache = Path(typer.__file__).parent / "__pycache__"
    return cache.is_dir() and any(cache.iterdir())


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    runs = 3 if args.quick else 11
    env = _environment()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "templator --help": [TEMPLATOR, "--help"],
        "templator health": [TEMPLATOR, "health"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, check=False)
            samples[name].append(time.perf_counter() - started)
            if name == "templator health" and done.returncode not in (0, 1):
                sys.exit(f"templator health failed: {done.stderr.decode()[-500:]}")
    print(machine())
    print(
        f"load average {os.getloadavg()[0]:.1f}; bytecode cache "
        f"{'present' if _bytecode_cached() else 'absent'}; "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; "
        f"{runs} runs each"
    )
    base = statistics.median(samples["python -c pass"])
    floor = statistics.median(samples["python -c 'import typer'"])
    for name, values in samples.items():
        med = statistics.median(values)
        print(
            f"{name:<28} median {med * 1000:7.0f} ms  best {min(values) * 1000:7.0f} ms  "
            f"{med / base:6.1f}x pass  {med / floor:5.2f}x import typer"
        )
    for name in ("templator --help", "templator health"):
        med = statistics.median(samples[name])
        verdict = "OK" if med <= TARGET_SECONDS else "OVER TARGET"
        print(f"{name}: {med:.2f} s (target <= {TARGET_SECONDS} s) {verdict}")


if __name__ == "__main__":
    main()
