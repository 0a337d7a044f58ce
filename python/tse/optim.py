"""Optimisers, learning-rate schedules and gradient clipping (``tse::optim``)."""

from . import _C

__all__ = []
