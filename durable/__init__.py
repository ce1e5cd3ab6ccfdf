"""durable: durable orchestrations as plain, mypy-checked Python classes.

Orchestrations are `Orchestration[In, Out]` subclasses whose steps are `async`
methods; activities are functions decorated with `@activity`. A `Worker` hosts
them on any Durable Task sidecar (durable's own embedded `Sidecar`, Dapr, the
Durable Task Framework for Go sidecar or the official SDK's in-memory one), and
a `Client` starts and manages instances.
"""

from durable._activity import Activity, ActivityContext, AsyncActivity, activity
from durable._aio_client import AsyncClient, AsyncOrchestrationHandle
from durable._client import Client, OrchestrationHandle
from durable._compiler import allow_nondeterminism, compile_orchestration, step
from durable._orchestration import BoundEvent, Event, Goto, Orchestration
from durable._retry import RetryPolicy
from durable._state import InstanceExistsError, InstanceNotFoundError, OrchestrationState, OrchestrationStatus
from durable._task import Task, when_all, when_any
from durable._worker import Worker
from durable.sidecar import Sidecar
from durable.errors import (
    ActivityNotRegisteredError,
    FailureDetails,
    NonDeterminismError,
    OrchestrationDefinitionError,
    OrchestrationFailedError,
    OrchestrationNotRegisteredError,
    PayloadError,
    TaskFailedError,
)

__all__ = [
    "Activity",
    "ActivityContext",
    "ActivityNotRegisteredError",
    "AsyncActivity",
    "AsyncClient",
    "AsyncOrchestrationHandle",
    "BoundEvent",
    "Client",
    "Event",
    "FailureDetails",
    "Goto",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "NonDeterminismError",
    "Orchestration",
    "OrchestrationDefinitionError",
    "OrchestrationFailedError",
    "OrchestrationHandle",
    "OrchestrationNotRegisteredError",
    "OrchestrationState",
    "OrchestrationStatus",
    "PayloadError",
    "RetryPolicy",
    "Sidecar",
    "Task",
    "TaskFailedError",
    "Worker",
    "activity",
    "allow_nondeterminism",
    "compile_orchestration",
    "step",
    "when_all",
    "when_any",
]

__version__ = "0.1.0"
