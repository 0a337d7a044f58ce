"""CUDA queries and settings (``tse.cuda.is_available()``, ``tse.cuda.device_count()``,
``tse.cuda.set_allow_tf32()``, ``tse.cuda.memory_cached()``, ``tse.cuda.empty_cache()``)."""

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


def set_allow_tf32(on: bool) -> None:
    """Lets float32 GEMMs on CUDA round their operands to TF32 on the tensor cores (about 1e-3
    relative error instead of float32's 1e-6). Off by default, like PyTorch's
    ``torch.backends.cuda.matmul.allow_tf32``; ``tse.autocast()`` (bf16) is the faster route."""
    _C._cuda_set_allow_tf32(bool(on))


def allow_tf32() -> bool:
    """Whether float32 GEMMs on CUDA may use TF32 (see set_allow_tf32)."""
    return _C._cuda_allow_tf32()


def memory_cached(device: int = 0) -> int:
    """Bytes held in the device's allocator cache (freed tensors' blocks, kept for reuse)."""
    return _C._cuda_cached_bytes(device)


def empty_cache() -> None:
    """Returns every cached block (CPU and CUDA) to the system."""
    _C._empty_cache()


__all__ = ["allow_tf32", "device_count", "empty_cache", "is_available", "is_built", "memory_cached", "set_allow_tf32"]
