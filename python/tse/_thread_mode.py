"""The shared shape of tse's thread-local switches (grad mode, autocast): a context manager and
decorator that sets this thread's mode inside a block and restores the previous one after."""

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, Optional, TypeVar, cast

_F = TypeVar("_F", bound=Callable[..., Any])


class ThreadMode:
    """Subclasses say how to read and write the mode (``_get`` / ``_set``), the value to set
    (``_value``) and how to make a fresh switch with the same settings (``_fresh``, for decorated
    functions). Entering pushes the current mode on a stack, so one instance can be re-entered."""

    def __init__(self) -> None:
        self._previous: list[Any] = []

    def _get(self) -> Any:
        raise NotImplementedError

    def _set(self, value: Any) -> None:
        raise NotImplementedError

    def _value(self) -> Any:
        raise NotImplementedError

    def _fresh(self) -> "ThreadMode":
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._previous.append(self._get())
        self._set(self._value())
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self._set(self._previous.pop())

    def __call__(self, func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return cast(_F, wrapper)
