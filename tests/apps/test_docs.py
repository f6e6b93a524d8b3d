"""Every Python block of the docs runs as written (each block is a self-contained program)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
BLOCKS = [
    pytest.param(block, id=f"{page.name}-{number}")
    for page in sorted((ROOT / "docs").glob("*.md"))
    for number, block in enumerate(BLOCK.findall(page.read_text()), start=1)
]


def test_the_docs_have_python_blocks() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS)
def test_a_docs_block_runs(block: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block)
    done = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """mkdocs --strict (links between pages, the API reference from the docstrings) and the
    README's relative links (tools/build_docs.py)."""
    command = [sys.executable, str(ROOT / "tools" / "build_docs.py"), "--site-dir", str(tmp_path / "site")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


README = ROOT / "README.md"
# The README's blocks that talk to an `aqrt serve` on 127.0.0.1:8765 are run against a real
# server by tests/server (test_official_client.py, test_client_against_server.py).
SERVER_BLOCK = '"http://127.0.0.1:8765"'
README_BLOCKS = [
    pytest.param(block, id=f"README-{number}")
    for number, block in enumerate(BLOCK.findall(README.read_text()), start=1)
    if SERVER_BLOCK not in block
]


def test_the_readme_s_server_blocks_are_the_ones_the_server_tests_run() -> None:
    server_blocks = [block for block in BLOCK.findall(README.read_text()) if SERVER_BLOCK in block]
    assert len(server_blocks) == 2
    assert "QiskitRuntimeService" in server_blocks[0] and "RuntimeService(" in server_blocks[1]


@pytest.mark.parametrize("block", README_BLOCKS)
def test_a_readme_block_runs(block: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block)
    done = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
