"""Durable tasks: the only things a step may await.

A `Task[T]` is completed by the replay runtime when the history event that
carries its result is applied. Awaiting a task that is not done yields the task
itself to the runtime, which resumes the step when the task completes; nothing
here touches asyncio, so breakpoints and debuggers work as in any coroutine.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
import typing
from typing import Any, Generic, TypeVar, overload

from durable.errors import FailureDetails, TaskFailedError

__all__ = ["Task", "CompletableTask", "WhenAllTask", "WhenAnyTask", "when_all", "when_any"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")

_Callback = Callable[["Task[Any]"], None]


class Task(Generic[T_co]):
    """A typed handle on durable work: an activity, timer, event, child or composite.

    `await task` gives the result or raises the failure (`TaskFailedError` for
    activities and child orchestrations). `done`, `result()` and `exception()`
    read the outcome without awaiting.
    """

    __slots__ = ("_done", "_result", "_exception", "_callbacks", "__weakref__")

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[_Callback] = []

    @property
    def done(self) -> bool:
        """True once the task has a result or a failure."""
        return self._done

    @property
    def failed(self) -> bool:
        """True when the task finished with a failure."""
        return self._done and self._exception is not None

    def result(self) -> T_co:
        """Return the result, raise the failure, or raise RuntimeError if not done yet."""
        if not self._done:
            raise RuntimeError(f"{self!r} has not finished; await it before reading its result")
        if self._exception is not None:
            raise self._exception
        return typing.cast(T_co, self._result)

    def exception(self) -> BaseException | None:
        """Return the failure of a finished task, or None if it succeeded."""
        if not self._done:
            raise RuntimeError(f"{self!r} has not finished; await it before reading its exception")
        return self._exception

    def __await__(self) -> Generator[Task[Any], None, T_co]:
        if not self._done:
            yield self
        return self.result()

    def _add_callback(self, callback: _Callback) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def _remove_callback(self, callback: _Callback) -> None:
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def _settle(self, result: Any, exception: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        self._result = result
        self._exception = exception
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def __repr__(self) -> str:
        state = "done" if self._done else "pending"
        return f"<{type(self).__name__} {state}>"


class CompletableTask(Task[T]):
    """A task the runtime completes from a history event."""

    __slots__ = ("description",)

    def __init__(self, description: str = "task") -> None:
        super().__init__()
        self.description = description

    def complete(self, result: T) -> None:
        self._settle(result, None)

    def fail(self, exception: BaseException) -> None:
        self._settle(None, exception)

    def fail_with_details(self, message: str, details: FailureDetails) -> None:
        self._settle(None, TaskFailedError(message, details))

    def __repr__(self) -> str:
        state = "done" if self._done else "pending"
        return f"<{self.description} {state}>"


class WhenAllTask(Task[list[Any]]):
    """Finishes when every child has finished; fails with the first failure, in completion order."""

    __slots__ = ("_children", "_remaining", "_first_failure")

    def __init__(self, children: list[Task[Any]]) -> None:
        super().__init__()
        self._children = children
        self._remaining = len(children)
        self._first_failure: BaseException | None = None
        if not children:
            self._settle([], None)
            return
        for child in children:
            child._add_callback(self._on_child_done)

    def _on_child_done(self, child: Task[Any]) -> None:
        self._remaining -= 1
        if child._exception is not None and self._first_failure is None:
            self._first_failure = child._exception
        if self._remaining == 0:
            if self._first_failure is not None:
                self._settle(None, self._first_failure)
            else:
                self._settle([c._result for c in self._children], None)


class WhenAnyTask(Task[Task[Any]]):
    """Finishes with the first child to finish, success or failure; later finishes change nothing."""

    __slots__ = ("_children",)

    def __init__(self, children: list[Task[Any]]) -> None:
        super().__init__()
        if not children:
            raise ValueError("when_any() needs at least one task")
        self._children = children
        # NOTE: children that are already done win in argument order, which is
        # the same on every replay because their completions came from history.
        for child in children:
            if child.done:
                self._win(child)
                return
        for child in children:
            child._add_callback(self._on_child_done)

    def _on_child_done(self, child: Task[Any]) -> None:
        if not self._done:
            self._win(child)

    def _win(self, winner: Task[Any]) -> None:
        for child in self._children:
            child._remove_callback(self._on_child_done)
        self._settle(winner, None)
        for child in self._children:
            if child is not winner and not child.done:
                _on_lost(child)


def _on_lost(task: Task[Any]) -> None:
    # An event wait that lost a race stops waiting, so that it does not take the
    # next event of its name from a later wait. Awaiting it again re-arms it.
    release = getattr(task, "release", None)
    if release is not None:
        release()


@overload
def when_all(tasks: Iterable[Task[T]], /) -> Task[list[T]]: ...
@overload
def when_all(t1: Task[T1], t2: Task[T2], /) -> Task[tuple[T1, T2]]: ...
@overload
def when_all(t1: Task[T1], t2: Task[T2], t3: Task[T3], /) -> Task[tuple[T1, T2, T3]]: ...
@overload
def when_all(t1: Task[T1], t2: Task[T2], t3: Task[T3], t4: Task[T4], /) -> Task[tuple[T1, T2, T3, T4]]: ...
@overload
def when_all(
    t1: Task[T1], t2: Task[T2], t3: Task[T3], t4: Task[T4], t5: Task[T5], /
) -> Task[tuple[T1, T2, T3, T4, T5]]: ...


def when_all(*tasks: Any) -> Any:
    """Wait for every task; the result lists their results in the order given.

    Pass one iterable for a list result, or two to five tasks for a typed tuple.
    A failure is raised only after every task has finished, and it is the first
    failure in completion order, so it can be caught like any other.
    """
    if len(tasks) == 1 and not isinstance(tasks[0], Task):
        children = _as_tasks(tasks[0], "when_all")
        return WhenAllTask(children)
    children = _as_tasks(tasks, "when_all")
    return _TupleTask(WhenAllTask(children))


@overload
def when_any(tasks: Iterable[Task[T]], /) -> Task[Task[T]]: ...
@overload
def when_any(*tasks: Task[T]) -> Task[Task[T]]: ...


def when_any(*tasks: Any) -> Any:
    """Wait for the first task to finish and return that task (compare it with `is`).

    The losers are not cancelled: their results are ignored. On replay the same
    task wins, because completions are applied in history order.
    """
    if len(tasks) == 1 and not isinstance(tasks[0], Task):
        return WhenAnyTask(_as_tasks(tasks[0], "when_any"))
    return WhenAnyTask(_as_tasks(tasks, "when_any"))


def _as_tasks(items: Iterable[Any], caller: str) -> list[Task[Any]]:
    children = list(items)
    for index, child in enumerate(children):
        if not isinstance(child, Task):
            raise TypeError(
                f"{caller}() takes durable tasks, but item {index} is {child!r}; "
                "pass the tasks returned by call_activity, create_timer, wait_for_event "
                "or call_sub_orchestration"
            )
    return children


class _TupleTask(Task[tuple[Any, ...]]):
    __slots__ = ()

    def __init__(self, inner: WhenAllTask) -> None:
        super().__init__()
        inner._add_callback(self._on_inner_done)

    def _on_inner_done(self, inner: Task[Any]) -> None:
        if inner._exception is not None:
            self._settle(None, inner._exception)
        else:
            self._settle(tuple(inner._result or ()), None)
