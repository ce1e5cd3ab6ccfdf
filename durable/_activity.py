"""Activities: the functions an orchestration schedules to do real work."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar, overload

import attrs

__all__ = ["Activity", "AsyncActivity", "ActivityContext", "activity"]

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)


@attrs.frozen
class ActivityContext:
    """What an activity knows about the call that started it.

    `attempt` is None where the sidecar does not say which attempt this is;
    activities are delivered at least once, so they should be idempotent.
    """

    instance_id: str
    task_id: int
    name: str
    attempt: int | None = None


class Activity(Generic[In, Out]):
    """A registered activity: a function of (ActivityContext, In) returning Out.

    Calling the object calls the function itself, so it can be unit-tested
    without a worker. Orchestrations schedule it with `self.call_activity`.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.is_async = inspect.iscoroutinefunction(fn)
        self.takes_input, self.input_type, self.output_type = _signature_types(fn, self.name)
        functools.update_wrapper(self, fn)

    def __call__(self, ctx: ActivityContext, input: In) -> Out:
        if self.takes_input:
            return typing.cast(Out, self.fn(ctx, input))
        return typing.cast(Out, self.fn(ctx))

    def __repr__(self) -> str:
        kind = "async activity" if self.is_async else "activity"
        return f"<{kind} {self.name!r}>"


class AsyncActivity(Activity[In, Out]):
    """An activity defined with `async def`; calling it returns a coroutine."""

    def __call__(self, ctx: ActivityContext, input: In) -> Coroutine[Any, Any, Out]:  # type: ignore[override]
        if self.takes_input:
            return typing.cast(Coroutine[Any, Any, Out], self.fn(ctx, input))
        return typing.cast(Coroutine[Any, Any, Out], self.fn(ctx))


def _signature_types(fn: Callable[..., Any], name: str) -> tuple[bool, Any, Any]:
    params = list(inspect.signature(fn).parameters.values())
    if not 1 <= len(params) <= 2:
        raise TypeError(
            f"activity {name!r} must take (ctx: ActivityContext, input) or (ctx: ActivityContext), "
            f"but it takes {len(params)} parameters"
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolved annotations mean "untyped", not an error
        hints = {}
    takes_input = len(params) == 2
    input_type = hints.get(params[1].name, Any) if takes_input else type(None)
    output_type = hints.get("return", Any)
    return takes_input, input_type, output_type


@overload
def activity(fn: Callable[[ActivityContext, In], Coroutine[Any, Any, Out]], /) -> AsyncActivity[In, Out]: ...
@overload
def activity(fn: Callable[[ActivityContext], Coroutine[Any, Any, Out]], /) -> AsyncActivity[None, Out]: ...
@overload
def activity(fn: Callable[[ActivityContext, In], Out], /) -> Activity[In, Out]: ...
@overload
def activity(fn: Callable[[ActivityContext], Out], /) -> Activity[None, Out]: ...
@overload
def activity(*, name: str) -> _ActivityDecorator: ...


def activity(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Turn a function of `(ctx, input)` into an `Activity[In, Out]`.

    Works for plain and `async def` functions; sync activities run on the
    worker's thread pool, async ones on its event loop. `name=` sets the name
    the sidecar routes by (default: the function's name).
    """
    if fn is None:
        return _ActivityDecorator(name)
    return _make(fn, name)


def _make(fn: Callable[..., Any], name: str | None) -> Activity[Any, Any]:
    if isinstance(fn, Activity):
        raise TypeError(f"{fn!r} is already an activity; apply @activity once")
    if inspect.iscoroutinefunction(fn):
        return AsyncActivity(fn, name)
    return Activity(fn, name)


class _ActivityDecorator:
    def __init__(self, name: str | None) -> None:
        self.name = name

    @overload
    def __call__(self, fn: Callable[[ActivityContext, In], Coroutine[Any, Any, Out]], /) -> AsyncActivity[In, Out]: ...
    @overload
    def __call__(self, fn: Callable[[ActivityContext], Coroutine[Any, Any, Out]], /) -> AsyncActivity[None, Out]: ...
    @overload
    def __call__(self, fn: Callable[[ActivityContext, In], Out], /) -> Activity[In, Out]: ...
    @overload
    def __call__(self, fn: Callable[[ActivityContext], Out], /) -> Activity[None, Out]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Any:
        return _make(fn, self.name)
