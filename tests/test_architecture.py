"""The architecture holds: no import cycles, no upward imports, no probing of backends, and every
public surface equal to its ``__all__``.

Imports are read from the source (``ast``), every one of them: at module level, inside functions
and under ``if TYPE_CHECKING:``. A dependency on ``aqrt.x.y`` is a dependency on the module
``aqrt.x.y`` (or on the package ``aqrt.x`` when ``y`` is a name it defines), never on the
packages above it.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from pathlib import Path

import pytest

import aqrt

PACKAGE_ROOT = Path(aqrt.__file__).resolve().parent

# Layers, lowest first: a module may import modules of its own layer or below, never above.
# (The dependency direction: cli -> server -> session/primitives -> backends -> engine, wire ->
# errors/options.) The first matching prefix decides a module's layer; the package root, which
# re-exports the session, primitives and backends, sits with the session.
ROOT_LAYER = 4
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("aqrt.errors", "aqrt.options", "aqrt._concurrency", "aqrt._extras", "aqrt.progress", "aqrt.job")),
    (1, ("aqrt.engine", "aqrt.wire")),
    (2, ("aqrt.backends", "aqrt.noise")),
    (3, ("aqrt.distributed",)),
    (4, ("aqrt.session", "aqrt.primitives", "aqrt.testing")),
    (5, ("aqrt.sync",)),
    (6, ("aqrt.server",)),
    (7, ("aqrt.cli", "aqrt._demo", "aqrt._bench_cli", "aqrt._sweep_cli", "aqrt._warmup_cli", "aqrt.__main__")),
]

# The members of the written Backend / Service contract (aqrt/backends/base.py): nothing may
# read them with getattr/hasattr, i.e. probe a backend for a hook instead of using the contract.
CONTRACT_MEMBERS = {
    "name",
    "num_qubits",
    "capabilities",
    "service",
    "validate_pub",
    "execute",
    "run_inline",
    "open_session",
    "close_session",
    "cancel_session",
    "known_backend",
    "fetch_backend",
    "backend",
    "max_session_time",
    "interactive_timeout_configurable",
    "job_concurrency",
    "enforces_max_time",
    "enforces_max_execution_time",
    "reports_job_start",
    "runs_inline",
    "remote_sessions",
}

# Public packages and modules whose ``__all__`` must equal their public names.
PUBLIC_MODULES = [
    "aqrt",
    "aqrt.backends",
    "aqrt.backends.local",
    "aqrt.primitives",
    "aqrt.testing",
    "aqrt.distributed",
    "aqrt.wire",
    "aqrt.engine",
    "aqrt.session",
    "aqrt.job",
    "aqrt.options",
    "aqrt.errors",
    "aqrt.progress",
    "aqrt.backends.base",
    "aqrt.backends.ibm",
    "aqrt.server",
    "aqrt.sync",
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The aqrt modules ``module`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "aqrt" or target.startswith("aqrt."):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != module:
                    found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    if module == "aqrt":
        return ROOT_LAYER
    for layer, prefixes in LAYERS:
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return layer
    return None


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name in _modules() if name != "aqrt" and _layer(name) is None]
    assert not unplaced, f"modules with no layer in LAYERS: {unplaced}"


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_no_upward_imports() -> None:
    upward = []
    for module, targets in _graph().items():
        layer = _layer(module)
        assert layer is not None
        for target in targets:
            target_layer = _layer(target)
            if target_layer is not None and target_layer > layer:
                upward.append(f"{module} (layer {layer}) imports {target} (layer {target_layer})")
    assert not upward, "imports pointing up:\n" + "\n".join(sorted(upward))


def test_nothing_probes_a_backend_for_a_hook() -> None:
    probes = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
                attribute = node.args[1]
                if isinstance(attribute, ast.Constant) and attribute.value in CONTRACT_MEMBERS:
                    probes.append(f"{module}:{node.lineno} {node.func.id}(..., {attribute.value!r})")
        text = path.read_text()
        if "iscoroutinefunction" in text:
            probes.append(f"{module}: inspects whether a method is a coroutine function")
    assert not probes, "backends reached around their contract:\n" + "\n".join(probes)


def test_the_package_root_imports_none_of_the_heavy_or_upper_parts() -> None:
    root_imports = _imports("aqrt", PACKAGE_ROOT / "__init__.py", set(_modules()))
    assert not {name for name in root_imports if name.startswith(("aqrt.server", "aqrt.engine", "aqrt.distributed"))}


def _public_names(module: types.ModuleType) -> set[str]:
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if name in {"annotations", "TYPE_CHECKING", "Any"}:
            continue
        defined_in = str(getattr(value, "__module__", module.__name__))
        if defined_in != module.__name__ and not defined_in.startswith(module.__name__ + "."):
            continue  # imported for use here, not re-exported (re-exports come from submodules)
        if any(part.startswith("_") for part in defined_in[len(module.__name__) :].split(".")):
            continue  # a private submodule's name, used by the package's own code
        names.add(name)
    return names


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_equals_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), f"{name}.__all__ lists a name twice"
    for export in exported:
        assert hasattr(module, export), f"{name}.__all__ names {export!r}, which does not exist"
    unlisted = _public_names(module) - exported
    assert not unlisted, f"{name} has public names missing from __all__: {sorted(unlisted)}"


def test_every_subpackage_imports() -> None:
    for info in pkgutil.walk_packages(aqrt.__path__, "aqrt."):
        if info.name.endswith(("_dask", "__main__")):
            continue  # needs the dask extra / runs the CLI
        importlib.import_module(info.name)
