"""Mixed precision: bf16 GEMMs with float32 tensors.

``with tse.autocast():`` makes this thread's float32 ``matmul``, ``bmm``, ``linear`` and
``scaled_dot_product_attention`` (and every module built on them) read their operands rounded to bfloat16 and accumulate in float32. Tensors
stay float32 everywhere (outputs, parameters, gradients); ops recorded inside the block run their
backward GEMMs in bf16 too. float64 is never autocast. On CPUs with bf16 dot products
(``tse.amp.native_bf16()``) the GEMMs run about twice as fast; elsewhere the same rounding is
applied and they run in float32.

The weights of ``linear`` are converted once and cached beside the weight (reused while it is
unchanged, refreshed after optimizer steps or in-place ops, freed with it). After writing a
weight through a NumPy view of its memory, call ``tse.amp.clear_cache()``.
"""

from typing import Any, Union

from . import _C
from ._thread_mode import ThreadMode

__all__ = ["autocast", "native_bf16", "cached_bytes", "clear_cache", "is_autocast_enabled"]


class autocast(ThreadMode):
    """Turns bf16 GEMMs on (or, with ``enabled=False``, off) inside a ``with`` block or a decorated
    function, restoring the previous mode on exit. ``dtype`` must be ``tse.bfloat16``."""

    def __init__(self, enabled: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if not isinstance(enabled, bool):
            raise ValueError(f"autocast: enabled must be a bool, got {enabled!r}")
        self._dtype = _C.bfloat16 if dtype is None else dtype
        if not isinstance(self._dtype, _C.dtype) or self._dtype != _C.bfloat16:
            raise ValueError(f"autocast: dtype must be tse.bfloat16, got {dtype!r} (float16 GEMMs are not available on CPU)")
        self._enabled = enabled

    def _get(self) -> Any:
        return _C._autocast_dtype()

    def _set(self, value: Any) -> None:
        _C._set_autocast_dtype(value)

    def _value(self) -> Any:
        return self._dtype if self._enabled else _C.float32

    def _fresh(self) -> "autocast":
        return autocast(self._enabled, self._dtype)


def is_autocast_enabled() -> bool:
    """Whether this thread is inside an enabled autocast block."""
    return bool(_C._autocast_dtype() != _C.float32)


def native_bf16(device: Union[str, Any] = "cpu") -> bool:
    """Whether ``device`` runs bf16 GEMMs natively (CPU: AVX512_BF16 or AMX); False means autocast
    is emulated there (the same rounding at float32 speed)."""
    return bool(_C._autocast_native_bf16(device))


def cached_bytes() -> int:
    """Bytes held by the cached bf16 copies of weights."""
    return int(_C._autocast_cached_bytes())


def clear_cache() -> None:
    """Drops every cached weight copy; they are rebuilt on the next autocast GEMM."""
    _C._autocast_clear_cache()
