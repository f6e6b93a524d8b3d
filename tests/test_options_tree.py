"""qiskit-ibm-runtime's V2 options tree in aqrt (issue #11 item 4).

Every option is settable, validated at assignment (checked against qiskit-ibm-runtime's own
classes: what IBM accepts aqrt accepts, what IBM refuses aqrt refuses, with the documented
exceptions), reported when a backend cannot honour it, and sent over HTTP exactly as the
official client sends it. Jobs carry a frozen snapshot.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import CouplingMap
from qiskit_ibm_runtime.options import EstimatorOptions as IBMEstimatorOptions
from qiskit_ibm_runtime.options import SamplerOptions as IBMSamplerOptions

from aqrt import (
    Batch,
    Estimator,
    EstimatorOptions,
    InvalidOptionsError,
    LocalService,
    Options,
    Sampler,
    SamplerOptions,
    Session,
)
from aqrt.backends.local.options_report import options_not_applied
from aqrt.options import option_fields
from aqrt.server import serve_in_thread
from aqrt.server.config import ServerConfig
from aqrt.server.errors import ApiError
from aqrt.server.params import decode_params_sync
from aqrt.wire import runtime_api as api

from .server.server_support import CRN, make_config


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


def measured_bell() -> QuantumCircuit:
    circuit = bell()
    circuit.measure_all()
    return circuit


def set_path(options: Any, path: str, value: Any) -> None:
    *groups, leaf = path.split(".")
    setattr(functools.reduce(getattr, groups, options), leaf, value)


def get_path(options: Any, path: str) -> Any:
    return functools.reduce(getattr, path.split("."), options)


# -- every leaf: a value IBM and aqrt accept, values both refuse ---------------------------------

# path -> (a valid value, what aqrt reads back)
GOOD: dict[str, tuple[Any, Any]] = {
    "optimization_level": (2, 2),
    "resilience_level": (2, 2),
    "default_shots": (2000, 2000),
    "default_precision": (0.01, 0.01),
    "seed": (7, 7),
    "seed_estimator": (8, 8),
    "max_execution_time": (300, 300),
    "dynamical_decoupling.enable": (True, True),
    "dynamical_decoupling.sequence_type": ("XpXm", "XpXm"),
    "dynamical_decoupling.extra_slack_distribution": ("edges", "edges"),
    "dynamical_decoupling.scheduling_method": ("asap", "asap"),
    "dynamical_decoupling.skip_reset_qubits": (True, True),
    "resilience.measure_mitigation": (True, True),
    "resilience.measure_noise_learning.num_randomizations": (64, 64),
    "resilience.measure_noise_learning.shots_per_randomization": ("auto", "auto"),
    "resilience.zne_mitigation": (True, True),
    "resilience.zne.amplifier": ("gate_folding_front", "gate_folding_front"),
    "resilience.zne.noise_factors": ([1, 2, 3], (1.0, 2.0, 3.0)),
    "resilience.zne.extrapolator": (["linear", "polynomial_degree_2"], ("linear", "polynomial_degree_2")),
    "resilience.zne.extrapolated_noise_factors": ([0, 0.5, 1], (0.0, 0.5, 1.0)),
    "resilience.pec_mitigation": (False, False),
    "resilience.pec.max_overhead": (50, 50.0),
    "resilience.pec.noise_gain": ("auto", "auto"),
    "resilience.layer_noise_learning.max_layers_to_learn": (3, 3),
    "resilience.layer_noise_learning.shots_per_randomization": (64, 64),
    "resilience.layer_noise_learning.num_randomizations": (16, 16),
    "resilience.layer_noise_learning.layer_pair_depths": ([0, 1, 2], (0, 1, 2)),
    "resilience.layer_noise_model": ((), ()),  # any object: IBM's NoiseLearnerResult is not imported
    "execution.init_qubits": (False, False),
    "execution.rep_delay": (0.0002, 0.0002),
    "execution.meas_type": ("kerneled", "kerneled"),
    "twirling.enable_gates": (True, True),
    "twirling.enable_measure": (False, False),
    "twirling.num_randomizations": (16, 16),
    "twirling.shots_per_randomization": ("auto", "auto"),
    "twirling.strategy": ("all", "all"),
    "environment.log_level": ("DEBUG", "DEBUG"),
    "environment.callback": (print, print),
    "environment.job_tags": (["a", "b"], ("a", "b")),
    "environment.private": (True, True),
    "simulator.noise_model": ({"errors": []}, {"errors": []}),
    "simulator.seed_simulator": (9, 9),
    "simulator.coupling_map": ([[0, 1], [1, 0]], ((0, 1), (1, 0))),
    "simulator.basis_gates": (["cx", "rz"], ("cx", "rz")),
    "experimental": ({"image": "x:y"}, {"image": "x:y"}),
}

# path -> [(bad value, fragment the message must hold)]: allowed values named with the path.
BAD: dict[str, list[tuple[Any, str]]] = {
    "optimization_level": [(4, r"optimization_level must be in 0..3, got 4")],
    "resilience_level": [(3, "resilience_level must be in 0..2, got 3"), ("1", "resilience_level must be an int")],
    "default_shots": [(-1, "default_shots must be in >= 1, got -1"), (1.5, "default_shots must be an int")],
    "default_precision": [(-0.1, "default_precision must be finite and >= 0"), ("x", "must be a real number")],
    "seed": [(-1, "seed must be in >= 0")],
    "seed_estimator": [(-2, "seed_estimator must be in >= 0"), (1.5, "seed_estimator must be an int")],
    "max_execution_time": [(-5, "max_execution_time=-5 must be positive"), ("1x", "max_execution_time='1x'")],
    "dynamical_decoupling.enable": [("yes", "dynamical_decoupling.enable must be True or False")],
    "dynamical_decoupling.sequence_type": [("XZ", "dynamical_decoupling.sequence_type must be one of 'XX', 'XpXm'")],
    "dynamical_decoupling.extra_slack_distribution": [("ends", "must be one of 'middle', 'edges'")],
    "dynamical_decoupling.scheduling_method": [("alab", "must be one of 'alap', 'asap'")],
    "dynamical_decoupling.skip_reset_qubits": [(1, "dynamical_decoupling.skip_reset_qubits must be True or False")],
    "resilience.measure_mitigation": [("on", "resilience.measure_mitigation must be True or False")],
    "resilience.measure_noise_learning.num_randomizations": [
        (0, "resilience.measure_noise_learning.num_randomizations must be in >= 1")
    ],
    "resilience.measure_noise_learning.shots_per_randomization": [
        ("many", "resilience.measure_noise_learning.shots_per_randomization must be an int >= 1 or 'auto'")
    ],
    "resilience.zne_mitigation": [(2, "resilience.zne_mitigation must be True or False")],
    "resilience.zne.amplifier": [("folding", "resilience.zne.amplifier must be one of 'gate_folding'")],
    "resilience.zne.noise_factors": [
        ([0.5, 1], "resilience.zne.noise_factors must be a list of real numbers, each >= 1"),
        (3, "resilience.zne.noise_factors must be a list"),
    ],
    "resilience.zne.extrapolator": [
        ("cubic", "resilience.zne.extrapolator must be one of 'linear', 'exponential', 'double_exponential'"),
        (["linear", "quintic"], "or a non-empty list of them"),
    ],
    "resilience.zne.extrapolated_noise_factors": [("0", "resilience.zne.extrapolated_noise_factors must be a list")],
    "resilience.pec_mitigation": [("no", "resilience.pec_mitigation must be True or False")],
    "resilience.pec.max_overhead": [(0, "resilience.pec.max_overhead must be finite and > 0")],
    "resilience.pec.noise_gain": [(-1, "resilience.pec.noise_gain must be finite and >= 0")],
    "resilience.layer_noise_learning.max_layers_to_learn": [(-1, "max_layers_to_learn must be in >= 0")],
    "resilience.layer_noise_learning.shots_per_randomization": [(0, "shots_per_randomization must be in >= 1")],
    "resilience.layer_noise_learning.num_randomizations": [(0, "num_randomizations must be in >= 1")],
    "resilience.layer_noise_learning.layer_pair_depths": [([0, -1], "layer_pair_depths must be a list of ints >= 0")],
    "execution.init_qubits": [("true", "execution.init_qubits must be True or False")],
    "execution.rep_delay": [(-1.0, "execution.rep_delay must be finite and >= 0")],
    "execution.meas_type": [("raw", "execution.meas_type must be one of 'classified', 'kerneled', 'avg_kerneled'")],
    "twirling.enable_gates": [(1, "twirling.enable_gates must be True or False")],
    "twirling.enable_measure": [("no", "twirling.enable_measure must be True or False")],
    "twirling.num_randomizations": [(0, "twirling.num_randomizations must be an int >= 1 or 'auto'")],
    "twirling.shots_per_randomization": [("lots", "twirling.shots_per_randomization must be an int >= 1 or 'auto'")],
    "twirling.strategy": [("some", "twirling.strategy must be one of 'active', 'active-accum', 'active-circuit'")],
    "environment.log_level": [("LOUD", "environment.log_level must be one of 'DEBUG', 'INFO', 'WARNING'")],
    "environment.callback": [(3, "environment.callback must be a callable")],
    "environment.job_tags": [("tag", "environment.job_tags must be a list of strings"), ([1], "list of strings")],
    "environment.private": [("yes", "environment.private must be True or False")],
    "simulator.noise_model": [("noisy", "simulator.noise_model must be a qiskit_aer.noise.NoiseModel")],
    "simulator.seed_simulator": [(-3, "simulator.seed_simulator must be in >= 0")],
    "simulator.coupling_map": [([[0, 1, 2]], "simulator.coupling_map must be a CouplingMap or a list of")],
    "simulator.basis_gates": [("cx", "simulator.basis_gates must be a list of strings")],
    "experimental": [(["image"], "experimental must be a dict with string keys")],
}

# Leaves whose default is not None (IBM's own defaults).
DEFAULTS = {"environment.log_level": "WARNING", "environment.private": False}
# aqrt's own fields, not IBM's.
AQRT_ONLY = {"optimization_level", "seed"}
# Values qiskit-ibm-runtime (pydantic's lax mode) accepts at assignment that aqrt refuses, as
# documented in aqrt/options.py: bools must be bools, ints ints, seeds and delays >= 0, tags
# strings, coupling-map entries pairs, max_execution_time a positive duration.
IBM_ACCEPTS = {
    ("resilience_level", "'1'"),
    ("seed_estimator", "-2"),
    ("max_execution_time", "-5"),
    ("dynamical_decoupling.enable", "'yes'"),
    ("dynamical_decoupling.skip_reset_qubits", "1"),
    ("resilience.measure_mitigation", "'on'"),
    ("resilience.pec_mitigation", "'no'"),
    ("execution.init_qubits", "'true'"),
    ("execution.rep_delay", "-1.0"),
    ("twirling.enable_gates", "1"),
    ("twirling.enable_measure", "'no'"),
    ("environment.job_tags", "[1]"),
    ("environment.private", "'yes'"),
    ("simulator.seed_simulator", "-3"),
    ("simulator.coupling_map", "[[0, 1, 2]]"),
}


def leaves(kind: type[Options]) -> list[str]:
    return [path for path, is_group in option_fields(kind).items() if not is_group]


def test_the_tables_cover_every_leaf_of_both_classes() -> None:
    every = set(leaves(Options))
    assert set(leaves(EstimatorOptions)) | set(leaves(SamplerOptions)) == every
    assert set(GOOD) == every == set(BAD) | {"resilience.layer_noise_model"}
    assert "execution.meas_type" not in leaves(EstimatorOptions)
    assert {"resilience_level", "default_precision", "seed_estimator"}.isdisjoint(leaves(SamplerOptions))


@pytest.mark.parametrize("path", sorted(GOOD))
def test_every_leaf_is_settable_by_attribute_and_reads_back(path: str) -> None:
    value, read_back = GOOD[path]
    options = Options()
    assert get_path(options, path) == DEFAULTS.get(path), "unset reads None (or IBM's own default)"
    if path == "resilience.measure_noise_learning.num_randomizations" or path.startswith(
        "resilience.measure_noise_learning."
    ):
        options.resilience.measure_mitigation = True  # IBM's rule: learning options need it
    set_path(options, path, value)
    assert get_path(options, path) == read_back
    assert get_path(options.snapshot(), path) == read_back
    set_path(options, path, None)  # None unsets
    assert get_path(options, path) == DEFAULTS.get(path)


@pytest.mark.parametrize(("path", "bad", "message"), [(p, v, m) for p, cases in BAD.items() for v, m in cases])
def test_every_leaf_is_validated_at_assignment_naming_the_path(path: str, bad: Any, message: str) -> None:
    options = Options()
    snapshot = options.snapshot()
    with pytest.raises(InvalidOptionsError) as info:
        set_path(options, path, bad)
    assert message in str(info.value)
    assert options == Options() and options.snapshot() is snapshot, "a refused value changes nothing"


def _ibm_class(path: str) -> type:
    return IBMSamplerOptions if path == "execution.meas_type" else IBMEstimatorOptions


def _ibm_set(path: str, value: Any) -> None:
    options = _ibm_class(path)()
    if path.startswith("resilience.measure_noise_learning."):
        options.resilience.measure_mitigation = True
    set_path(options, path, value)


@pytest.mark.parametrize("path", sorted(set(GOOD) - AQRT_ONLY - {"environment.callback"}))
def test_what_aqrt_accepts_qiskit_ibm_runtime_accepts(path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _ibm_set(path, GOOD[path][0])


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (path, bad)
        for path, cases in sorted(BAD.items())
        for bad, _ in cases
        if path not in AQRT_ONLY | {"environment.callback"} and (path, repr(bad)) not in IBM_ACCEPTS
    ],
)
def test_what_aqrt_refuses_qiskit_ibm_runtime_refuses(path: str, bad: Any) -> None:
    with warnings.catch_warnings(), pytest.raises(Exception):  # noqa: B017 (pydantic's ValidationError)
        warnings.simplefilter("ignore")
        _ibm_set(path, bad)


def test_unknown_names_raise_at_any_depth_naming_the_known_ones() -> None:
    options = EstimatorOptions()
    with pytest.raises(
        InvalidOptionsError,
        match=r"unknown option\(s\) \['resilience.zne.bogus'\]; known options"
        r" of resilience.zne are \['amplifier', 'extrapolated_noise_factors', 'extrapolator'",
    ):
        options.resilience.zne.bogus = 1
    with pytest.raises(InvalidOptionsError, match=r"unknown option\(s\) \['twirling.enable'\]"):
        EstimatorOptions(twirling={"enable": True})
    with pytest.raises(InvalidOptionsError, match=r"unknown option\(s\) \['shots'\]; known options are"):
        options.shots = 5
    with pytest.raises(InvalidOptionsError, match=r"\['execution.meas_type'\]"):
        options.execution.meas_type = "classified"  # a Sampler option, as on IBM
    with pytest.raises(InvalidOptionsError, match=r"\['default_precision'\].*\(SamplerOptions\)"):
        SamplerOptions(default_precision=0.1)


def test_cross_field_rules_are_ibms() -> None:
    options = EstimatorOptions()
    with pytest.raises(InvalidOptionsError, match="'double_exponential' requires at least 4 noise_factors, got 3"):
        options.resilience.zne.extrapolator = "double_exponential"
    options.resilience.zne.noise_factors = [1, 2, 3, 4]
    options.resilience.zne.extrapolator = "double_exponential"
    with pytest.raises(InvalidOptionsError, match="requires at least 4 noise_factors, got 2"):
        options.resilience.zne.noise_factors = [1, 3]
    assert options.resilience.zne.noise_factors == (1.0, 2.0, 3.0, 4.0)
    options.resilience.zne_mitigation = True
    with pytest.raises(InvalidOptionsError, match=r"pec_mitigation and resilience\.zne_mitigation cannot both be True"):
        options.resilience.pec_mitigation = True
    with pytest.raises(InvalidOptionsError, match="measure_noise_learning options are set, but"):
        EstimatorOptions(resilience={"measure_noise_learning": {"num_randomizations": 3}})
    # IBM checks a group's rule when that group's own fields are assigned, so this order works:
    options.resilience.measure_noise_learning.num_randomizations = 3
    options.resilience.measure_mitigation = True


# -- the 14 forms of the issue, each against the official client's params -------------------------


def ibm_params(options: Any) -> dict[str, Any]:
    """What qiskit-ibm-runtime's V2 primitives put in a job's params (less the PUBs)."""
    params = type(options)._get_program_inputs(dataclasses.asdict(options))
    return json.loads(json.dumps(params))  # as it travels (tuples become lists)


def aqrt_params(program: str, options: Options) -> dict[str, Any]:
    pubs = [(bell(), "ZZ")] if program == "estimator" else [measured_bell()]
    params = json.loads(json.dumps(api.job_params(program, pubs, options)))  # type: ignore[arg-type]
    del params["pubs"]
    return params


EXPERIMENTAL = {"twirling": {"strategy": "all"}, "other": 1, "image": "img:1"}
FORMS: list[tuple[str, Callable[[Any], None]]] = [
    ("resilience_level", lambda o: setattr(o, "resilience_level", 2)),
    ("default_shots", lambda o: setattr(o, "default_shots", 2000)),
    ("zne_mitigation", lambda o: setattr(o.resilience, "zne_mitigation", True)),
    ("zne.noise_factors", lambda o: setattr(o.resilience.zne, "noise_factors", (1, 3, 5))),
    ("zne.extrapolator", lambda o: setattr(o.resilience.zne, "extrapolator", ["exponential", "linear"])),
    ("measure_mitigation", lambda o: setattr(o.resilience, "measure_mitigation", True)),
    ("twirling.enable_gates", lambda o: setattr(o.twirling, "enable_gates", True)),
    ("twirling.num_randomizations", lambda o: setattr(o.twirling, "num_randomizations", 32)),
    ("dynamical_decoupling", lambda o: setattr(o.dynamical_decoupling, "enable", True)),
    ("dd.sequence_type", lambda o: setattr(o.dynamical_decoupling, "sequence_type", "XpXm")),
    ("environment.job_tags", lambda o: setattr(o.environment, "job_tags", ["exp-1"])),
    ("seed_simulator", lambda o: setattr(o.simulator, "seed_simulator", 42)),
    ("update", lambda o: o.update(default_shots=100, twirling={"enable_measure": True, "strategy": "all"})),
    ("seed_estimator", lambda o: setattr(o, "seed_estimator", 5)),
    ("execution", lambda o: setattr(o.execution, "init_qubits", False)),
    ("max_execution_time", lambda o: setattr(o, "max_execution_time", 300)),
    ("experimental", lambda o: setattr(o, "experimental", EXPERIMENTAL)),
    ("coupling_map", lambda o: setattr(o.simulator, "coupling_map", CouplingMap([[0, 1], [1, 2]]))),
]


@pytest.mark.parametrize(("name", "form"), FORMS, ids=[name for name, _ in FORMS])
@pytest.mark.asyncio
async def test_each_form_works_on_a_primitive_and_travels_as_the_official_client_sends_it(
    name: str, form: Callable[[Any], None]
) -> None:
    estimator = Estimator(mode=LocalService().backend())
    form(estimator.options)
    official = IBMEstimatorOptions()
    form(official)
    assert aqrt_params("estimator", estimator.options) == ibm_params(official)
    if estimator.options.seed is None:
        estimator.options.seed = 1  # default_shots=100 means precision 0.1: seeded, not a coin toss
    result = await estimator.run([(bell(), "ZZ")])
    assert abs(float(result[0].data.evs) - 1.0) < 0.5  # 5 x the coarsest precision a form sets


def test_all_forms_at_once_on_both_programs_travel_as_the_official_client_sends_them() -> None:
    estimator, official = EstimatorOptions(), IBMEstimatorOptions()
    sampler, official_sampler = SamplerOptions(), IBMSamplerOptions()
    for name, form in FORMS:
        form(estimator)
        form(official)
        if name not in {"resilience_level", "zne_mitigation", "zne.noise_factors", "zne.extrapolator"} | {
            "measure_mitigation",
            "seed_estimator",
        }:
            form(sampler)
            form(official_sampler)
    sampler.execution.meas_type = official_sampler.execution.meas_type = "avg_kerneled"
    assert aqrt_params("estimator", estimator) == ibm_params(official)
    assert aqrt_params("sampler", sampler) == ibm_params(official_sampler)


def test_unset_options_send_what_the_official_client_sends() -> None:
    assert aqrt_params("estimator", EstimatorOptions()) == ibm_params(IBMEstimatorOptions())
    assert aqrt_params("sampler", SamplerOptions()) == ibm_params(IBMSamplerOptions())
    assert aqrt_params("estimator", EstimatorOptions()) == {"options": {}, "version": 2, "support_qiskit": True}


def test_aqrt_seed_is_sent_under_the_programs_ibm_name() -> None:
    assert aqrt_params("estimator", Options(seed=3))["options"] == {"seed_estimator": 3}
    assert aqrt_params("sampler", Options(seed=3))["options"] == {"simulator": {"seed_simulator": 3}}
    # IBM's seeds as set, when they already give the job's seed:
    assert aqrt_params("estimator", Options(simulator={"seed_simulator": 4}))["options"] == {
        "simulator": {"seed_simulator": 4}
    }
    # aqrt's seed wins over IBM's: sent so that the server draws with it too.
    both = Options(seed=1, seed_estimator=2)
    assert both.seed == 1 and aqrt_params("estimator", both)["options"] == {"seed_estimator": 1}


def test_options_a_program_lacks_and_optimization_level_are_named_not_sent() -> None:
    options = Options(optimization_level=2, resilience_level=1, default_precision=0.1)
    options.environment.private = True
    not_sent = api.options_not_sent(options, "sampler")
    assert set(not_sent) == {"optimization_level", "resilience_level", "default_precision", "environment.private"}
    assert "not an option of the Sampler" in not_sent["resilience_level"]
    assert aqrt_params("sampler", options) == {"options": {}, "version": 2, "support_qiskit": True}
    assert set(api.options_not_sent(options, "estimator")) == {"optimization_level", "environment.private"}


# -- the server's side: every valid IBM option accepted, unknown ones a 400 ----------------------


SERVER = ServerConfig(db_path=":memory:", api_keys={"key": "user"})


def server_decode(program: str, params: dict[str, Any]) -> Options:
    pubs = [(bell(), "ZZ")] if program == "estimator" else [measured_bell()]
    wire = json.loads(json.dumps(api.job_params(program, pubs, Options())))  # type: ignore[arg-type]
    return decode_params_sync(program, {**wire, **params}, None, SERVER)[1]


def test_the_server_accepts_every_valid_ibm_option() -> None:
    official = IBMEstimatorOptions()
    for _, form in FORMS:
        form(official)
    official.resilience.zne.noise_factors = (1, 2, 3, 4)
    official.resilience.zne.extrapolator = "double_exponential"
    official.resilience.pec.max_overhead = 10
    official.resilience.layer_noise_learning.layer_pair_depths = [0, 1]
    official.simulator.noise_model = {"errors": []}
    params = json.loads(json.dumps(ibm_params(official)))
    decoded = server_decode("estimator", params)
    assert isinstance(decoded, EstimatorOptions)
    assert decoded.resilience.zne.extrapolator == "double_exponential" and decoded.resilience_level == 2
    assert decoded.twirling.strategy == "all" and decoded.experimental == {"other": 1}
    assert decoded.simulator.coupling_map == ((0, 1), (1, 2)) and decoded.seed == 5


@pytest.mark.parametrize(
    ("program", "options", "message"),
    [
        ("estimator", {"twirling": {"enable": True}}, r"unknown option(s) ['twirling.enable']"),
        ("estimator", {"bogus": 1}, "unknown option(s) ['bogus']"),
        ("sampler", {"default_precision": 0.1}, "unknown option(s) ['default_precision']"),
        ("estimator", {"resilience": {"zne": {"extrapolator": "cubic"}}}, "resilience.zne.extrapolator must be"),
    ],
)
def test_the_server_refuses_unknown_or_invalid_options_with_a_400_naming_them(
    program: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as info:
        server_decode(program, {"options": options})
    assert info.value.status == 400 and message in str(info.value)


# -- primitives: construction, update, snapshots --------------------------------------------------


def test_construction_as_objects_or_nested_dicts() -> None:
    from_dict = Estimator(options={"resilience": {"zne_mitigation": True}, "default_shots": 10})
    assert type(from_dict.options) is EstimatorOptions and from_dict.options.resilience.zne_mitigation is True
    given = EstimatorOptions(twirling={"enable_gates": True})
    from_object = Estimator(options=given)
    assert from_object.options == given and from_object.options is not given
    given.twirling.enable_gates = False
    assert from_object.options.twirling.enable_gates is True, "the primitive holds its own copy"
    assert type(Sampler().options) is SamplerOptions
    converted = Estimator(options=SamplerOptions(default_shots=5))
    assert type(converted.options) is EstimatorOptions and converted.options.default_shots == 5
    with pytest.raises(InvalidOptionsError, match=r"unknown option\(s\) \['resilience.zne.bogus'\]"):
        Estimator(options={"resilience": {"zne": {"bogus": 1}}})


def test_update_merges_nested_dicts_and_takes_dotted_and_bare_names_all_or_nothing() -> None:
    options = EstimatorOptions(twirling={"enable_gates": True})
    options.update(twirling={"strategy": "all"}, **{"resilience.zne.noise_factors": [1, 2]}, zne_mitigation=True)
    assert options.twirling.enable_gates is True and options.twirling.strategy == "all"
    assert options.resilience.zne.noise_factors == (1.0, 2.0) and options.resilience.zne_mitigation is True
    options.twirling = {"num_randomizations": 4}  # assignment replaces the group, as on IBM
    assert options.twirling.enable_gates is None and options.twirling.num_randomizations == 4
    before = options.copy()
    with pytest.raises(InvalidOptionsError, match=r"'num_randomizations' is ambiguous: it names resilience\.measure"):
        options.update(num_randomizations=3)
    with pytest.raises(InvalidOptionsError, match=r"resilience\.zne\.extrapolator must be"):
        options.update(default_shots=7, resilience={"zne": {"extrapolator": "cubic"}})
    with pytest.raises(InvalidOptionsError, match=r"unknown option\(s\) \['twirling.nope'\]"):
        options.update(**{"twirling.nope": 1})
    assert options == before and options.default_shots is None


def test_the_seeds_v1_style_works_as_written() -> None:
    options = Options()
    options.optimization_level = 2
    options.resilience_level = 2
    estimator = Estimator(options=options)
    assert type(estimator.options) is Options and estimator.options == Options(optimization_level=2, resilience_level=2)
    assert Options(optimization_level=2, resilience_level=2).replace(seed=7).seed == 7
    assert Options.coerce({"seed": 3}).seed == 3 and Options.from_mapping({"default_shots": 5}).default_shots == 5
    assert "optimization_level=None" in str(inspect.signature(Options))
    assert list(inspect.signature(EstimatorOptions).parameters)[:3] == [
        "optimization_level",
        "resilience_level",
        "default_shots",
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", [Session, Batch])
async def test_a_job_carries_a_frozen_snapshot_later_changes_do_not_reach_it(mode: type[Session]) -> None:
    async with mode(backend="aqrt_statevector"):
        estimator = Estimator(options={"default_precision": 0.25, "seed": 3})
        first = estimator.options.snapshot()
        assert estimator.options.snapshot() is first, "unchanged options: the cached snapshot"
        job = estimator.run([(bell(), "ZZ")])
        estimator.options.default_precision = 0.5
        estimator.options.twirling.enable_gates = True  # a change at depth invalidates too
        later = estimator.run([(bell(), "ZZ")])
        assert job.options is first and job.options.default_precision == 0.25
        assert later.options.default_precision == 0.5 and later.options.twirling.enable_gates is True
        assert float((await job)[0].data.stds) == 0.25 and float((await later)[0].data.stds) == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError, match="frozen snapshot"):
        job.options.default_precision = 0.1
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.options.twirling.enable_gates = False
    assert type(job.options) is Options and job.options.frozen and hash(job.options) == hash(first)
    shipped = pickle.loads(pickle.dumps(job.options))  # Dask ships job requests
    assert shipped == job.options and shipped.frozen and hash(shipped) == hash(job.options)


def test_primitives_with_default_options_share_one_snapshot_until_a_change() -> None:
    """A primitive made per job with default options shares its class's default snapshot (no
    copy of the tree per run()); any change, at any depth or through update(), or a copy that
    is then changed, gets a snapshot of its own, and the shared one never moves."""
    shared = Estimator().options.snapshot()
    assert Estimator().options.snapshot() is shared and shared == EstimatorOptions()._frozen_as(Options)
    assert shared.frozen and type(shared) is Options
    assert Sampler().options.snapshot() is not shared and Sampler().options.snapshot() is Sampler().options.snapshot()
    assert Estimator(options={"default_shots": 5}).options.snapshot() is not shared
    deep = Estimator()
    deep.options.twirling.enable_gates = True
    updated = Estimator()
    updated.options.update(resilience_level=2)
    for estimator, (path, value) in ((deep, ("twirling.enable_gates", True)), (updated, ("resilience_level", 2))):
        own = estimator.options.snapshot()
        assert own is not shared and get_path(own, path) == value and get_path(shared, path) != value
    refused = Estimator()
    with pytest.raises(InvalidOptionsError):
        refused.options.default_shots = -1
    assert refused.options.snapshot() is shared, "a refused value changes nothing"
    copied = Estimator().options.copy()
    assert copied.snapshot() is shared
    copied.default_precision = 0.125
    assert copied.snapshot().default_precision == 0.125 and shared.default_precision is None
    assert Estimator().options.snapshot() is shared


def test_equality_follows_every_change_of_mutable_options_and_never_changes_for_a_snapshot() -> None:
    """A frozen snapshot reads its set fields once (its hash and comparisons share them); mutable
    options read theirs on every comparison, so a change made after one is seen by the next."""
    options = Options()
    assert options == Options()
    options.default_shots = 5
    assert options != Options() and options == Options(default_shots=5)
    options.twirling.enable_gates = True
    assert options != Options(default_shots=5)
    snapshot = options.snapshot()
    assert snapshot == options and hash(snapshot) == hash(options.snapshot())
    first = snapshot._set_items()
    assert snapshot._set_items() is first, "a snapshot's set fields are made once"
    options.default_shots = 6
    assert snapshot != options and options.snapshot() != snapshot and snapshot._set_items() is first
    copy_of_snapshot = snapshot.copy()
    copy_of_snapshot.default_shots = 7  # a snapshot's mutable copy reads its own fields afresh
    assert copy_of_snapshot != snapshot and copy_of_snapshot.default_shots == 7
    shipped = pickle.loads(pickle.dumps(snapshot))
    assert shipped == snapshot and hash(shipped) == hash(snapshot) and shipped._set_items() == first


def test_a_noise_model_is_kept_by_reference_and_reported_by_a_noiseless_backend() -> None:
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.01, 1), ["x"])
    options = EstimatorOptions(simulator={"noise_model": model, "seed_simulator": 2})
    assert options.snapshot().simulator.noise_model is model and options.seed == 2
    report = options_not_applied("estimator", options) or {}
    assert set(report) == {"simulator.noise_model"} and "a NoiseModel" in report["simulator.noise_model"]
    assert options_not_applied("estimator", options, honoured=["simulator.noise_model"]) is None


@pytest.mark.asyncio
async def test_estimator_default_shots_sets_the_precision_and_sampler_default_shots_the_shots() -> None:
    async with Session(backend="aqrt_statevector"):
        estimator = Estimator(options={"seed": 1})
        estimator.options.default_shots = 400
        assert float((await estimator.run([(bell(), "ZZ")]))[0].data.stds) == pytest.approx(0.05)
        sampler = Sampler(options=SamplerOptions(default_shots=33))
        sampler.options.simulator.seed_simulator = 4
        result = await sampler.run([measured_bell()])
        assert result[0].data.meas.num_shots == 33
        again = await Sampler(options={"seed": 4, "default_shots": 33}).run([measured_bell()])
        assert result[0].data.meas.get_counts() == again[0].data.meas.get_counts()


# -- reporting --------------------------------------------------------------------------------


HONOURED_LOCALLY = {
    "optimization_level",
    "default_shots",
    "default_precision",
    "seed",
    "seed_estimator",
    "simulator.seed_simulator",
    "max_execution_time",
}


@pytest.mark.parametrize("path", sorted(GOOD))
def test_every_option_set_is_honoured_or_reported_by_the_local_backend(path: str) -> None:
    value = GOOD[path][0]
    if value is False and path != "execution.init_qubits":
        value = True  # a switch set to False asks for nothing
    options = Options()
    if path.startswith("resilience.measure_noise_learning."):
        options.resilience.measure_mitigation = True
    set_path(options, path, value)
    report = options_not_applied("estimator", options) or {}
    if path in HONOURED_LOCALLY:
        assert path not in report
    else:
        assert path in report and ("not applied" in report[path] or "applied" in report[path])
    assert options_not_applied("estimator", options, honoured=[path.split(".")[0]]) in (None, {}) or (
        path.startswith("resilience.measure_noise_learning")
    )


@pytest.mark.asyncio
async def test_a_ported_ibm_snippet_runs_changing_only_imports_and_await() -> None:
    # from qiskit_ibm_runtime import EstimatorV2 as Estimator
    from aqrt import Estimator

    backend = LocalService().backend()
    circuit, observable = bell(), SparsePauliOp("ZZ")

    estimator = Estimator(mode=backend)
    estimator.options.resilience_level = 2
    estimator.options.default_shots = 2000
    options = estimator.options
    options.twirling.enable_gates = True
    options.dynamical_decoupling.enable = True
    options.environment.job_tags = ["my-experiment"]
    options.simulator.seed_simulator = 1234

    job = estimator.run([(circuit, observable)])
    result = await job  # job.result()

    pub_result = result[0]
    assert pub_result.data.evs.shape == () and abs(float(pub_result.data.evs) - 1.0) < 0.15
    assert float(pub_result.data.stds) == pytest.approx(2000**-0.5)
    not_applied = pub_result.metadata["options_not_applied"]
    assert set(not_applied) >= {"resilience_level", "twirling.enable_gates", "dynamical_decoupling.enable"}
    assert set(not_applied) >= {"environment.job_tags"}
    assert np.isfinite(float(pub_result.data.evs))


# -- over HTTP: the official client against aqrt serve, aqrt's client against a Runtime server ----


@pytest.fixture
def official_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from qiskit_ibm_runtime import QiskitRuntimeService

    with serve_in_thread(make_config(tmp_path, backend_qubits=5), debug=True) as url:
        monkeypatch.setenv("IAM_URL", url)
        monkeypatch.setenv("QISKIT_FUNCTIONS_EXPERIMENTAL", "1")
        yield QiskitRuntimeService(
            channel="ibm_quantum_platform",
            token="alice-key",
            instance=CRN,
            url_resolver=lambda *args, **kwargs: f"{url}/api/v1",
        )


@pytest.mark.filterwarnings("ignore:The (Estimator|Sampler)V2 class is deprecated:DeprecationWarning")
def test_aqrt_serve_takes_the_official_clients_options_and_reports_what_it_cannot_honour(official_service) -> None:
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime import EstimatorV2

    backend = official_service.backend("aqrt_statevector")
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1, seed_transpiler=3).run(bell())
    observable = SparsePauliOp("ZZ").apply_layout(isa.layout)
    estimator = EstimatorV2(mode=backend)
    for _, form in FORMS:
        if _ != "coupling_map":
            form(estimator.options)
    job = estimator.run([(isa, observable)])
    pub_result = job.result()[0]
    assert abs(float(pub_result.data.evs) - 1.0) < 0.2 and float(pub_result.data.stds) == pytest.approx(0.1)
    not_applied = pub_result.metadata["options_not_applied"]
    assert {"resilience_level", "resilience.zne_mitigation", "twirling.enable_gates"} <= set(not_applied)
    assert {"dynamical_decoupling.enable", "execution.init_qubits", "experimental"} <= set(not_applied)
    assert job.tags == ["exp-1"]

    refused = EstimatorV2(mode=backend)
    refused.options.experimental = {"twirling": {"bogus": True}}  # merged into twirling by the client
    with pytest.raises(Exception, match=r"400 Client Error.*unknown option\(s\) \[\W*twirling\.bogus"):
        refused.run([(isa, observable)]).result()


@pytest.mark.asyncio
async def test_aqrt_client_sends_params_tags_and_cost_as_the_official_client(looptime) -> None:
    from tests.ibm.ibm_fault_server import FaultServer
    from tests.ibm.test_ibm_client import JOBS, service_for

    options = EstimatorOptions(seed_estimator=3, max_execution_time=60)
    for _, form in FORMS[:13]:
        form(options)
    official = IBMEstimatorOptions(seed_estimator=3, max_execution_time=60)
    for _, form in FORMS[:13]:
        form(official)
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        await Estimator(mode=backend, options=options).run([(bell(), "ZZ")])
        (post,) = server.calls("POST", JOBS)
    params = dict(post.body["params"])
    del params["pubs"]
    assert params == ibm_params(official)
    assert post.body["tags"][0] == "exp-1" and post.body["cost"] == 60
