"""The `Orchestration` base class, its metaclass, `Goto` and `Event`.

Users subclass `Orchestration[In, Out]`. The metaclass hands each subclass to
the class compiler, which checks it and returns its `StateMachine`; the class
keeps it as `__durable_machine__` together with its registered name and
version. At run time the replay runtime creates an instance per replay and
binds it to a `RunContext`; every method below goes through that context.
"""

from __future__ import annotations

import logging
import sys
import typing
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, NoReturn, TypeVar, overload

import attrs

from durable import _json
from durable._activity import Activity
from durable._compiler import compile_orchestration
from durable._context import ContinueAsNewSignal, ReplaySafeLogger, RunContext
from durable._machine import StateMachine
from durable._retry import RetryPolicy
from durable._task import Task

__all__ = ["Orchestration", "OrchestrationMeta", "Goto", "Event", "BoundEvent", "registry"]

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)
T = TypeVar("T")
R = TypeVar("R")
AIn = TypeVar("AIn")
AOut = TypeVar("AOut")

# Every compiled orchestration class by (name, version), for tools such as the CLI.
registry: dict[tuple[str, str | None], type[Orchestration[Any, Any]]] = {}

_user_logger = logging.getLogger("durable.orchestration")


@attrs.frozen
class Goto:
    """A transition to another step, returned by a step (`return self.goto(self.next, value)`)."""

    step: str
    value: Any
    continue_as_new: bool = False
    keep_events: bool = True


class Event(Generic[T]):
    """An external event declared on an orchestration class.

    `approval: Event[Approval] = Event("approval")` declares it; inside a step
    `await self.approval.wait()` gives an `Approval`, and the client's
    `handle.raise_event(Expense.approval, value)` is type-checked against it.
    The payload type is read from the annotation unless given as `type=`.
    Names match case-insensitively, as in every Durable Task SDK.
    """

    __durable_event__ = True

    def __init__(self, name: str, type: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an event needs a non-empty name, got {name!r}")
        self.name = name
        self.type: Any = type
        self.attribute: str | None = None

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    @overload
    def __get__(self, instance: None, owner: type) -> Event[T]: ...
    @overload
    def __get__(self, instance: Orchestration[Any, Any], owner: type) -> BoundEvent[T]: ...

    def __get__(self, instance: object, owner: type) -> Event[T] | BoundEvent[T]:
        if instance is None:
            return self
        return BoundEvent(self, typing.cast("Orchestration[Any, Any]", instance))

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {getattr(self.type, '__qualname__', self.type)!r})"


class BoundEvent(Generic[T]):
    """An `Event` seen from inside a running orchestration."""

    def __init__(self, event: Event[T], orchestration: Orchestration[Any, Any]) -> None:
        self.event = event
        self.orchestration = orchestration

    @property
    def name(self) -> str:
        """The event name."""
        return self.event.name

    def wait(self) -> Task[T]:
        """Wait for the next event of this name (events that arrived earlier are buffered)."""
        return self.orchestration.wait_for_event(self.event.name, self.event.type)


class OrchestrationMeta(type):
    """Compiles each `Orchestration` subclass into a `StateMachine` when it is created."""

    def __new__(
        mcs,
        cls_name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        *,
        name: str | None = None,
        version: str | None = None,
        **kwargs: Any,
    ) -> OrchestrationMeta:
        cls = super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        if not any(isinstance(base, OrchestrationMeta) for base in bases):
            return cls  # the base class itself
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"class {cls_name}: name= must be a non-empty string, got {name!r}")
        registered = name or cls_name
        input_type, output_type = _generic_arguments(cls)
        _resolve_events(cls)
        machine = compile_orchestration(
            cls, name=registered, version=version, input_type=input_type, output_type=output_type
        )
        cls.__durable_name__ = registered  # type: ignore[attr-defined]
        cls.__durable_version__ = version  # type: ignore[attr-defined]
        cls.__durable_machine__ = machine  # type: ignore[attr-defined]
        registry[(registered, version)] = cls  # type: ignore[assignment]
        return cls


def _generic_arguments(cls: type) -> tuple[Any, Any]:
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is Orchestration:
                args = typing.get_args(base)
                if len(args) == 2:
                    return args[0], args[1]
    return Any, Any


