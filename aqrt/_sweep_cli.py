"""``aqrt sweep``: expectation values of a QASM circuit over a grid of parameter values.

Example (``examples/ansatz.qasm`` in a clone of aqrt)::

    aqrt sweep examples/ansatz.qasm --param theta=0:3.1416:64 --param phi=-1:1:32 \\
        --observable ZZ --observable XI --output landscape.npz --plot landscape.png

The circuit's free parameters are OpenQASM 3 ``input float[64] NAME;`` declarations (or
OpenQASM 2 gate parameters); each needs one ``--param NAME=START:STOP:NUM``: one axis of the
grid (``numpy.linspace``); the grid is their product, so the result has shape (observables,
NUM_1, NUM_2, ...). Runs on the local engine, or on a Dask cluster (``--dask ADDRESS``, or
``--dask-local N`` for N worker processes on this machine), with a progress bar unless
``--no-progress``. Reading OpenQASM 3, the progress bar and ``--plot`` need ``aqrt[cli]``,
``--dask`` needs ``aqrt[dask]``: a missing one is named before any work is done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ._warmup_cli import show_compile_notice
from .cli import missing_extras

__all__ = ["configure", "load_circuit", "main", "parse_axis", "run_sweep"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("circuit", type=Path, help="an OpenQASM 3 (or 2) file with free parameters")
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=START:STOP:NUM",
        help="one grid axis: NUM values from START to STOP (repeat for each parameter)",
    )
    parser.add_argument(
        "--observable",
        "-o",
        action="append",
        default=[],
        metavar="PAULI",
        help="a Pauli label such as ZZ (qubit 0 last; repeat for several; default Z...Z)",
    )
    parser.add_argument("--output", type=Path, help="write the results to a .npz or .json file")
    parser.add_argument("--plot", type=Path, help="write a PNG of the landscape (1 or 2 grid axes; matplotlib)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--dask", metavar="ADDRESS", help="run on the Dask scheduler at ADDRESS")
    cluster.add_argument("--dask-local", type=int, metavar="N", help="start a local Dask cluster of N worker processes")
    parser.add_argument("--chunk-bindings", type=int, help="bindings per chunk (default: about 50 ms of work each)")
    parser.add_argument("--precision", type=float, default=0.0, help="target precision (default 0: exact values)")
    parser.add_argument("--seed", type=int, help="seed of the precision noise")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_axis(text: str) -> tuple[str, np.ndarray]:
    """``NAME=START:STOP:NUM`` as (name, values)."""
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or not name or len(parts) != 3:
        raise ValueError(f"--param {text!r}: expected NAME=START:STOP:NUM, e.g. theta=0:3.14:50")
    try:
        start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"--param {text!r}: START and STOP must be numbers and NUM an integer") from None
    if num < 1:
        raise ValueError(f"--param {text!r}: NUM must be at least 1")
    return name.strip(), np.linspace(start, stop, num)


def load_circuit(text: str) -> Any:
    """A circuit from OpenQASM 3 text (or OpenQASM 2, by its header)."""
    if text.lstrip().startswith("OPENQASM 2"):
        from qiskit import qasm2

        return qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    from qiskit import qasm3

    return qasm3.loads(text)


async def run_sweep(
    circuit: Any,
    axes: list[tuple[str, np.ndarray]],
    labels: list[str],
    *,
    dask: Any = None,
    chunk_bindings: int | None = None,
    precision: float = 0.0,
    seed: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Expectation values of each observable over the grid, shape (observables, *axis lengths),
    and the job's result metadata."""
    from qiskit.quantum_info import SparsePauliOp

    from . import Estimator, LocalService, Options, Session

    names = {p.name for p in circuit.parameters}
    given = [name for name, _ in axes]
    if sorted(given) != sorted(names) or len(set(given)) != len(given):
        missing, unknown = sorted(names - set(given)), sorted(set(given) - names)
        raise ValueError(
            f"give one --param per circuit parameter; the circuit has {sorted(names)}"
            + (f", missing {missing}" if missing else "")
            + (f", unknown {unknown}" if unknown else "")
        )
    shape = tuple(len(values) for _, values in axes)
    mesh = np.meshgrid(*[values for _, values in axes], indexing="ij")
    bindings = {name: grid.reshape(-1) for (name, _), grid in zip(axes, mesh, strict=True)}
    observables = [[SparsePauliOp(label)] for label in labels]  # (observables, 1) x (bindings,)
    total = math.prod(shape)
    executor = None
    if dask is not None:
        from .distributed import DaskExecutor

        executor = DaskExecutor(dask)
    async with LocalService(executor=executor, chunk_bindings=chunk_bindings) as service:
        async with Session(service=service) as session:
            estimator = Estimator(session=session, options=Options(seed=seed))
            job = estimator.run([(circuit, observables, bindings, precision or None)])
            if progress:
                from tqdm import tqdm

                with tqdm(total=total, unit="binding", desc="sweep") as bar:
                    async for update in job.progress():
                        bar.update(update.done - bar.n)
            result = await job
    return np.asarray(result[0].data.evs).reshape((len(labels), *shape)), dict(result.metadata)


def _write(path: Path, evs: np.ndarray, axes: list[tuple[str, np.ndarray]], labels: list[str]) -> None:
    if path.suffix == ".npz":
        arrays: dict[str, Any] = {"evs": evs, "observables": np.array(labels)}
        arrays.update({f"axis_{name}": values for name, values in axes})
        np.savez(path, **arrays)
    elif path.suffix == ".json":
        payload = {"observables": labels, "axes": {name: values.tolist() for name, values in axes}, "evs": evs.tolist()}
        path.write_text(json.dumps(payload))
    else:
        raise ValueError(f"--output {path}: the name must end in .npz or .json")


