"""The data pipeline (built-in sounds, on-the-fly mixing) and the Trainer (``tse::train``)."""

from . import _C

__all__ = []
