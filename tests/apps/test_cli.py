"""The ``aqrt`` command line: sweep (local and on a local Dask cluster, .npz/.json output, PNG
plot, progress bar), bench, and clear errors for bad arguments. Each runs as a real process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qiskit import qasm3
from qiskit.quantum_info import SparsePauliOp, Statevector

from aqrt._sweep_cli import parse_axis

ROOT = Path(__file__).resolve().parents[2]

QASM = """OPENQASM 3.0;
include "stdgates.inc";
input float[64] theta;
input float[64] phi;
qubit[2] q;
ry(theta) q[0];
cx q[0], q[1];
rz(phi) q[1];
h q[1];
"""


def _aqrt(*args: str, timeout: float = 110) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aqrt", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def _exact(theta: float, phi: float, label: str) -> float:
    circuit = qasm3.loads(QASM).assign_parameters({"theta": theta, "phi": phi})
    return float(Statevector(circuit).expectation_value(SparsePauliOp(label)).real)


@pytest.mark.slow
def test_sweep_writes_npz_and_a_png_landscape_with_a_progress_bar(tmp_path: Path) -> None:
    source = tmp_path / "ansatz.qasm"
    source.write_text(QASM)
    completed = _aqrt(
        "sweep",
        str(source),
        "--param",
        "theta=0:3.14159:21",
        "--param",
        "phi=-1:1:11",
        "-o",
        "ZZ",
        "-o",
        "XI",
        "--output",
        str(tmp_path / "out.npz"),
        "--plot",
        str(tmp_path / "out.png"),
        "--chunk-bindings",
        "40",
    )
    assert completed.returncode == 0, completed.stderr
    assert "231 bindings (theta[21] x phi[11]), 2 observable(s)" in completed.stdout
    assert "231/231" in completed.stderr  # tqdm's bar reached the end
    data = np.load(tmp_path / "out.npz")
    assert data["evs"].shape == (2, 21, 11) and list(data["observables"]) == ["ZZ", "XI"]
    theta, phi = data["axis_theta"], data["axis_phi"]
    for i, j in [(0, 0), (7, 3), (20, 10)]:
        assert abs(data["evs"][0, i, j] - _exact(theta[i], phi[j], "ZZ")) < 1e-12
        assert abs(data["evs"][1, i, j] - _exact(theta[i], phi[j], "XI")) < 1e-12
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_sweep_on_a_local_dask_cluster_writes_json_equal_to_the_local_run(tmp_path: Path) -> None:
    source = tmp_path / "ansatz.qasm"
    source.write_text(QASM)
    args = ["sweep", str(source), "-p", "theta=0:1:300", "-p", "phi=0:2:1", "--chunk-bindings", "50", "--no-progress"]
    local = _aqrt(*args, "--output", str(tmp_path / "local.json"))
    dask = _aqrt(*args, "--dask-local", "1", "--output", str(tmp_path / "dask.json"))
    assert local.returncode == 0 and dask.returncode == 0, (local.stderr, dask.stderr)
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("local.json", "dask.json"))
    assert "ran on the Dask cluster at tcp://127.0.0.1:" in dask.stdout and "in 6 chunks" in dask.stdout
    assert "Dask" not in local.stdout
    assert a == b and np.asarray(a["evs"]).shape == (1, 300, 1)
    assert abs(a["evs"][0][123][0] - _exact(a["axes"]["theta"][123], 0.0, "ZZ")) < 1e-12


def test_sweep_explains_bad_arguments(tmp_path: Path) -> None:
    source = tmp_path / "ansatz.qasm"
    source.write_text(QASM)
    missing = _aqrt("sweep", str(source), "-p", "theta=0:1:3")
    assert missing.returncode == 2 and "missing ['phi']" in missing.stderr
    bad_axis = _aqrt("sweep", str(source), "-p", "theta=0:1")
    assert bad_axis.returncode == 2 and "NAME=START:STOP:NUM" in bad_axis.stderr
    bad_label = _aqrt("sweep", str(source), "-p", "theta=0:1:2", "-p", "phi=0:1:2", "-o", "ZZZ")
    assert bad_label.returncode == 2 and "2 characters" in bad_label.stderr
    no_file = _aqrt("sweep", str(tmp_path / "nope.qasm"), "-p", "theta=0:1:2")
    assert no_file.returncode == 2 and "nope.qasm" in no_file.stderr


def test_parse_axis() -> None:
    name, values = parse_axis("theta=0:1:5")
    assert name == "theta" and np.allclose(values, [0, 0.25, 0.5, 0.75, 1])
    for text in ("theta", "theta=0:1", "=0:1:2", "theta=a:1:2", "theta=0:1:0"):
        with pytest.raises(ValueError):
            parse_axis(text)


@pytest.mark.slow
def test_bench_runs_the_overhead_suite_and_prints_its_ratio_table(tmp_path: Path) -> None:
    completed = _aqrt("bench", "--quick", "--only", "overhead", "--json-dir", str(tmp_path))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "== aqrt bench: overhead" in completed.stdout
    assert "x aqrt best" in completed.stdout and "aqrt Session" in completed.stdout
    figures = json.loads((tmp_path / "overhead.json").read_text())
    assert figures


def test_bench_refuses_unknown_names_and_help_lists_the_subcommands() -> None:
    completed = _aqrt("bench", "--only", "bogus")
    assert completed.returncode == 2 and "unknown benchmark" in completed.stderr
    helped = _aqrt("--help")
    assert helped.returncode == 0
    for name in ("demo", "bench", "sweep"):
        assert name in helped.stdout


def test_importing_aqrt_loads_no_dask_tqdm_or_matplotlib() -> None:
    code = (
        "import sys, aqrt, aqrt.distributed, aqrt.progress; "
        "print(sorted(m for m in ('dask', 'distributed', 'tqdm', 'matplotlib') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert completed.stdout.strip() == "[]"


def test_the_example_qasm_file_is_the_tested_ansatz() -> None:
    example = qasm3.loads((ROOT / "examples" / "ansatz.qasm").read_text())
    assert sorted(p.name for p in example.parameters) == ["phi", "theta"]
    bound = {"theta": 0.7, "phi": -0.3}
    np.testing.assert_allclose(
        Statevector(example.assign_parameters(bound)).data,
        Statevector(qasm3.loads(QASM).assign_parameters(bound)).data,
        atol=1e-12,
    )


def test_a_missing_extra_is_named_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import aqrt._extras
    import aqrt.cli

    monkeypatch.setattr(aqrt._extras, "_importable", lambda module: module not in {"matplotlib", "tqdm"})
    source = tmp_path / "ansatz.qasm"
    source.write_text(QASM)
    output = tmp_path / "out.npz"
    argv = ["sweep", str(source), "-p", "theta=0:1:2", "-p", "phi=0:1:2", "--output", str(output)]
    assert aqrt.cli.main([*argv, "--plot", str(tmp_path / "p.png")]) == 2
    message = capsys.readouterr().err
    assert "aqrt sweep needs tqdm, matplotlib" in message and "pip install -e '.[cli]'" in message
    assert "--no-progress" in message and not output.exists()  # refused before any work
    assert aqrt.cli.missing_extras("x", ["sys"]) is None
    monkeypatch.setattr(aqrt._extras, "_importable", lambda module: False)
    message = aqrt.cli.missing_extras("aqrt sweep --dask", ["distributed", "tqdm"]) or ""
    assert "the extras aqrt[cli,dask]" in message and "pip install -e '.[cli,dask]'" in message


@pytest.mark.parametrize(
    ("shape", "labels", "width"),
    [((5, 1), ["ZZ", "XI"], 600), ((1, 4), ["ZZ"], 600), ((1, 1), ["ZZ"], 600), ((3, 4), ["ZZ", "XI"], 1100)],
)
def test_plots_draw_every_observable_and_one_value_axes(
    tmp_path: Path, shape: tuple[int, int], labels: list[str], width: int
) -> None:
    import struct

    from aqrt._sweep_cli import _plot

    axes = [("theta", np.linspace(0, 1, shape[0])), ("phi", np.linspace(-1, 1, shape[1]))]
    evs = np.random.default_rng(3).uniform(-1, 1, (len(labels), *shape))
    path = tmp_path / "plot.png"
    _plot(path, evs, axes, labels, title="aqrt sweep of test.qasm")
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">I", header[16:20])[0] == width  # one 600-px panel, or one 550-px panel per observable


def test_bench_names_a_missing_extra_before_running_anything(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import aqrt._extras
    import aqrt.cli

    monkeypatch.setattr(aqrt._extras, "_importable", lambda module: module != "distributed")
    assert aqrt.cli.main(["bench", "--quick", "--only", "sweep"]) == 2
    captured = capsys.readouterr()
    assert "aqrt bench needs distributed" in captured.err and "'.[dask]'" in captured.err
    assert "== aqrt bench" not in captured.out  # nothing was started


def test_warmup_compiles_or_loads_the_kernels_and_says_how_long() -> None:
    completed = _aqrt("warmup", "--dtype", "complex128")
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"^aqrt warmup: complex128 kernels ready in [0-9.]+ s$", completed.stdout, re.MULTILINE)


def test_a_command_without_its_extra_fails_fast_with_the_install_hint(tmp_path: Path) -> None:
    """In a process where the extras' modules cannot be imported (sys.modules[name] = None is
    what Python says for a missing module), each optional command exits 2 with the hint, well
    under a second after it starts (process start-up aside)."""
    source = tmp_path / "ansatz.qasm"
    source.write_text(QASM)
    commands = {
        "sweep --plot": [
            "sweep",
            str(source),
            "-p",
            "theta=0:1:2",
            "-p",
            "phi=0:1:2",
            "--plot",
            str(tmp_path / "p.png"),
        ],
        "sweep --dask": ["sweep", str(source), "-p", "theta=0:1:2", "-p", "phi=0:1:2", "--no-progress", "--dask", "x"],
        "bench": ["bench", "--quick"],
    }
    hidden = ["tqdm", "matplotlib", "distributed", "qiskit_aer"]
    for label, argv in commands.items():
        script = (
            "import sys, time\n"
            f"for name in {hidden!r}:\n    sys.modules[name] = None\n"
            "from aqrt.cli import main\n"
            "start = time.perf_counter()\n"
            f"status = main({argv!r})\n"
            "print(f'{time.perf_counter() - start:.3f}')\n"
            "sys.exit(status)\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 2, (label, done.stderr)
        assert "needs" in done.stderr and "pip install -e '.[" in done.stderr, (label, done.stderr)
        assert float(done.stdout.strip().splitlines()[-1]) < 1.0, (label, done.stdout)
