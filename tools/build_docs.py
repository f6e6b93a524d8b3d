"""Build aqrt's documentation: the API reference (``docs/api.md``) from the public modules'
docstrings, and a check that every relative link of ``README.md`` and ``docs/*.md`` resolves.

    python tools/build_docs.py           # write docs/api.md, check the links
    python tools/build_docs.py --check   # fail if docs/api.md is stale or a link is broken (CI)

The reference lists, per public module, every name of its ``__all__`` with its signature and
the first paragraph of its docstring (the rest is one ``help(name)`` away). The Python blocks of
the docs are run by ``tests/apps/test_docs.py``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.md"

#: The public modules, in the order a reader meets them.
MODULES = (
    ("aqrt", "Sessions, primitives, jobs, services, options and errors (`import aqrt`)"),
    ("aqrt.sync", "The blocking facade for scripts and notebooks"),
    ("aqrt.options", "Runtime's options tree"),
    ("aqrt.noise", "Noise models and Aer's error constructors"),
    ("aqrt.errors", "The error tree"),
    ("aqrt.primitives", "Primitives, and Qiskit's synchronous BaseEstimatorV2/BaseSamplerV2 over the engine"),
    ("aqrt.backends.local", "The local service and backends"),
    ("aqrt.distributed", "Dask"),
    ("aqrt.server", "aqrt serve from Python"),
    ("aqrt.engine", "The statevector engine's entry points"),
)

_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    paragraph = doc.split("\n\n", 1)[0].strip()
    return " ".join(line.strip() for line in paragraph.splitlines())


def _signature(name: str, obj: object) -> str:
    if inspect.isclass(obj) or inspect.isroutine(obj):
        try:
            return f"{name}{inspect.signature(obj)}"  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return name
    return name


def _kind(obj: object) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isroutine(obj):
        return "function"
    return "constant"


def api_reference() -> str:
    """The text of ``docs/api.md``."""
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python tools/build_docs.py` (CI checks it is current): every",
        "public name with its signature and the first paragraph of its docstring; `help(name)` has the",
        "rest. The guides: [README](../README.md), [sync](sync.md), [porting](porting.md),",
        "[devices](devices.md), [circuits](circuits.md), [noise](noise.md), [scale](scale.md),",
        "[serve](serve.md), [runtime_service](runtime_service.md), [architecture](architecture.md).",
        "",
    ]
    for module_name, title in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an optional part that is not there
            continue
        names = list(getattr(module, "__all__", []))
        if not names:
            continue
        lines += [f"## `{module_name}`: {title}", ""]
        for name in names:
            obj = getattr(module, name)
            signature = _signature(name, obj).replace("\n", " ")
            summary = _first_paragraph(obj) if _kind(obj) != "constant" else ""
            lines.append(f"- **`{name}`** ({_kind(obj)}) `{signature}`" + (f": {summary}" if summary else ""))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def broken_links() -> list[str]:
    """Relative links of README.md and docs/*.md that point nowhere."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in _LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail on a stale docs/api.md or a broken link")
    args = parser.parse_args(argv)
    text = api_reference()
    status = 0
    if args.check:
        if not API.exists() or API.read_text() != text:
            print("docs/api.md is stale: run  python tools/build_docs.py", file=sys.stderr)
            status = 1
    else:
        API.write_text(text)
        print(f"wrote {API.relative_to(ROOT)}")
    for link in broken_links():
        print(f"broken link: {link}", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
