"""The layers of docs/architecture.md, read from the import graph of src/templator.

Every import counts: at module level, inside a function (the CLI's lazy imports) and
under TYPE_CHECKING, since each one is a dependency a reader has to follow. The rules:

* infrastructure imports infrastructure only: no domain, operation, edge or dev tooling;
* a domain imports infrastructure and other domains, never an operation, the edges or
  the dev tooling; its `endpoints.py` (the domain's HTTP routes) may also use the API's
  shared pieces (`api/deps.py`, `problems.py`, `pagination.py`, `sse.py`), not the router;
* a domain never imports another domain's `repository` module: it asks that domain's
  service (or its `cache.py`, `errors.py`, `schemas.py`…), so each table's SQL has one
  home;
* operations (backup, monitoring, deploy, pgadmin) import no edge and no dev tooling;
* nothing outside `cli/` (and the dev tooling itself) imports `templator.dev`, and
  nothing imports `cli/`;
* no cycle between packages except those `JUSTIFIED_CYCLES` lists (and the document).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
ROOT = "templator"

INFRASTRUCTURE = {
    "config",
    "connections",
    "postgres",
    "driver_pool",
    "private_apis",
    "redis",
    "cache",
    "epoch",
    "signing",
    "store_urls",
    "exceptions",
    "kit",
    "models",
    "migrations",
    "health",
    "storage",
}
DOMAINS = {
    "user",
    "project",
    "ai_session",
    "template",
    "processing_log",
    "stored_object",
    "auth",
    "audit",
    "hubspot",
    "idempotency",
    "work",
}
OPERATIONS = {"backup", "monitoring", "deploy", "pgadmin"}
EDGES = {"app", "api", "cli", "client"}
DEV = {"dev"}

API_SHARED = {"api.deps", "api.problems", "api.pagination", "api.sse", "api.idempotency"}
"""What a domain's endpoints.py may use of api/: the request dependencies, problem
details, page models and the event-stream helpers (never the router, which mounts them)."""

JUSTIFIED_CYCLES: list[frozenset[str]] = [
    # models take their ids from kit/ids.py; kit/actor.py (who is asking) carries the
    # models' UserRole enum. Both are infrastructure; no module imports itself back.
    frozenset({"kit", "models"}),
    # A project owns sessions and templates, and a template is made from a session: the
    # children raise the parent's ProjectNotFound, a template is made by reading its
    # session, and a parent's delete drops its children's cache keys through their
    # cache.py. Package by package these run both ways; module by module there is no
    # cycle (docs/architecture.md, "Domains and their services").
    frozenset({"ai_session", "project", "template"}),
]


@dataclass(frozen=True, slots=True)
class Import:
    """One `import` statement's edge: importer, imported module, where."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their __init__)."""
    found: dict[str, Path] = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The longest known module `name` names (`from a import b`: a.b if a module, else a)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts) or name


def imports(known: dict[str, Path]) -> Iterator[Import]:
    """Every import of a templator module by a templator module, lazy ones included."""
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    stem = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    stem = node.module or ""
                names = [f"{stem}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name == ROOT or name.startswith(ROOT + "."):
                    target = _resolve(name, known)
                    if target != module:
                        yield Import(module, target, node.lineno)


def unit(module: str) -> str:
    """The part of the tree a module belongs to: its top-level package or module under
    templator/, except each domain's endpoints.py (HTTP routes, an edge kept with its
    domain) and api/router.py (which mounts those routes, with app.py)."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if len(parts) >= 2 and parts[0] in DOMAINS and parts[1] == "endpoints":
        return f"{parts[0]}.endpoints"
    if parts[:2] == ["api", "router"]:
        return "api.router"
    return parts[0]


def layer(unit_name: str) -> str:
    """infrastructure, domain, endpoints, operations, edge or dev; '' when unclassified."""
    top = unit_name.split(".")[0]
    if unit_name.endswith(".endpoints") and top in DOMAINS:
        return "endpoints"
    for name, members in (
        ("infrastructure", INFRASTRUCTURE),
        ("domain", DOMAINS),
        ("operations", OPERATIONS),
        ("edge", EDGES),
        ("dev", DEV),
    ):
        if top in members:
            return name
    return ""


def _api_piece(target: str) -> str:
    return ".".join(target.split(".")[1:3])


def violation(edge: Import) -> str | None:
    """Why `edge` breaks a layer rule, or None."""
    source, target = unit(edge.source), unit(edge.target)
    if source == target:
        return None
    src_layer, dst_layer = layer(source), layer(target)
    if (
        src_layer in {"domain", "endpoints"}
        and dst_layer == "domain"
        and edge.target.split(".")[2:3] == ["repository"]
    ):
        return "a domain asks another domain's service, never its repository"
    if dst_layer == "dev" and src_layer != "dev" and source != "cli":
        return "only cli/ (the commands that use it) imports the dev tooling"
    if target == "cli" and source != "cli":
        return "nothing imports cli/: it is the outermost edge"
    if src_layer == "infrastructure" and dst_layer != "infrastructure":
        return f"infrastructure imports no {dst_layer or target}"
    if src_layer == "domain" and dst_layer not in {"infrastructure", "domain"}:
        return f"a domain imports no {dst_layer} module"
    if src_layer == "endpoints":
        if dst_layer in {"infrastructure", "domain"}:
            return None
        if dst_layer == "endpoints" or _api_piece(edge.target) in API_SHARED:
            return None
        return "a domain's endpoints use only api's shared pieces: " + ", ".join(sorted(API_SHARED))
    if src_layer == "operations" and dst_layer in {"edge", "endpoints"}:
        return f"an operation imports no {dst_layer} module"
    return None


def cycles(edges: Iterable[Import]) -> list[frozenset[str]]:
    """The strongly connected components (of two units or more) of the unit graph."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        a, b = unit(edge.source), unit(edge.target)
        if a and b and a != b:
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Path], list[Import]]:
    known = modules()
    return known, list(imports(known))


