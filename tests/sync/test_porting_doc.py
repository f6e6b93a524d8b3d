"""docs/porting.md's worked example: the aqrt.sync version is the qiskit-ibm-runtime one with only
its imports changed (and checks appended), the async one adds only async/await. The blocks
themselves run in tests/apps/test_docs.py."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "porting.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE.read_text(), re.DOTALL | re.MULTILINE)


def _code(block: str) -> list[str]:
    """The block's lines but its imports, checks and blank lines."""
    return [
        line for line in block.splitlines() if line.strip() and not line.startswith(("from ", "import ", "assert "))
    ]


def _imports(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.startswith(("from ", "import "))]


def test_the_sync_port_changes_only_the_imports() -> None:
    (before,) = _blocks("py")
    after = _blocks("python")[0]
    assert _code(after) == _code(before)
    changed = sorted(set(_imports(before)) ^ set(_imports(after)))
    assert changed, "the imports must differ"
    assert all("qiskit_ibm_runtime import" in line or "aqrt.sync import" in line for line in changed)
    assert not any(line.startswith("from qiskit_ibm_runtime import") for line in _imports(after))


def test_the_async_port_adds_only_async_and_await() -> None:
    (before,) = _blocks("py")
    after = _blocks("python")[1]
    assert "from aqrt import" in after and "aqrt.sync" not in after
    # Undo the async edits: the wrapper function, `async with`, each `(await x.result())`.
    undone = []
    inside_main = False
    for line in _code(after):
        if line.startswith("async def main"):
            inside_main = True
            continue
        if line.startswith(("    return ", "evs, counts = asyncio.run")):
            continue
        if inside_main and line.startswith("    "):
            line = line.removeprefix("    ")
        line = line.replace("async with", "with")
        line = re.sub(r"\(await (.*?\.result\(\))\)", r"\1", line)
        undone.append(line)
    assert undone == _code(before)
