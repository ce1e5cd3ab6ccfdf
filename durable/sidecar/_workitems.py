"""Worker streams, their work-item filters, and the leases of dispatched work items."""

from __future__ import annotations

import dataclasses

__all__ = ["WorkItemFilter", "filter_from", "Stream", "OrchestrationLease", "ActivityEntry"]


class WorkItemFilter:
    """The names (and optionally versions) one worker stream accepts for one kind of work."""

    def __init__(self, entries: dict[str, frozenset[str]]) -> None:
        self._entries = entries

    @property
    def is_empty(self) -> bool:
        # An empty list in a category of the filters means that category matches nothing.
        return not self._entries

    def accepts(self, name: str, version: str | None) -> bool:
        versions = self._entries.get(name)
        if versions is None:
            return False
        return not versions or (version or "") in versions


def filter_from(items: object) -> WorkItemFilter:
    entries: dict[str, frozenset[str]] = {}
    for item in items:  # type: ignore[attr-defined]
        entries[item.name] = entries.get(item.name, frozenset()) | frozenset(item.versions)
        if not item.versions:
            entries[item.name] = frozenset()
    return WorkItemFilter(entries)


@dataclasses.dataclass(eq=False)
class Stream:
    """One open `GetWorkItems` call: a worker connection and the work it holds."""

    stream_id: int
    peer: str
    max_orchestrations: int
    max_activities: int
    orchestration_filter: WorkItemFilter | None
    activity_filter: WorkItemFilter | None
    # The worker fetches history itself when asked (WORKER_CAPABILITY_HISTORY_STREAMING).
    streams_history: bool = False
    orchestration_tokens: set[str] = dataclasses.field(default_factory=set)
    activity_tokens: set[str] = dataclasses.field(default_factory=set)
    closed: bool = False

    def wants_orchestrations(self) -> bool:
        if self.orchestration_filter is not None and self.orchestration_filter.is_empty:
            return False
        return self.max_orchestrations <= 0 or len(self.orchestration_tokens) < self.max_orchestrations

    def wants_activities(self) -> bool:
        if self.activity_filter is not None and self.activity_filter.is_empty:
            return False
        return self.max_activities <= 0 or len(self.activity_tokens) < self.max_activities


@dataclasses.dataclass(eq=False)
class OrchestrationLease:
    """An orchestration work item held by a worker until it completes or abandons it."""

    token: str
    instance_id: str
    execution_id: str
    started_event: bytes
    events: list[tuple[int, int, bytes]]
    stream: Stream | None
    deadline: float
    # Where the history will end once this item's completion is applied:
    # (execution id, next history sequence number, number of events).
    history_end: tuple[str, int, int] | None = None


@dataclasses.dataclass(eq=False)
class ActivityEntry:
    """A queued activity. `token` is set while a worker has it leased."""

    seq: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    version: str | None
    request: bytes
    token: str | None = None
    stream: Stream | None = None
    deadline: float = 0.0
