"""CUDA queries (``tse.cuda.is_available()``, ``tse.cuda.device_count()``)."""

from .. import _C


def is_available() -> bool:
    """True when libtse was built with CUDA and a GPU is visible."""
    return _C._cuda_is_available()


def device_count() -> int:
    """The number of visible GPUs (0 without CUDA, a driver or a GPU)."""
    return _C._cuda_device_count()


def is_built() -> bool:
    """True when libtse was built with its CUDA backend (TSE_WITH_CUDA)."""
    return _C._cuda_is_built()


__all__ = ["device_count", "is_available", "is_built"]
