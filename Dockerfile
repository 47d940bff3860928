# The Templator API image. Two stages: `build` resolves the locked environment with uv;
# `runtime` receives only that environment (the package installed into it, not linked)
# and runs as a non-root user: no compiler, no pip, no uv, no SeaweedFS binary (the
# `local` dependency group, which only the embedded development stack uses).
#
# Pinned by version and digest (multi-architecture index); to move to a newer patch:
#   docker buildx imagetools inspect python:3.11.X-slim-bookworm   # the index digest
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# uv at the version that wrote uv.lock.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (a layer that changes only with the lock), then the package.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-group local --no-install-project --no-editable
COPY src ./src
RUN uv sync --locked --no-dev --no-group local --no-editable

FROM ${PYTHON_IMAGE} AS runtime
# pg_dump/pg_restore (15, as the server) and redis-cli for `templator backup`; pip,
# setuptools and wheel of the base image go: nothing installs packages at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && python -m pip uninstall -y pip setuptools wheel \
 && groupadd --system --gid 10001 templator \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin templator \
 && install -d -o templator -g templator -m 0750 /var/lib/templator /var/lib/templator/backups
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    BACKUP_DIR=/var/lib/templator/backups VAR_DIR=/tmp/templator API_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
CMD ["templator", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
