"""Named tuples returned by ``tse.max`` / ``tse.min`` with a dim: ``(values, indices)``."""

from . import _C

max = _C.return_types.max
min = _C.return_types.min

__all__ = ["max", "min"]
