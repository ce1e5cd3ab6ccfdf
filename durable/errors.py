"""Errors raised by durable, and the failure details that travel with them."""

from __future__ import annotations

import traceback
import attrs

from durable._proto import orchestrator_service_pb2 as pb

__all__ = [
    "FailureDetails",
    "TaskFailedError",
    "NonDeterminismError",
    "OrchestrationDefinitionError",
    "OrchestrationFailedError",
    "PayloadError",
    "OrchestrationNotRegisteredError",
    "ActivityNotRegisteredError",
    "DefinitionProblem",
]

# The Durable Task SDKs follow `__cause__` and `__context__` this deep.
_MAX_INNER_DEPTH = 10


def qualified_name(exc_type: type[BaseException]) -> str:
    """Return the `module.QualName` form that every Durable Task SDK reports."""
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


@attrs.frozen
class FailureDetails:
    """What went wrong in an activity, a child orchestration or an orchestration.

    `error_type` is the qualified class name (`builtins.ValueError`), `inner` the
    cause chain, and `is_non_retriable` tells retry policies not to try again.
    """

    error_type: str
    message: str
    stack_trace: str | None = None
    inner: FailureDetails | None = None
    is_non_retriable: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException, *, _depth: int = 0) -> FailureDetails:
        """Build failure details from an exception, following its cause chain."""
        inner_exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        inner: FailureDetails | None = None
        # A failed task's own details are the cause of whatever it raised into.
        if isinstance(exc, TaskFailedError):
            inner = exc.details
        elif inner_exc is not None and _depth < _MAX_INNER_DEPTH:
            inner = cls.from_exception(inner_exc, _depth=_depth + 1)
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))
        return cls(
            error_type=qualified_name(type(exc)),
            message=str(exc),
            stack_trace=stack or None,
            inner=inner,
            is_non_retriable=bool(getattr(exc, "non_retriable", False)),
        )

    @classmethod
    def from_proto(cls, proto: pb.TaskFailureDetails) -> FailureDetails:
        """Read failure details from their protobuf form."""
        return cls(
            error_type=proto.errorType,
            message=proto.errorMessage,
            stack_trace=proto.stackTrace.value if proto.HasField("stackTrace") else None,
            inner=cls.from_proto(proto.innerFailure) if proto.HasField("innerFailure") else None,
            is_non_retriable=proto.isNonRetriable,
        )

    def to_proto(self) -> pb.TaskFailureDetails:
        """Write failure details in their protobuf form."""
        proto = pb.TaskFailureDetails(
            errorType=self.error_type,
            errorMessage=self.message,
            isNonRetriable=self.is_non_retriable,
        )
        if self.stack_trace is not None:
            proto.stackTrace.value = self.stack_trace
        if self.inner is not None:
            proto.innerFailure.CopyFrom(self.inner.to_proto())
        return proto

    def chain(self) -> list[FailureDetails]:
        """Return these details followed by every inner failure, outermost first."""
        out: list[FailureDetails] = []
        node: FailureDetails | None = self
        while node is not None:
            out.append(node)
            node = node.inner
        return out

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


class TaskFailedError(Exception):
    """Raised at the `await` of an activity, child orchestration or composite task that failed."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details


class NonDeterminismError(Exception):
    """The orchestration code no longer does what its history says it did."""


class OrchestrationNotRegisteredError(LookupError):
    """A work item named an orchestration that the worker does not host."""


class ActivityNotRegisteredError(LookupError):
    """A work item named an activity that the worker does not host."""


class PayloadError(TypeError):
    """A value could not be encoded to JSON, or JSON could not be decoded to the declared type."""


@attrs.frozen
class DefinitionProblem:
    """One problem the class compiler found in an orchestration class."""

    class_name: str
    method: str | None
    file: str | None
    line: int | None
    rule: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file or '<unknown file>'}:{self.line or '?'}"
        target = f"{self.class_name}.{self.method}" if self.method else self.class_name
        return f"{where}: {target}: [{self.rule}] {self.message}. Fix: {self.fix}"


class OrchestrationDefinitionError(TypeError):
    """Raised when an orchestration class is created, listing every problem found in it."""

    def __init__(self, class_name: str, problems: list[DefinitionProblem]) -> None:
        self.class_name = class_name
        self.problems = problems
        count = len(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"orchestration class {class_name} has {count} {noun}:\n{lines}")


class OrchestrationFailedError(Exception):
    """Raised by the client when an orchestration ended FAILED (or was terminated, for `result()`)."""

    def __init__(self, instance_id: str, details: FailureDetails | None, message: str | None = None) -> None:
        text = message or (
            f"orchestration {instance_id!r} failed: {details}"
            if details is not None
            else f"orchestration {instance_id!r} failed"
        )
        super().__init__(text)
        self.instance_id = instance_id
        self.details = details

