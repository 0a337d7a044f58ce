"""Thread-local gradient recording switches, usable as context managers and decorators."""

from types import TracebackType
from typing import Any, Optional

from .. import _C
from .._thread_mode import ThreadMode


class _GradMode(ThreadMode):
    """Sets grad mode to ``_enabled`` inside a ``with`` block or a decorated function."""

    _enabled: bool

    def _get(self) -> bool:
        return bool(_C.is_grad_enabled())

    def _set(self, value: Any) -> None:
        _C._set_grad_enabled(value)

    def _value(self) -> bool:
        return self._enabled

    def _fresh(self) -> "_GradMode":
        return type(self)()


class no_grad(_GradMode):
    """Turns gradient recording off: ``with tse.no_grad(): ...`` or ``@tse.no_grad()``."""

    _enabled = False


class enable_grad(_GradMode):
    """Turns gradient recording on, e.g. inside a ``no_grad`` block."""

    _enabled = True


class set_grad_enabled:
    """Sets grad mode now; as a context manager, restores the previous mode on exit."""

    def __init__(self, mode: bool) -> None:
        self._previous = _C.is_grad_enabled()
        _C._set_grad_enabled(bool(mode))

    def __enter__(self) -> "set_grad_enabled":
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        _C._set_grad_enabled(self._previous)


__all__ = ["enable_grad", "no_grad", "set_grad_enabled"]
