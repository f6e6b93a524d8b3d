"""Build aqrt's documentation site and check the README's links.

    python tools/build_docs.py                 # build the site into ./site (warnings are errors)
    python tools/build_docs.py --site-dir DIR  # somewhere else (CI builds into a temporary folder)

The site is mkdocs (material theme) over ``docs/`` (``mkdocs.yml``); its API reference
(``docs/api.md``) is generated from the docstrings by mkdocstrings. ``mkdocs build --strict``
fails on any warning: a broken link between pages, a docstring the generator cannot read, a
page left out of the navigation. The README is not a page of the site, so its relative links
are checked here. The Python blocks of the README and the docs are run by
``tests/apps/test_docs.py``. Needs the ``docs`` extra (the ``test`` extra includes it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def broken_readme_links() -> list[str]:
    """Relative links of README.md that point nowhere."""
    readme = ROOT / "README.md"
    return [
        target
        for target in _LINK.findall(readme.read_text())
        if "://" not in target and not target.startswith("mailto:") and not (ROOT / target).exists()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the docs site (warnings are errors), check README links")
    parser.add_argument("--site-dir", type=Path, default=ROOT / "site", help="where the site goes (default ./site)")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        print("tools/build_docs.py needs the docs extra: pip install -e '.[docs]'", file=sys.stderr)
        return 2
    status = 0
    for target in broken_readme_links():
        print(f"README.md: broken link {target}", file=sys.stderr)
        status = 1
    environ = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(args.site_dir)]
    built = subprocess.run(command, cwd=ROOT, env=environ, check=False)
    return status or built.returncode


if __name__ == "__main__":
    sys.exit(main())
