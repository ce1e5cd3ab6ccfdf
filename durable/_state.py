"""What a client sees of an orchestration instance: its status and its state.

Payloads arrive as JSON text. `OrchestrationState` keeps that text (`raw_input`,
`raw_output`, `raw_custom_status`) and decodes it on first access, with the
declared types of the orchestration class when the client knows the class and
as plain JSON values otherwise.

The current step of a multi-step orchestration is not written anywhere by the
worker: custom status stays the user's own value, so clients of other SDKs
read it unchanged. Instead the client reads the instance's history with
`StreamInstanceHistory` and asks the replay runtime which step the history
leaves the instance in. The synchronous client does this lazily, the first
time `current_step` is read; the asyncio client does it while building the
state, and only for multi-step classes.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from durable import _json
from durable._proto import orchestrator_service_pb2 as pb
from durable.errors import FailureDetails

__all__ = [
    "OrchestrationStatus",
    "OrchestrationState",
    "InstanceNotFoundError",
    "InstanceExistsError",
    "state_from_proto",
]


class OrchestrationStatus(enum.Enum):
    """Runtime status of an orchestration instance.

    The wire enum also defines CONTINUED_AS_NEW and CANCELED, which sidecars
    must never report. Should one arrive anyway it reads as RUNNING (a new
    execution is about to start) and TERMINATED (ended on request).
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and TERMINATED: the instance will not run again."""
        return self in _TERMINAL

    @classmethod
    def from_proto(cls, value: int) -> OrchestrationStatus:
        """Map a wire status to the status users see."""
        try:
            return _FROM_PROTO[value]
        except KeyError:
            raise ValueError(f"unknown orchestration status {value} from the sidecar") from None

    def to_proto(self) -> pb.OrchestrationStatus.ValueType:
        """Map this status to its wire value."""
        return _TO_PROTO[self]


_TERMINAL = frozenset(
    {OrchestrationStatus.COMPLETED, OrchestrationStatus.FAILED, OrchestrationStatus.TERMINATED}
)

_TO_PROTO: dict[OrchestrationStatus, pb.OrchestrationStatus.ValueType] = {
    OrchestrationStatus.PENDING: pb.ORCHESTRATION_STATUS_PENDING,
    OrchestrationStatus.RUNNING: pb.ORCHESTRATION_STATUS_RUNNING,
    OrchestrationStatus.SUSPENDED: pb.ORCHESTRATION_STATUS_SUSPENDED,
    OrchestrationStatus.COMPLETED: pb.ORCHESTRATION_STATUS_COMPLETED,
    OrchestrationStatus.FAILED: pb.ORCHESTRATION_STATUS_FAILED,
    OrchestrationStatus.TERMINATED: pb.ORCHESTRATION_STATUS_TERMINATED,
}

_FROM_PROTO: dict[int, OrchestrationStatus] = {
    **{int(wire): status for status, wire in _TO_PROTO.items()},
    int(pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW): OrchestrationStatus.RUNNING,
    int(pb.ORCHESTRATION_STATUS_CANCELED): OrchestrationStatus.TERMINATED,
}


class InstanceNotFoundError(LookupError):
    """The sidecar has no orchestration instance with this id."""

    def __init__(self, instance_id: str, message: str | None = None) -> None:
        super().__init__(message or f"orchestration instance {instance_id!r} not found")
        self.instance_id = instance_id


class InstanceExistsError(Exception):
    """An orchestration instance with the requested id already exists."""

    def __init__(self, instance_id: str, message: str | None = None) -> None:
        super().__init__(message or f"orchestration instance {instance_id!r} already exists")
        self.instance_id = instance_id


@attrs.frozen
class OrchestrationState:
    """A snapshot of one orchestration instance as the sidecar reported it.

    `input`, `output` and `custom_status` are decoded from the raw JSON text
    on first access: with the orchestration class's declared `In` and `Out`
    types when the state was read through a typed handle or with
    `orchestration=`, as plain JSON values otherwise. A payload that does not
    match its declared type raises `durable.errors.PayloadError` on access;
    the raw text stays readable. Timestamps are timezone-aware UTC.
    """

    instance_id: str
    name: str
    status: OrchestrationStatus
    created_at: datetime | None
    last_updated_at: datetime | None
    completed_at: datetime | None
    scheduled_start_at: datetime | None
    version: str | None
    execution_id: str | None
    parent_instance_id: str | None
    tags: Mapping[str, str]
    raw_input: str | None
    raw_output: str | None
    raw_custom_status: str | None
    failure_details: FailureDetails | None
    _input_type: Any = attrs.field(default=None, repr=False, eq=False)
    _output_type: Any = attrs.field(default=None, repr=False, eq=False)
    _step_loader: Callable[[], str | None] | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def is_terminal(self) -> bool:
        """True when the instance completed, failed or was terminated."""
        return self.status.is_terminal

    @functools.cached_property
    def input(self) -> object:
        """The decoded input of the current execution (None if absent or not fetched)."""
        return _json.decode(self.raw_input, self._input_type)

    @functools.cached_property
    def output(self) -> object:
        """The decoded output: the result when COMPLETED, the terminate output when TERMINATED."""
        if self.status is OrchestrationStatus.COMPLETED:
            return _json.decode(self.raw_output, self._output_type)
        return _json.decode(self.raw_output)

    @functools.cached_property
    def custom_status(self) -> object:
        """The decoded custom status the orchestration last set, as a plain JSON value."""
        return _json.decode(self.raw_custom_status)

    @functools.cached_property
    def current_step(self) -> str | None:
        """The step the instance is in, derived from its history; None when unknown.

        Reading it the first time fetches the instance's history from the
        sidecar, unless the asyncio client already did.
        """
        if self._step_loader is None:
            return None
        return self._step_loader()


def state_from_proto(
    proto: pb.OrchestrationState,
    *,
    input_type: Any = None,
    output_type: Any = None,
    step_loader: Callable[[], str | None] | None = None,
) -> OrchestrationState:
    """Build an `OrchestrationState` from the sidecar's message."""
    return OrchestrationState(
        instance_id=proto.instanceId,
        name=proto.name,
        status=OrchestrationStatus.from_proto(proto.orchestrationStatus),
        created_at=_timestamp(proto, "createdTimestamp"),
        last_updated_at=_timestamp(proto, "lastUpdatedTimestamp"),
        completed_at=_timestamp(proto, "completedTimestamp"),
        scheduled_start_at=_timestamp(proto, "scheduledStartTimestamp"),
        version=proto.version.value if proto.HasField("version") else None,
        execution_id=proto.executionId.value if proto.HasField("executionId") else None,
        parent_instance_id=proto.parentInstanceId.value if proto.HasField("parentInstanceId") else None,
        tags=dict(proto.tags),
        raw_input=_text(proto, "input"),
        raw_output=_text(proto, "output"),
        raw_custom_status=_text(proto, "customStatus"),
        failure_details=(
            FailureDetails.from_proto(proto.failureDetails) if proto.HasField("failureDetails") else None
        ),
        input_type=input_type,
        output_type=output_type,
        step_loader=step_loader,
    )


def _timestamp(proto: pb.OrchestrationState, field: str) -> datetime | None:
    if not proto.HasField(field):  # type: ignore[arg-type]
        return None
    value = getattr(proto, field)
    return value.ToDatetime(tzinfo=timezone.utc)  # type: ignore[no-any-return]


def _text(proto: pb.OrchestrationState, field: str) -> str | None:
    # Both official SDKs treat a present but empty string like an absent one.
    if not proto.HasField(field):  # type: ignore[arg-type]
        return None
    value: str = getattr(proto, field).value
    return value or None
