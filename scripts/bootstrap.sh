#!/usr/bin/env bash
# Make the project runnable on a fresh machine: system servers (Debian packages, only
# when missing), uv, and the locked Python environment in .venv/. Idempotent and quick
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/install-system-deps.sh ] || [ -f scripts/install-system-deps.sh ]; then
    bash scripts/install-system-deps.sh
fi

export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
UV=$(command -v uv || echo "$(python3 -m site --user-base)/bin/uv")

# Python 3.11 from the machine; uv never downloads an interpreter here. Bytecode is
# compiled once here: where PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile
# every library again at every start of `templator` (seconds, not milliseconds).
# The interpreter itself, not a pyenv shim: uv compares the venv's interpreter with this
# path, and a shim never matches, so every run would remove and rebuild .venv.
PY=$(command -v python3.11 || command -v python3)
PY=$("$PY" -c 'import sys; print(sys.executable)')
"$UV" sync --locked --quiet --compile-bytecode --python "$PY"
