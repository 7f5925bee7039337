"""The code's layout rules, read from the source with `ast` (every import counts: module level,
inside functions, and under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "paletai"
ROOT = "paletai"
APP_ASSEMBLY = "paletai.main"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of src/paletai by dotted name (a package by its __init__.py)."""
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    # A package's own name counts as its first level; a module's name does not.
    drop = node.level - 1 if _is_package(importer) else node.level
    base = base[: len(base) - drop]
    return ".".join([*base, node.module] if node.module else base)


def _targets(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The paletai modules an import statement loads (the deepest one each name reaches)."""
    known = modules()
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith(ROOT):
                yield name
        return
    source = _resolve(importer, node)
    if not source.startswith(ROOT):
        return
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in known:
            yield submodule
        elif source in known:
            yield source


@cache
def imports() -> dict[str, frozenset[str]]:
    """module -> the paletai modules it imports, anywhere in its body."""
    graph: dict[str, frozenset[str]] = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _targets(name, node)
        }
        found.discard(name)
        graph[name] = frozenset(found)
    return graph


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the package is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
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
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for component in components:
        start = min(component)
        # Breadth-first inside the component back to `start`: the shortest cycle through it.
        paths = {start: [start]}
        frontier = [start]
        cycle: list[str] | None = None
        while frontier and cycle is None:
            following = []
            for node in frontier:
                for nxt in sorted(graph[node] & component):
                    if nxt == start:
                        cycle = [*paths[node], start]
                        break
                    if nxt not in paths:
                        paths[nxt] = [*paths[node], nxt]
                        following.append(nxt)
                if cycle:
                    break
            frontier = following
        assert cycle is not None
        cycles.append(cycle)
    return cycles


def _folder(module: str) -> str | None:
    """The domain folder of a module (`games` for paletai.games.flows); None at the top."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and _is_package(module)):
        return parts[1]
    return None


def _imports_from(folder: str, forbidden: set[str]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in imports().items()
        if _folder(module) == folder
        for target in targets
        if _folder(target) in forbidden
    )


def test_the_cycle_finder_reports_a_cycle() -> None:
    graph = {
        "a": frozenset({"b"}),
        "b": frozenset({"c"}),
        "c": frozenset({"a"}),
        "d": frozenset({"a"}),
    }
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_the_import_reader_sees_every_kind_of_import() -> None:
    # Guards the rules below: an import the reader missed would let a cycle through unseen.
    assert "paletai.jobs.worker" in imports()["paletai.games.flows"]  # module level
    assert "paletai.games.flows" in imports()["paletai.cli"]  # inside a function
    assert "paletai.core.maintenance" in imports()["paletai.core.context"]


def test_no_import_cycle() -> None:
    cycles = _cycles(dict(imports()))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_jobs_is_a_generic_queue() -> None:
    assert _imports_from("jobs", {"games", "generation", "notifications", "users"}) == []


def test_generation_is_a_library() -> None:
    assert _imports_from("generation", {"games", "users", "jobs", "notifications"}) == []


def test_core_names_no_domain_rules() -> None:
    # core/ opens the clients (storage, push, AI provider) and knows the user behind a token;
    # the rules, the queue and the admin endpoints sit above it.
    assert _imports_from("core", {"admin", "auth", "games", "jobs", "ops"}) == []


def test_no_untyped_extras_on_the_context() -> None:
    found = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*")
        # Sources only: a stale __pycache__ of an old tree is no code of ours.
        if path.is_file() and "__pycache__" not in path.parts and b"extras" in path.read_bytes()
    ]
    assert found == []


def test_ops_keeps_its_code_in_folders() -> None:
    top = sorted(p.name for p in (PACKAGE / "ops").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 3, top


def test_no_module_imports_another_domains_router() -> None:
    # main.py (the app's assembly) mounts every router; anyone else reaching into another
    # domain's router takes shared code from the wrong room.
    assert any(t.endswith(".router") for t in imports()[APP_ASSEMBLY])
    wrong = sorted(
        f"{importer} imports {target}"
        for importer, targets in imports().items()
        if importer != APP_ASSEMBLY
        for target in targets
        if target.endswith(".router") and _folder(target) != _folder(importer)
    )
    assert wrong == []


def test_tests_mirror_the_source_tree() -> None:
    # The test of src/paletai/X/... lives in tests/X/; besides, only shared fixtures and the tests
    # of deploy/ (the Bicep template, scripts and workflows, not Python).
    tests = Path(__file__).resolve().parent
    outside_src = {"fixtures", "deploy"}
    stray = sorted(
        str(folder.relative_to(tests))
        for folder in tests.rglob("*")
        if folder.is_dir()
        and "__pycache__" not in folder.parts
        and folder.relative_to(tests).parts[0] not in outside_src
        and not (PACKAGE / folder.relative_to(tests)).is_dir()
    )
    assert stray == []