def test_every_package_belongs_to_a_layer(graph: tuple[dict[str, Path], list[Import]]) -> None:
    known, _ = graph
    unclassified = sorted({unit(m) for m in known if unit(m) and not layer(unit(m))})
    assert not unclassified, f"{unclassified}: add each to a layer here and in docs/architecture.md"


def test_imports_follow_the_layers(graph: tuple[dict[str, Path], list[Import]]) -> None:
    _, edges = graph
    broken = [f"{edge}: {why}" for edge in edges if (why := violation(edge))]
    assert not broken, "\n".join(broken)


def test_no_package_cycles_but_the_justified_ones(
    graph: tuple[dict[str, Path], list[Import]],
) -> None:
    _, edges = graph
    allowed = JUSTIFIED_CYCLES
    found = cycles(edges)
    unexpected = [sorted(c) for c in found if c not in allowed]
    assert not unexpected, f"import cycles between packages: {unexpected}"
    stale = [sorted(c) for c in allowed if c not in found]
    assert not stale, f"listed cycles that no longer exist, remove them: {stale}"


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("templator.connections", "templator.monitoring.metrics"),
        ("templator.store_urls", "templator.dev.localstack"),
        ("templator.storage.service", "templator.template.service"),
        ("templator.config", "templator.cli.context"),
        ("templator.user.service", "templator.api.deps"),
        ("templator.template.repository", "templator.backup.create"),
        ("templator.user.endpoints", "templator.api.router"),
        ("templator.user.endpoints", "templator.cli.context"),
        ("templator.monitoring.stores", "templator.app"),
        ("templator.app", "templator.dev.localstack"),
        ("templator.backup.pgbackrest", "templator.dev.localstack.process"),
        ("templator.api.deps", "templator.cli.context"),
        ("templator.dev.demo.flow", "templator.cli.demo"),
        ("templator.template.service", "templator.ai_session.repository"),
        ("templator.template.repository", "templator.auth.repository"),
        ("templator.user.endpoints", "templator.project.repository"),
    ],
)
def test_a_forbidden_import_is_reported(source: str, target: str) -> None:
    assert violation(Import(source, target, 1)) is not None


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("templator.cli.up", "templator.dev.localstack"),
        ("templator.dev.seed.loader", "templator.kit.ids"),
        ("templator.user.endpoints", "templator.api.deps"),
        ("templator.project.service", "templator.template.service"),
        ("templator.monitoring.stores", "templator.storage.service"),
        ("templator.connections", "templator.health.checks"),
        ("templator.template.service", "templator.template.repository"),
        ("templator.template.service", "templator.ai_session.service"),
        ("templator.api.hot_read", "templator.auth.repository"),
    ],
)
def test_an_allowed_import_is_not_reported(source: str, target: str) -> None:
    assert violation(Import(source, target, 1)) is None


def test_a_new_cycle_is_found() -> None:
    edges = [
        Import("templator.cache", "templator.redis", 1),
        Import("templator.redis", "templator.cache", 1),
        Import("templator.user.service", "templator.kit.ids", 1),
    ]
    assert cycles(edges) == [frozenset({"cache", "redis"})]
