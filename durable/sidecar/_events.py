"""History events, timestamps and protobuf wire helpers shared by the sidecar modules."""

from __future__ import annotations

import time

from google.protobuf import timestamp_pb2

from durable._proto import orchestrator_service_pb2 as pb

# Field numbers of the `HistoryEvent.eventType` oneof members. The sidecar stores
# the number next to each inbox row so that it can reason about events without
# parsing them.
EXECUTION_STARTED = 3
EXECUTION_COMPLETED = 4
EXECUTION_TERMINATED = 5
TASK_SCHEDULED = 6
TASK_COMPLETED = 7
TASK_FAILED = 8
SUB_ORCHESTRATION_CREATED = 9
SUB_ORCHESTRATION_COMPLETED = 10
SUB_ORCHESTRATION_FAILED = 11
TIMER_CREATED = 12
TIMER_FIRED = 13
ORCHESTRATOR_STARTED = 14
EVENT_SENT = 16
EVENT_RAISED = 17
EXECUTION_SUSPENDED = 21
EXECUTION_RESUMED = 22

# Results that belong to one execution and mean nothing to the next one.
EXECUTION_BOUND_KINDS = frozenset(
    {TASK_COMPLETED, TASK_FAILED, SUB_ORCHESTRATION_COMPLETED, SUB_ORCHESTRATION_FAILED, TIMER_FIRED}
)

RUNNING = pb.ORCHESTRATION_STATUS_RUNNING
COMPLETED = pb.ORCHESTRATION_STATUS_COMPLETED
CONTINUED_AS_NEW = pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
FAILED = pb.ORCHESTRATION_STATUS_FAILED
TERMINATED = pb.ORCHESTRATION_STATUS_TERMINATED
PENDING = pb.ORCHESTRATION_STATUS_PENDING
SUSPENDED = pb.ORCHESTRATION_STATUS_SUSPENDED

TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, TERMINATED})

_EVENT_FIELDS = pb.HistoryEvent.DESCRIPTOR.fields_by_name


def status_name(status: int) -> str:
    """Return the short upper-case name of an orchestration status, such as RUNNING."""
    try:
        return pb.OrchestrationStatus.Name(status).removeprefix("ORCHESTRATION_STATUS_")  # type: ignore[arg-type]
    except ValueError:
        return str(status)


def now_us() -> int:
    """Return the current UTC time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def timestamp(us: int) -> timestamp_pb2.Timestamp:
    """Convert microseconds since the Unix epoch to a protobuf timestamp."""
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(us)
    return ts


def event_kind(event: pb.HistoryEvent) -> int:
    """Return the field number of the event's `eventType` member, or 0 if none is set."""
    name = event.WhichOneof("eventType")
    return 0 if name is None else _EVENT_FIELDS[name].number


def new_event(at_us: int, event_id: int = -1) -> pb.HistoryEvent:
    """Create an empty history event stamped with a time and an event id."""
    event = pb.HistoryEvent(eventId=event_id)
    event.timestamp.FromMicroseconds(at_us)
    return event


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """Encode one length-delimited field (a string, bytes or message) in protobuf wire format."""
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def repeated(number: int, payloads: list[bytes]) -> bytes:
    """Encode a repeated message field from already-serialized elements."""
    tag = varint((number << 3) | 2)
    return b"".join(tag + varint(len(payload)) + payload for payload in payloads)


def string_value(number: int, value: str) -> bytes:
    """Encode a `google.protobuf.StringValue` field holding `value`."""
    return field(number, field(1, value.encode()))