def _resolve_events(cls: type) -> None:
    module = sys.modules.get(cls.__module__)
    globalns = vars(module) if module is not None else {}
    annotations = cls.__dict__.get("__annotations__", {})
    for attribute, value in vars(cls).items():
        if not isinstance(value, Event) or value.type is not None:
            continue
        annotation = annotations.get(attribute)
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, globalns, dict(vars(cls)))  # noqa: S307 - the class's own annotation
            except Exception:  # noqa: BLE001 - an unresolvable annotation leaves the event untyped
                annotation = None
        args = typing.get_args(annotation)
        value.type = args[0] if args else Any


class Orchestration(Generic[In, Out], metaclass=OrchestrationMeta):
    """Base class of durable orchestrations: subclass `Orchestration[In, Out]`.

    Either define one `async def run(self, value: In) -> Out`, or several
    `@step` methods with one `@step(start=True)`, which move between each other
    by returning `self.goto(self.other_step, value)`. Class keywords: `name=`
    (the registered name, default the class name) and `version=`.

    Step code must be deterministic: it is replayed from history after every
    event. Use `self.now()`, `self.new_uuid()`, `self.create_timer()` and
    activities instead of the clock, random numbers, sleeping and I/O; the class
    compiler rejects those calls when the class is created.
    """

    # Tells the class compiler that these methods are the framework's, not user helpers.
    __durable_framework__: ClassVar[bool] = True
    __durable_name__: ClassVar[str]
    __durable_version__: ClassVar[str | None]
    __durable_machine__: ClassVar[StateMachine]
    _durable_context: RunContext

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes that do not exist, such as the run
        # context of an orchestration object that no worker is running.
        if name == "_durable_context":
            raise RuntimeError(
                f"{type(self).__name__} is not running inside a worker: orchestration methods such as "
                "call_activity, create_timer and wait_for_event work only in a step that a "
                "durable.Worker runs. Start the orchestration with durable.Client.start(); to test an "
                "activity, call the activity function itself"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __init_subclass__(cls, *, name: str | None = None, version: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    # ------------------------------------------------------------ identity and clock

    @property
    def instance_id(self) -> str:
        """The id of this orchestration instance."""
        return self._durable_context.instance_id

    @property
    def parent_instance_id(self) -> str | None:
        """The parent's instance id for a child orchestration, else None."""
        return self._durable_context.parent_instance_id

    @property
    def is_replaying(self) -> bool:
        """True while the code is re-running over history it has already produced."""
        return self._durable_context.is_replaying

    @property
    def logger(self) -> logging.LoggerAdapter:  # type: ignore[type-arg]
        """A logger that is silent during replay and prefixes the instance id."""
        return ReplaySafeLogger(_user_logger, self._durable_context)

    def now(self) -> datetime:
        """Return the orchestration clock: when the current run started, in UTC, the same on every replay."""
        return self._durable_context.now

    def new_uuid(self) -> uuid.UUID:
        """Return a UUID that is the same on every replay of this point in the orchestration."""
        return self._durable_context.new_uuid()

    # ------------------------------------------------------------ activities and children

    @overload
    def call_activity(
        self, activity: Activity[AIn, AOut], input: AIn, *, retry: RetryPolicy | None = None
    ) -> Task[AOut]: ...
    @overload
    def call_activity(self, activity: Activity[None, AOut], *, retry: RetryPolicy | None = None) -> Task[AOut]: ...
    @overload
    def call_activity(
        self, activity: str, input: object = None, *, result_type: type[R], retry: RetryPolicy | None = None
    ) -> Task[R]: ...
    @overload
    def call_activity(
        self, activity: str, input: object = None, *, retry: RetryPolicy | None = None
    ) -> Task[Any]: ...

    def call_activity(
        self,
        activity: Activity[Any, Any] | str,
        input: object = None,
        *,
        result_type: Any = None,
        retry: RetryPolicy | None = None,
    ) -> Task[Any]:
        """Schedule an activity and return its task.

        Pass the `Activity` object for typed input and result, or its name (for
        activities hosted by workers written with other SDKs) with `result_type=`
        to decode the result. `retry=` retries failures on durable timers.
        """
        if isinstance(activity, Activity):
            return self._durable_context.call_activity(
                activity.name, input, activity.input_type, activity.output_type, retry
            )
        if isinstance(activity, str) and activity:
            return self._durable_context.call_activity(activity, input, None, result_type, retry)
        raise TypeError(
            f"call_activity() takes an activity made with @durable.activity or its name, got {activity!r}"
        )

    @overload
    def call_sub_orchestration(
        self,
        orchestration: type[Orchestration[AIn, AOut]],
        input: AIn,
        *,
        instance_id: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Task[AOut]: ...
    @overload
    def call_sub_orchestration(
        self,
        orchestration: str,
        input: object = None,
        *,
        result_type: type[R],
        instance_id: str | None = None,
        version: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Task[R]: ...
    @overload
    def call_sub_orchestration(
        self,
        orchestration: str,
        input: object = None,
        *,
        instance_id: str | None = None,
        version: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Task[Any]: ...

    def call_sub_orchestration(
        self,
        orchestration: type[Orchestration[Any, Any]] | str,
        input: object = None,
        *,
        result_type: Any = None,
        instance_id: str | None = None,
        version: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Task[Any]:
        """Start a child orchestration and return its task.

        Without `instance_id=` the child id is `"<parent id>:<action id as 4+ hex digits>"`,
        the same on every replay and the same as the official SDKs derive.
        """
        if isinstance(orchestration, OrchestrationMeta):
            machine: StateMachine = orchestration.__durable_machine__
            return self._durable_context.call_sub_orchestration(
                machine.name,
                input,
                machine.input_type,
                machine.output_type,
                instance_id,
                version if version is not None else machine.version,
                retry,
            )
        if isinstance(orchestration, str) and orchestration:
            return self._durable_context.call_sub_orchestration(
                orchestration, input, None, result_type, instance_id, version, retry
            )
        raise TypeError(
            "call_sub_orchestration() takes an Orchestration subclass or a registered name, "
            f"got {orchestration!r}"
        )

    # ------------------------------------------------------------ timers and events

    def create_timer(self, delay_or_time: timedelta | datetime) -> Task[None]:
        """Start a durable timer for a `timedelta` from now, or until a `datetime` (naive means UTC).

        Zero and past delays complete on the next run.
        """
        if isinstance(delay_or_time, timedelta):
            fire_at = self._durable_context.now + delay_or_time
        elif isinstance(delay_or_time, datetime):
            fire_at = delay_or_time
        else:
            raise TypeError(f"create_timer() takes a timedelta or a datetime, got {delay_or_time!r}")
        return self._durable_context.create_timer(fire_at)

    @overload
    def wait_for_event(self, name: str, type: type[T]) -> Task[T]: ...
    @overload
    def wait_for_event(self, name: str, type: None = None) -> Task[Any]: ...

    def wait_for_event(self, name: str, type: Any = None) -> Task[Any]:
        """Wait for the next external event called `name`, decoded as `type`.

        Names match case-insensitively. Events are taken first in, first out;
        an event that arrived before the wait is buffered and taken at once. A
        wait that loses a `when_any` race stops waiting, so it never takes an
        event meant for a later wait.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"wait_for_event() needs a non-empty event name, got {name!r}")
        return self._durable_context.wait_for_event(name, type)

    def send_event(self, instance_id: str, event: Event[T] | str, payload: T | None = None) -> None:
        """Raise an event on another orchestration instance (fire and forget)."""
        name = event.name if isinstance(event, Event) else event
        declared = event.type if isinstance(event, Event) else None
        self._durable_context.send_event(instance_id, name, _json.encode(payload, declared))

    def set_custom_status(self, value: object) -> None:
        """Publish a JSON value that clients read as the instance's custom status."""
        self._durable_context.custom_status = _json.encode(value)

    # ------------------------------------------------------------ transitions

    def goto(
        self,
        step: Callable[[T], Awaitable[object]],
        value: T,
        *,
        continue_as_new: bool = False,
        keep_events: bool = True,
    ) -> Goto:
        """Move to another step of this class with `value` (return the result from the step).

        With `continue_as_new=True` the instance starts a fresh execution at that
        step, which keeps the history short for long-running loops.
        `keep_events` carries unconsumed external events into it.
        """
        step_name = getattr(step, "__name__", None)
        machine = type(self).__durable_machine__
        if step_name not in machine.steps:
            known = ", ".join(sorted(machine.steps))
            raise ValueError(f"goto() target {step!r} is not a step of {type(self).__name__}; its steps are: {known}")
        return Goto(step_name, value, continue_as_new, keep_events)

    def continue_as_new(self, value: In, *, keep_events: bool = True) -> NoReturn:
        """End this execution and start a fresh one at the start step with `value`.

        It does not return. With `keep_events` (the default) external events that
        arrived but were not consumed are carried into the new execution.
        """
        machine = type(self).__durable_machine__
        raise ContinueAsNewSignal(Goto(machine.start, value, True, keep_events))

