"""Thread-local gradient recording switches, usable as context managers and decorators."""

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, Optional, TypeVar, cast

from .. import _C

_F = TypeVar("_F", bound=Callable[..., Any])


class _GradMode:
    """Sets grad mode to ``_enabled`` inside a ``with`` block or a decorated function."""

    _enabled: bool

    def __init__(self) -> None:
        self._previous: list[bool] = []  # a stack, so one instance can be entered again while active

    def __enter__(self) -> "_GradMode":
        self._previous.append(_C.is_grad_enabled())
        _C._set_grad_enabled(self._enabled)
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        _C._set_grad_enabled(self._previous.pop())

    def __call__(self, func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return func(*args, **kwargs)

        return cast(_F, wrapper)


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
