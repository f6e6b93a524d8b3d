"""Estimator and Sampler (async), and EngineEstimator / EngineSampler (Qiskit's synchronous
BaseEstimatorV2 / BaseSamplerV2 over the local engine)."""

from .estimator import Estimator
from .sampler import Sampler
from .sync import EngineEstimator, EngineSampler

__all__ = ["EngineEstimator", "EngineSampler", "Estimator", "Sampler"]
