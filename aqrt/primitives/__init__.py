"""Estimator and Sampler, the async primitives."""

from .estimator import Estimator
from .sampler import Sampler

__all__ = ["Estimator", "Sampler"]
