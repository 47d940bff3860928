"""What the bound on every wait costs: `DeadlineConnection` against plain psycopg.

`postgres.DeadlineConnection` overrides `AsyncConnection.wait` so a hung server cannot
hold a request for ever. This runs the same single-row SELECT, one at a time, on one
plain `psycopg.AsyncConnection` and on one `DeadlineConnection` (bound set, as the
engine makes them), interleaved in rounds (the order swapped every round) so both see
the same machine load, and prints
CPU µs per statement (time.process_time) and ours / plain.

    BENCH_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m benchmarks.bench_deadline [--quick]
"""

from __future__ import annotations

import asyncio
import time

import psycopg

from benchmarks.common import ADMIN_URL, machine, parser
from templator.postgres import DeadlineConnection

QUERY = "SELECT 1, 'x'::text"


async def _time(conn: psycopg.AsyncConnection[object], statements: int) -> float:
    cursor = conn.cursor()
    started = time.process_time()
    for _ in range(statements):
        await cursor.execute(QUERY)
        await cursor.fetchone()
    return time.process_time() - started


async def run(statements: int, rounds: int) -> None:
    plain = await psycopg.AsyncConnection.connect(ADMIN_URL, autocommit=True)
    bounded = await DeadlineConnection.factory(30.0)(ADMIN_URL, autocommit=True)
    totals = {"plain": 0.0, "bounded": 0.0}
    try:
        await _time(plain, 200)
        await _time(bounded, 200)
        pair = [("plain", plain), ("bounded", bounded)]
        for round_ in range(rounds):
            for name, conn in pair if round_ % 2 == 0 else reversed(pair):
                totals[name] += await _time(conn, statements)
    finally:
        await plain.close()
        await bounded.close()
    count = statements * rounds
    print(machine())
    for name, seconds in totals.items():
        print(f"{name:>8}: {seconds / count * 1e6:7.1f} µs CPU per statement ({count:,})")
    print(f"bounded / plain CPU: {totals['bounded'] / totals['plain']:.3f}")


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    asyncio.run(run(1_000 if args.quick else 5_000, 3 if args.quick else 6))


if __name__ == "__main__":
    main()
