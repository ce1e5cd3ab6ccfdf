"""Durability on a database file, the schema version check, and paged listings."""

from __future__ import annotations

import pathlib
import sqlite3
import time
from collections.abc import Callable

import pytest

from conftest import connect
from durable._proto import orchestrator_service_pb2 as pb
from durable.sidecar import SchemaVersionError, Sidecar
from durable.sidecar._store import Store
from sidecar_helpers import RawWorker, Stub, create_timer, finish, kinds, schedule_task, start, state, utc_in


def test_state_survives_restart_on_same_file(tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "durable.db")
    with Sidecar(db) as first:
        channel, stub = connect(first)
        worker = RawWorker(stub)
        start(stub, "Order", "order-1", input='"book"')
        worker.complete(worker.next_orchestration(), [schedule_task(1, "charge")])
        # The activity is held by a worker when the sidecar stops.
        worker.next_activity()

        start(stub, "Wait", "wait-1")
        worker.complete(worker.next_orchestration(), [create_timer(1, utc_in(0.3))])
        worker.close()
        channel.close()

    # The timer comes due while the sidecar is down.
    time.sleep(0.5)

    with Sidecar(db) as second:
        channel, stub = connect(second)
        worker = RawWorker(stub)
        try:
            seen: dict[str, pb.WorkItem] = {}
            for _ in range(2):
                item = worker.next(timeout=3)
                key = item.orchestratorRequest.instanceId or item.activityRequest.name
                seen[key] = item
            assert set(seen) == {"charge", "wait-1"}
            assert seen["wait-1"].orchestratorRequest.newEvents[1].timerFired.timerId == 1
            worker.complete(seen["wait-1"], [finish(2)])

            worker.complete_activity(seen["charge"], '"paid"')
            item = worker.next_orchestration()
            assert kinds(item.orchestratorRequest.pastEvents) == ["orchestratorStarted", "executionStarted", "taskScheduled"]
            assert item.orchestratorRequest.newEvents[1].taskCompleted.result.value == '"paid"'
            worker.complete(item, [finish(2, '"shipped"')])

            order = state(stub, "order-1")
            assert order.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED
            assert order.input.value == '"book"'
            assert order.output.value == '"shipped"'
            assert state(stub, "wait-1").orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED
        finally:
            worker.close()
            channel.close()

    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_version_mismatch_rejected(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "old.db"
    Sidecar(str(db)).start().stop()
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")

    sidecar = Sidecar(str(db))
    with pytest.raises(SchemaVersionError) as caught:
        sidecar.start()
    message = str(caught.value)
    assert "999" in message
    assert str(db) in message
    assert "new database file" in message


def test_foreign_database_rejected(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(SchemaVersionError, match="not a durable sidecar database"):
        Sidecar(str(db)).start()


def test_query_instances_pages_with_keyset_tokens(stub: Stub) -> None:
    ids = [f"q-{n:02d}" for n in range(7)]
    for instance_id in ids:
        start(stub, instance_id=instance_id, input='"in"')
    start(stub, instance_id="other")

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query = pb.InstanceQuery(maxInstanceCount=3, fetchInputsAndOutputs=True)
        query.instanceIdPrefix.value = "q-"
        if token:
            query.continuationToken.value = token
        response = stub.QueryInstances(pb.QueryInstancesRequest(query=query), timeout=5)
        pages += 1
        seen.extend(s.instanceId for s in response.orchestrationState)
        assert all(s.input.value == '"in"' for s in response.orchestrationState)
        token = response.continuationToken.value if response.HasField("continuationToken") else None
        if not token:
            break
    assert pages == 3
    assert seen == ids

    # A new instance created between pages does not disturb a keyset cursor.
    everything = stub.QueryInstances(pb.QueryInstancesRequest(query=pb.InstanceQuery()), timeout=5)
    assert len(everything.orchestrationState) == 8
    assert not everything.HasField("continuationToken")
    assert not everything.orchestrationState[0].HasField("input")

    stub.TerminateInstance(pb.TerminateRequest(instanceId="q-03"), timeout=5)
    terminated = pb.InstanceQuery(runtimeStatus=[pb.ORCHESTRATION_STATUS_TERMINATED])
    response = stub.QueryInstances(pb.QueryInstancesRequest(query=terminated), timeout=5)
    assert [s.instanceId for s in response.orchestrationState] == ["q-03"]


def test_list_instance_ids_pages_by_completion(stub: Stub) -> None:
    ids = [f"done-{n}" for n in range(5)]
    for instance_id in ids:
        start(stub, instance_id=instance_id)
        stub.TerminateInstance(pb.TerminateRequest(instanceId=instance_id), timeout=5)
    start(stub, instance_id="still-pending")

    seen: list[str] = []
    key: str | None = None
    while True:
        request = pb.ListInstanceIdsRequest(pageSize=2)
        if key:
            request.lastInstanceKey.value = key
        response = stub.ListInstanceIds(request, timeout=5)
        seen.extend(response.instanceIds)
        key = response.lastInstanceKey.value if response.HasField("lastInstanceKey") else None
        if not key:
            break
    assert seen == ids

    only_completed = pb.ListInstanceIdsRequest(runtimeStatus=[pb.ORCHESTRATION_STATUS_COMPLETED])
    assert list(stub.ListInstanceIds(only_completed, timeout=5).instanceIds) == []


def _inbox_ids(db: str) -> list[str]:
    with sqlite3.connect(db) as reader:
        return [row[0] for row in reader.execute("SELECT instance_id FROM inbox ORDER BY seq")]


def test_failed_change_rolls_back_only_itself(tmp_path: pathlib.Path) -> None:
    db = str(tmp_path / "durable.db")
    store = Store(db)

    def failing(instance_id: str) -> Callable[[], None]:
        def change() -> None:
            store.add_inbox(instance_id, 0, 0, b"")
            raise ValueError("boom")

        return change

    try:
        # When the first change of a group fails, nothing of it is left.
        with pytest.raises(ValueError, match="boom"):
            store.run_in_group(failing("first-fails"))
        store.commit_group()
        assert _inbox_ids(db) == []

        # When a later change of a group fails, the group's other changes stay.
        group = store.run_in_group(lambda: store.add_inbox("kept", 0, 0, b""))
        with pytest.raises(ValueError, match="boom"):
            store.run_in_group(failing("later-fails"))
        store.run_in_group(lambda: store.add_inbox("also-kept", 0, 0, b""))
        store.commit_group()
        assert store.committed_group == group
        assert _inbox_ids(db) == ["kept", "also-kept"]
    finally:
        store.close()
