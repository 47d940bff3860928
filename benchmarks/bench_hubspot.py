"""HubSpot module round trip: our read + check-free export vs the raw zip + json baseline.

Ours: `read_modules` (every safety check, strict JSON, the typed view, unknown-key
warnings) then `build_modules_zip` (byte-exact texts, other files, deterministic zip).
Raw: `zipfile` + `json.loads` of each file, then writing the same entries back — what a
script that checks nothing would do. Both on a zip of the test corpus repeated to 50
modules. Also prints the peak traced memory while refusing a 100 MB fields.json.

    .venv/bin/python -m benchmarks.bench_hubspot [--quick]
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

from benchmarks.common import Clock, machine, parser, ratio_line
from templator.exceptions import TemplatorError
from templator.hubspot.package import build_modules_zip, read_modules

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "hubspot" / "corpus" / "reference"


def theme_zip(copies: int) -> bytes:
    """The corpus `copies` times over, as one zip of module folders."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(copies):
            for path in sorted(CORPUS.rglob("*")):
                if path.is_file() and path.name != ".gitattributes":
                    rel = path.relative_to(CORPUS).as_posix()
                    folder, rest = rel.split("/", 1)
                    name = folder.replace(".module", f"-{n}.module")
                    archive.writestr(f"{name}/{rest}", path.read_bytes())
    return buffer.getvalue()


def raw_round_trip(data: bytes) -> bytes:
    """Read every entry, parse the JSON ones, write them all back (no checks)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith(".json"):
                json.loads(body)
            dst.writestr(info.filename, body, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def refusal_peak() -> int:
    """Peak traced bytes while a sparse 100 MB fields.json is refused."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "big.module"
        folder.mkdir()
        (folder / "meta.json").write_text('{"label": "Big", "content_types": ["ANY"]}')
        (folder / "module.html").write_text("<p></p>")
        with (folder / "fields.json").open("wb") as f:
            f.truncate(100 * 1024 * 1024)
        tracemalloc.start()
        with contextlib.suppress(TemplatorError):
            read_modules(folder)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    rounds = 3 if args.quick else 20
    data = theme_zip(10)
    modules = len(read_modules(data))
    ours, raw = Clock("ours: read_modules + build_modules_zip"), Clock("raw: zipfile + json")
    for _ in range(rounds):
        with ours.op():
            build_modules_zip(read_modules(data))
        with raw.op():
            raw_round_trip(data)
    print(machine())
    print(f"{modules} modules, {len(data):,} bytes zipped, {rounds} rounds")
    print(ours.timing.line())
    print(raw.timing.line())
    print(ratio_line(ours.timing, raw.timing, target=0.1))
    print(f"peak traced memory refusing a 100 MB fields.json: {refusal_peak() / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