def _plot(path: Path, evs: np.ndarray, axes: list[tuple[str, np.ndarray]], labels: list[str], title: str) -> None:
    """A PNG of the landscape: one line per observable over one axis, or one panel per
    observable over two. An axis of one value is drawn as fixed (named in the title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixed: list[str] = []
    if len(axes) == 2 and min(len(values) for _, values in axes) == 1:  # draw over the other axis
        (x_name, x), (y_name, y) = axes
        drawn, (fixed_name, fixed_values) = (axes[1], axes[0]) if len(x) == 1 and len(y) > 1 else (axes[0], axes[1])
        fixed = [f"{fixed_name} = {fixed_values[0]:g}"]
        axes = [drawn]
        evs = evs.reshape(len(labels), len(drawn[1]))
    if len(axes) == 1:
        figure, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
        ((name, values),) = axes
        marker = "o" if len(values) < 2 else None
        for label, row in zip(labels, evs, strict=True):
            ax.plot(values, row, marker=marker, label=f"<{label}>")
        ax.set_xlabel(name)
        ax.set_ylabel("expectation value")
        ax.legend()
    elif len(axes) == 2:
        (x_name, x), (y_name, y) = axes
        figure, panels = plt.subplots(1, len(labels), figsize=(5.5 * len(labels), 4.5), dpi=100, squeeze=False)
        for ax, label, grid in zip(panels[0], labels, evs, strict=True):
            image = ax.pcolormesh(x, y, grid.T, shading="auto", cmap="viridis")
            figure.colorbar(image, ax=ax, label=f"<{label}>")
            ax.set_title(f"<{label}>")
            ax.set_xlabel(x_name)
            ax.set_ylabel(y_name)
    else:
        raise ValueError(f"--plot draws 1 or 2 grid axes; this grid has {len(axes)}")
    figure.suptitle(title + (f" ({', '.join(fixed)})" if fixed else ""))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _needed_modules(args: argparse.Namespace, text: str) -> list[str]:
    """The optional modules this run needs (checked before any work)."""
    needed = []
    if not text.lstrip().startswith("OPENQASM 2"):
        needed.append("qiskit_qasm3_import")  # what qiskit.qasm3.loads reads OpenQASM 3 with
    if not args.no_progress:
        needed.append("tqdm")
    if args.plot is not None:
        needed.append("matplotlib")
    if args.dask is not None or args.dask_local:
        needed.append("distributed")
    return needed


def main(args: argparse.Namespace) -> int:
    try:
        text = args.circuit.read_text()
    except OSError as exc:
        print(f"aqrt sweep: {exc}", file=sys.stderr)
        return 2
    missing = missing_extras("aqrt sweep", _needed_modules(args, text))
    if missing is not None:
        hint = " (or pass --no-progress)" if "tqdm" in missing else ""
        print(missing + hint, file=sys.stderr)
        return 2
    try:
        circuit = load_circuit(text)
        axes = [parse_axis(text) for text in args.param]
        labels = args.observable or ["Z" * circuit.num_qubits]
        for label in labels:
            if len(label) != circuit.num_qubits or set(label) - set("IXYZ"):
                raise ValueError(f"--observable {label!r}: a Pauli label of {circuit.num_qubits} characters from IXYZ")
        if args.plot is not None and len(axes) not in (1, 2):
            raise ValueError(f"--plot draws 1 or 2 grid axes; this grid has {len(axes)}")
        if args.output is not None and args.output.suffix not in (".npz", ".json"):
            raise ValueError(f"--output {args.output}: the name must end in .npz or .json")
    except (OSError, ValueError) as exc:
        print(f"aqrt sweep: {exc}", file=sys.stderr)
        return 2
    show_compile_notice()  # one line on stderr if the job's kernels compile (a first run)
    kwargs: dict[str, Any] = {
        "chunk_bindings": args.chunk_bindings,
        "precision": args.precision,
        "seed": args.seed,
        "progress": not args.no_progress,
    }
    try:
        if args.dask_local:
            from .distributed import LocalProcessCluster

            with LocalProcessCluster(n_workers=args.dask_local) as address:
                evs, metadata = asyncio.run(run_sweep(circuit, axes, labels, dask=address, **kwargs))
        else:
            evs, metadata = asyncio.run(run_sweep(circuit, axes, labels, dask=args.dask, **kwargs))
    except ValueError as exc:
        print(f"aqrt sweep: {exc}", file=sys.stderr)
        return 2
    if args.output is not None:
        _write(args.output, evs, axes, labels)
    if args.plot is not None:
        _plot(args.plot, evs, axes, labels, title=f"aqrt sweep of {args.circuit.name}")
    grid_text = " x ".join(f"{name}[{len(values)}]" for name, values in axes) or "no parameters"
    print(f"{evs[0].size} bindings ({grid_text}), {len(labels)} observable(s)")
    executor = metadata.get("executor")
    if executor:
        print(f"ran on the Dask cluster at {executor['dask']} in {executor['chunks']} chunks")
    for label, row in zip(labels, evs, strict=True):
        print(f"<{label}>: min {row.min():.6f}, max {row.max():.6f}, mean {row.mean():.6f}")
    if args.output is not None:
        print(f"results written to {args.output}")
    if args.plot is not None:
        print(f"plot written to {args.plot}")
    return 0
