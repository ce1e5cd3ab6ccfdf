"""The replay cache gives the same results as full replays, and stays bounded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

import durable
from durable._proto import orchestrator_service_pb2 as pb
from durable._runtime import ReplayCache, ReplayResult

from tests.unit.history import (
    START,
    Simulation,
    confirmation,
    event_raised,
    orchestrator_started,
    task_completed,
    task_failed,
    timer_fired,
)
from tests.unit.test_runtime import Chain, FanOut, Monitor, TenSteps, ThreeEvents, double

calls: list[int] = []


class Sequential(durable.Orchestration[int, int]):
    async def run(self, count: int) -> int:
        total = 0
        for i in range(count):
            calls.append(i)
            total += await self.call_activity(double, i)
        return total


class Retrying(durable.Orchestration[None, int]):
    async def run(self, value: None) -> int:
        policy = durable.RetryPolicy(first_interval=timedelta(seconds=1), max_attempts=3)
        return await self.call_activity(double, 21, retry=policy)


def _drive(sim: Simulation, feed: Callable[[Simulation, ReplayResult], bool]) -> list[bytes]:
    """Run until the feed function returns False; return each response's serialized actions."""
    seen: list[bytes] = []
    result = sim.run()
    while True:
        seen.append(b"".join(a.SerializeToString(deterministic=True) for a in result.actions) + (result.custom_status or "").encode())
        if result.completion is not None or not feed(sim, result):
            return seen
        result = sim.run()


def _complete_activities(sim: Simulation, result: ReplayResult) -> bool:
    activities = [a for a in result.actions if a.HasField("scheduleTask")]
    timers = [a for a in result.actions if a.HasField("createTimer")]
    for action in activities:
        value = int(action.scheduleTask.input.value or "0")
        sim.add(task_completed(action.id, str(value * 2)))
    for action in timers:
        sim.add(timer_fired(action.id, action.createTimer.fireAt.ToDatetime()))
    return bool(activities or timers)


CASES: list[tuple[type, object]] = [(Chain, 3), (FanOut, 20), (Sequential, 30), (TenSteps, 0), (Monitor, 1)]


@pytest.mark.parametrize(("orchestration", "value"), CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_cache_on_and_off_give_same_responses(orchestration: type, value: object) -> None:
    plain = _drive(Simulation(orchestration, value), _complete_activities)
    cache = ReplayCache()
    cached = _drive(Simulation(orchestration, value, cache=cache), _complete_activities)
    assert cached == plain
    assert len(plain) > 1
    assert cache.hits == len(plain) - 1
    assert len(cache) == 0  # finished instances leave the cache


def test_cache_replays_only_new_events() -> None:
    calls.clear()
    cache = ReplayCache()
    sim = Simulation(Sequential, 50, cache=cache)
    _drive(sim, _complete_activities)
    # Without the cache the loop body would run 50 * 51 / 2 times.
    assert len(calls) == 50


def test_cache_with_failures_and_retries_matches() -> None:
    def fail_first(sim: Simulation, result: ReplayResult) -> bool:
        for action in result.actions:
            if action.HasField("scheduleTask"):
                if action.id == 1:
                    sim.add(task_failed(action.id))
                else:
                    sim.add(task_completed(action.id, "42"))
            elif action.HasField("createTimer"):
                sim.add(timer_fired(action.id, START))
        return bool(result.actions)

    plain = _drive(Simulation(Retrying), fail_first)
    cached = _drive(Simulation(Retrying, cache=ReplayCache()), fail_first)
    assert cached == plain


def test_cache_with_events_matches() -> None:
    def send(sim: Simulation, result: ReplayResult) -> bool:
        if len(sim.runs) > 3:
            return False
        sim.add(event_raised("add", len(sim.runs)))
        return True

    plain = _drive(Simulation(ThreeEvents), send)
    cached = _drive(Simulation(ThreeEvents, cache=ReplayCache()), send)
    assert cached == plain


def test_mismatched_history_falls_back_to_full_replay() -> None:
    cache = ReplayCache()
    sim = Simulation(Chain, 1, cache=cache)
    sim.run()
    sim.add(task_completed(1, "2"))
    sim.run()
    # A sidecar that lost the last commit redelivers the older history.
    sim.history = sim.history[:3]
    sim.add(task_completed(1, "2"))
    result = sim.run()
    assert cache.misses == 2
    assert [a.scheduleTask.input.value for a in result.actions] == ["2"]


def test_cache_is_bounded_by_count() -> None:
    cache = ReplayCache(max_instances=3)
    for i in range(5):
        Simulation(Chain, 1, instance_id=f"i{i}", cache=cache).run()
    assert len(cache) == 3


def test_cache_is_bounded_by_bytes() -> None:
    cache = ReplayCache(max_bytes=1)
    Simulation(Chain, 1, cache=cache).run()
    assert len(cache) == 0


def test_cache_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="max_instances"):
        ReplayCache(max_instances=0)


def test_run_work_item_uses_cache() -> None:
    from durable._runtime import run_work_item
    from tests.unit.history import execution_started, orchestrator_started

    cache = ReplayCache()
    request = pb.OrchestratorRequest(instanceId="x", newEvents=[orchestrator_started(), execution_started("Chain", "1", "x")])
    response = run_work_item({"Chain": Chain}, request, cache=cache)
    assert response.instanceId == "x"
    assert response.actions[0].scheduleTask.name == "double"
    assert len(cache) == 1


def _tail_run(sim: Simulation, cache: ReplayCache, sent: list[int]) -> ReplayResult:
    """Run like a sidecar that sends only the history after what the worker last saw."""
    new_events = [orchestrator_started(sim.now), *sim.inbox]
    sim.inbox = []
    offset = sent[0]
    request = pb.OrchestratorRequest(instanceId=sim.instance_id, pastEvents=sim.history[offset:], newEvents=new_events)
    result = cache.run_tail(sim.orchestrations, request, offset)
    assert result is not None, "the cache should continue from the offset"
    sim.history.extend(new_events)
    sent[0] = len(sim.history)
    for action in result.actions:
        confirm = confirmation(action)
        if confirm is not None:
            sim.history.append(confirm)
    sim.runs.append(result)
    return result


def test_tail_runs_match_full_replays() -> None:
    plain = _drive(Simulation(Sequential, 25), _complete_activities)

    cache = ReplayCache()
    sim = Simulation(Sequential, 25, cache=cache)
    first = sim.run()
    sent = [len(sim.history) - len([a for a in first.actions if a.HasField("scheduleTask")])]
    seen = [b"".join(a.SerializeToString(deterministic=True) for a in first.actions)]
    result = first
    while result.completion is None:
        _complete_activities(sim, result)
        result = _tail_run(sim, cache, sent)
        seen.append(b"".join(a.SerializeToString(deterministic=True) for a in result.actions))
    assert seen == plain


def test_tail_with_wrong_offset_is_refused() -> None:
    cache = ReplayCache()
    sim = Simulation(Chain, 1, cache=cache)
    sim.run()
    request = pb.OrchestratorRequest(instanceId="inst", pastEvents=sim.history[1:], newEvents=[])
    assert cache.run_tail(sim.orchestrations, request, 1) is None
    # The refused attempt leaves the cached instance in place.
    assert len(cache) == 1
    unknown = pb.OrchestratorRequest(instanceId="other", pastEvents=[], newEvents=[])
    assert cache.run_tail(sim.orchestrations, unknown, 0) is None
