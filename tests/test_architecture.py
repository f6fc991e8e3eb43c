"""The package layers and the one owner of the version folder's file names, read from the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.artifacts import ModelsFolder, VersionFolder

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a package may import itself and the layers below, never one above or a sibling
# (the cache and the database know nothing of each other).
LAYERS = (
    *(("pipeline",), ("store", "resilience")),
    *(("cache", "db"), ("tasks",), ("web",), ("service",)),
)
PACKAGES = tuple(package for layer in LAYERS for package in layer)
# Inside `pipeline/`, the same rule between its stages (subpackages) and its top modules.
PIPELINE_LAYERS = (
    *(("errors", "atomic"), ("params", "io", "process"), ("artifacts",), ("data",)),
    *(("features", "clusters", "settings"), ("model",), ("lists", "plots"), ("run",)),
    ("evaluation",),
)
PIPELINE_TOP_MODULES = 8  # __init__ included: what is left at the top is the base and `run`
# Clients of the servers the offline pipeline must stay free of.
SERVER_CLIENTS = (
    *("redis", "celery", "kombu", "flask", "werkzeug", "granian", "psycopg"),
    *("obstore", "s3fs", "fsspec", "boto3", "botocore"),
)


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every import in a file, those inside functions included."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def allowed(package: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> set[str]:
    level = next(i for i, layer in enumerate(layers) if package in layer)
    return {package, *(p for layer in layers[:level] for p in layer)}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_a_layer_above_its_own(package):
    forbidden = set(PACKAGES) - allowed(package)
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & forbidden)
        for path in modules(package)
        if imported_roots(path) & forbidden
    }
    assert offenders == {}


def pipeline_stage(dotted: str) -> str:
    """`pipeline.data.readers` -> `data`, `pipeline.io` -> `io`."""
    return dotted.split(".")[1]


def pipeline_modules() -> dict[str, Path]:
    paths = {module_name(path): path for path in modules("pipeline")}
    return {name: path for name, path in paths.items() if name != "pipeline"}


def test_every_pipeline_module_sits_in_a_stage_of_the_layers():
    stages = {stage for layer in PIPELINE_LAYERS for stage in layer}
    assert {pipeline_stage(name) for name in pipeline_modules()} == stages


@pytest.mark.parametrize("stage", [stage for layer in PIPELINE_LAYERS for stage in layer])
def test_no_pipeline_module_imports_a_stage_above_its_own(stage):
    known = pipeline_modules()
    forbidden = {s for layer in PIPELINE_LAYERS for s in layer} - allowed(stage, PIPELINE_LAYERS)
    offenders = {}
    for name, path in known.items():
        imported = {pipeline_stage(m) for m in imported_modules(path, set(known))}
        if pipeline_stage(name) == stage and imported & forbidden:
            offenders[name] = sorted(imported & forbidden)
    assert offenders == {}


def test_the_pipeline_top_holds_its_base_and_run_and_stages_as_folders():
    top = sorted((ROOT / "pipeline").glob("*.py"))
    assert len(top) <= PIPELINE_TOP_MODULES, [path.name for path in top]
    for init in (ROOT / "pipeline").glob("*/__init__.py"):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), init  # each stage says what it is
        assert not any(isinstance(node, ast.Import | ast.ImportFrom) for node in tree.body), init


def test_the_pipeline_talks_to_no_server():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & set(SERVER_CLIENTS))
        for path in modules("pipeline")
        if imported_roots(path) & set(SERVER_CLIENTS)
    }
    assert offenders == {}


def string_literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_version_folder_file_names_are_spelled_in_one_module():
    folder = VersionFolder(Path("v"))
    names = {
        *VersionFolder.REQUIRED,
        folder.model.name,
        folder.ratings.name,
        folder.parts.name,
        ModelsFolder(Path("m")).latest_marker.name,
    }
    owner = ROOT / "pipeline" / "artifacts.py"
    spelled = {
        str(path.relative_to(ROOT)): sorted(string_literals(path) & names)
        for package in PACKAGES
        for path in modules(package)
        if path != owner and string_literals(path) & names
    }
    assert spelled == {}
    assert names <= string_literals(owner)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project's modules a file imports, those inside functions and for type checking too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                whole = f"{node.module}.{alias.name}"
                found.add(whole if whole in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def test_no_module_imports_one_that_imports_it_back():
    """No cycle, however long and however hidden (a lazy import, one for type checking only):
    each side of a knot needs something that belongs elsewhere."""
    paths = {module_name(path): path for package in PACKAGES for path in modules(package)}
    graph = {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}
    cycles = []
    for start in graph:  # a path from a module's imports back to itself
        seen, todo = set(), list(graph[start])
        while todo:
            current = todo.pop()
            if current == start:
                cycles.append(start)
                break
            if current not in seen:
                seen.add(current)
                todo.extend(graph[current])
    assert cycles == []
