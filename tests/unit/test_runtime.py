"""The replay runtime, driven by hand-built histories (no network)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import durable
from durable._proto import orchestrator_service_pb2 as pb
from durable._runtime import STEP_ENVELOPE_KEY, current_step, replay

from tests.unit.history import (
    START,
    Simulation,
    event_raised,
    execution_started,
    failed,
    failure,
    kinds,
    orchestrator_started,
    output,
    resumed,
    sub_completed,
    sub_failed,
    suspended,
    task_completed,
    task_failed,
    task_scheduled,
    terminated,
    timer_fired,
)


@durable.activity
def double(ctx: durable.ActivityContext, value: int) -> int:
    return value * 2


@durable.activity
def greet(ctx: durable.ActivityContext, name: str) -> str:
    return f"hello {name}"


class Chain(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        first = await self.call_activity(double, value)
        second = await self.call_activity(double, first)
        return await self.call_activity(double, second)


# ---------------------------------------------------------------- one-step machines and numbering


def test_chain_runs_one_activity_per_work_item() -> None:
    sim = Simulation(Chain, 1)
    first = sim.run()
    assert kinds(first) == ["scheduleTask"]
    assert first.actions[0].id == 1
    assert first.actions[0].scheduleTask.name == "double"
    assert first.actions[0].scheduleTask.input.value == "1"

    sim.add(task_completed(1, "2"))
    second = sim.run()
    assert [a.id for a in second.actions] == [2]
    assert second.actions[0].scheduleTask.input.value == "2"

    sim.add(task_completed(2, "4"))
    sim.run()
    sim.add(task_completed(3, "8"))
    last = sim.run()
    assert kinds(last) == ["completeOrchestration"]
    assert last.actions[0].id == 4
    assert output(last) == 8


def test_replay_of_full_history_emits_only_new_actions() -> None:
    history = [
        orchestrator_started(),
        execution_started("Chain", "5"),
        task_scheduled(1, "double"),
        orchestrator_started(),
        task_completed(1, "10"),
        task_scheduled(2, "double"),
    ]
    new = [orchestrator_started(), task_completed(2, "20")]
    result = replay({"Chain": Chain}, "inst", history, new)
    assert [(a.id, a.scheduleTask.input.value) for a in result.actions] == [(3, "20")]


def test_falsy_inputs_round_trip_with_their_types() -> None:
    class Echo(durable.Orchestration[Any, Any]):
        async def run(self, value: Any) -> Any:
            return value

    for raw, expected in [("0", 0), ('""', ""), ("false", False), ("[]", []), ("{}", {}), ("0.0", 0.0)]:
        result = Simulation(Echo, raw_input=raw).run()
        assert result.completion is not None
        assert result.completion.HasField("result"), raw
        value = json.loads(result.completion.result.value)
        assert value == expected, raw
        assert type(value) is type(expected), raw


def test_falsy_typed_input_keeps_type() -> None:
    class Count(durable.Orchestration[int, list[int]]):
        async def run(self, value: int) -> list[int]:
            return [value, value]

    assert output(Simulation(Count, raw_input="0").run()) == [0, 0]


def test_none_result_has_no_payload() -> None:
    class Nothing(durable.Orchestration[None, None]):
        async def run(self, value: None) -> None:
            return None

    result = Simulation(Nothing).run()
    assert result.completion is not None
    assert result.completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED
    assert not result.completion.HasField("result")


def test_bad_input_fails_naming_type() -> None:
    result = Simulation(Chain, raw_input='"text"').run()
    details = failed(result)
    assert details.errorType == "durable.errors.PayloadError"
    assert "int" in details.errorMessage


# ---------------------------------------------------------------- failures and try/except


def test_uncaught_activity_failure_fails_with_details() -> None:
    sim = Simulation(Chain, 1)
    sim.run()
    sim.add(task_failed(1, failure("builtins.ValueError", "bad value")))
    details = failed(sim.run())
    assert details.errorType == "durable.errors.TaskFailedError"
    assert "bad value" in details.errorMessage
    assert details.innerFailure.errorType == "builtins.ValueError"
    assert details.innerFailure.errorMessage == "bad value"
    assert details.innerFailure.stackTrace.value == "Traceback: somewhere"


def test_except_block_can_schedule_two_more_activities() -> None:
    class Compensate(durable.Orchestration[int, list[int]]):
        async def run(self, value: int) -> list[int]:
            try:
                await self.call_activity(double, value)
            except durable.TaskFailedError as error:
                assert error.details.error_type == "builtins.ValueError"
                a = await self.call_activity(double, 10)
                b = await self.call_activity(double, 20)
                return [a, b]
            return []

    sim = Simulation(Compensate, 1)
    sim.run()
    sim.add(task_failed(1))
    assert kinds(sim.run()) == ["scheduleTask"]
    sim.add(task_completed(2, "20"))
    assert kinds(sim.run()) == ["scheduleTask"]
    sim.add(task_completed(3, "40"))
    assert output(sim.run()) == [20, 40]


def test_user_exception_fails_with_chain() -> None:
    class Broken(durable.Orchestration[int, int]):
        async def run(self, value: int) -> int:
            try:
                raise KeyError("inner")
            except KeyError as exc:
                raise RuntimeError("outer") from exc

    details = failed(Simulation(Broken, 1).run())
    assert details.errorType == "builtins.RuntimeError"
    assert details.errorMessage == "outer"
    assert details.innerFailure.errorType == "builtins.KeyError"
    assert "RuntimeError" in details.stackTrace.value


def test_awaiting_non_durable_object_fails_clearly() -> None:
    class Awaits(durable.Orchestration[int, int]):
        async def run(self, value: int) -> int:
            await _Foreign()
            return value

    details = failed(Simulation(Awaits, 1).run())
    assert details.errorType == "builtins.TypeError"
    assert "_Foreign" in details.errorMessage
    assert "not a durable task" in details.errorMessage


class _Foreign:
    def __await__(self) -> Any:
        yield "foreign-object"
        return None

    def __repr__(self) -> str:
        return "<_Foreign awaitable>"


def test_unknown_orchestration_name_fails_listing_registered() -> None:
    new = [orchestrator_started(), execution_started("Missing", None)]
    result = replay({"Chain": Chain}, "inst", [], new)
    details = failed(result)
    assert details.errorType == "durable.errors.OrchestrationNotRegisteredError"
    assert "'Missing'" in details.errorMessage
    assert "Chain" in details.errorMessage


# ---------------------------------------------------------------- non-determinism


def test_kind_mismatch_is_nondeterminism() -> None:
    history = [
        orchestrator_started(),
        execution_started("Chain", "1"),
        pb.HistoryEvent(eventId=1, timerCreated=pb.TimerCreatedEvent()),
    ]
    details = failed(replay({"Chain": Chain}, "inst", history, [orchestrator_started()]))
    assert details.errorType == "durable.errors.NonDeterminismError"
    assert "action id 1" in details.errorMessage
    assert "timerCreated" in details.errorMessage
    assert "scheduleTask" in details.errorMessage


def test_name_mismatch_is_nondeterminism() -> None:
    history = [orchestrator_started(), execution_started("Chain", "1"), task_scheduled(1, "triple")]
    details = failed(replay({"Chain": Chain}, "inst", history, [orchestrator_started()]))
    assert details.errorType == "durable.errors.NonDeterminismError"
    assert "'triple'" in details.errorMessage
    assert "'double'" in details.errorMessage


def test_missing_action_is_nondeterminism() -> None:
    history = [orchestrator_started(), execution_started("Chain", "1"), task_scheduled(1, "double"), task_scheduled(7, "double")]
    details = failed(replay({"Chain": Chain}, "inst", history, [orchestrator_started()]))
    assert "action id 7" in details.errorMessage


def test_duplicate_completion_is_ignored() -> None:
    sim = Simulation(Chain, 1)
    sim.run()
    sim.add(task_completed(1, "2"), task_completed(1, "999"))
    result = sim.run()
    assert [a.scheduleTask.input.value for a in result.actions] == ["2"]


# ---------------------------------------------------------------- timers and the clock


def test_timer_uses_orchestration_clock() -> None:
    class Sleepy(durable.Orchestration[None, str]):
        async def run(self, value: None) -> str:
            before = self.now()
            await self.create_timer(timedelta(minutes=5))
            return f"{before.isoformat()}|{self.now().isoformat()}"

    sim = Simulation(Sleepy)
    first = sim.run()
    assert kinds(first) == ["createTimer"]
    fire_at = first.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc)
    assert fire_at == START + timedelta(minutes=5)
    sim.now = START + timedelta(minutes=5)
    sim.add(timer_fired(1, fire_at))
    assert output(sim.run()) == f"{START.isoformat()}|{(START + timedelta(minutes=5)).isoformat()}"


def test_zero_and_past_timers_schedule_immediately() -> None:
    class Instant(durable.Orchestration[None, int]):
        async def run(self, value: None) -> int:
            await self.create_timer(timedelta(0))
            await self.create_timer(datetime(2000, 1, 1, tzinfo=timezone.utc))
            return 1

    sim = Simulation(Instant)
    first = sim.run()
    assert first.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc) == START
    sim.add(timer_fired(1, START))
    second = sim.run()
    assert second.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc) == datetime(2000, 1, 1, tzinfo=timezone.utc)
    sim.add(timer_fired(2, datetime(2000, 1, 1, tzinfo=timezone.utc)))
    assert output(sim.run()) == 1


def test_long_timer_is_split_into_chunks() -> None:
    class Long(durable.Orchestration[None, str]):
        async def run(self, value: None) -> str:
            await self.create_timer(timedelta(days=7))
            return "done"

    sim = Simulation(Long, max_timer_interval=timedelta(days=3))
    first = sim.run()
    due1 = first.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc)
    assert due1 == START + timedelta(days=3)
    sim.add(timer_fired(1, due1))
    second = sim.run()
    assert second.actions[0].id == 2
    due2 = second.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc)
    assert due2 == START + timedelta(days=6)
    sim.add(timer_fired(2, due2))
    third = sim.run()
    due3 = third.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc)
    assert due3 == START + timedelta(days=7)
    sim.add(timer_fired(3, due3))
    assert output(sim.run()) == "done"


def test_new_uuid_is_stable_across_replays() -> None:
    class Ids(durable.Orchestration[None, list[str]]):
        async def run(self, value: None) -> list[str]:
            first = str(self.new_uuid())
            await self.create_timer(timedelta(seconds=1))
            return [first, str(self.new_uuid())]

    sim = Simulation(Ids)
    sim.run()
    sim.add(timer_fired(1, START + timedelta(seconds=1)))
    first_ids = output(sim.run())
    # A full replay of the same history gives the same ids.
    again = replay(sim.orchestrations, "inst", sim.history[:-0] or sim.history, [])
    assert len(set(first_ids)) == 2
    assert again.completion is not None
    assert json.loads(again.completion.result.value) == first_ids


def test_is_replaying_and_logger_silent_during_replay(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[bool] = []

    class Logs(durable.Orchestration[None, None]):
        async def run(self, value: None) -> None:
            seen.append(self.is_replaying)
            self.logger.info("before timer")
            await self.create_timer(timedelta(seconds=1))
            seen.append(self.is_replaying)
            self.logger.info("after timer")

    sim = Simulation(Logs)
    with caplog.at_level("INFO", logger="durable.orchestration"):
        sim.run()
        sim.add(timer_fired(1, START + timedelta(seconds=1)))
        caplog.clear()
        sim.run()
    assert seen == [False, True, False]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["[inst] after timer"]


# ---------------------------------------------------------------- external events


class ThreeEvents(durable.Orchestration[None, list[int]]):
    async def run(self, value: None) -> list[int]:
        return [await self.wait_for_event("Add", int) for _ in range(3)]


def test_three_waits_get_three_payloads_in_order() -> None:
    sim = Simulation(ThreeEvents)
    assert sim.run().actions == []
    sim.add(event_raised("add", 1))
    sim.run()
    sim.add(event_raised("ADD", 2), event_raised("Add", 3))
    assert output(sim.run()) == [1, 2, 3]


def test_three_events_that_arrived_first_are_buffered() -> None:
    sim = Simulation(ThreeEvents)
    sim.add(event_raised("Add", 7), event_raised("Add", 8), event_raised("Add", 9))
    assert output(sim.run()) == [7, 8, 9]


def test_event_raised_before_wait_is_delivered() -> None:
    class Later(durable.Orchestration[None, str]):
        async def run(self, value: None) -> str:
            await self.create_timer(timedelta(seconds=1))
            return await self.wait_for_event("go", str)

    sim = Simulation(Later)
    sim.run()
    sim.add(event_raised("go", "early"))
    assert sim.run().actions == []
    sim.add(timer_fired(1, START))
    assert output(sim.run()) == "early"


def test_lost_wait_does_not_consume_next_event() -> None:
    class Race(durable.Orchestration[None, list[str]]):
        async def run(self, value: None) -> list[str]:
            outcomes: list[str] = []
            event = self.wait_for_event("ping", str)
            timer = self.create_timer(timedelta(seconds=5))
            winner = await durable.when_any(event, timer)
            outcomes.append("event" if winner is event else "timer")
            outcomes.append(await self.wait_for_event("ping", str))
            return outcomes

    sim = Simulation(Race)
    sim.run()
    sim.add(timer_fired(1, START + timedelta(seconds=5)))
    assert sim.run().actions == []
    sim.add(event_raised("ping", "second wait gets it"))
    assert output(sim.run()) == ["timer", "second wait gets it"]


def test_when_any_winner_stable_on_replay() -> None:
    class Race(durable.Orchestration[None, str]):
        async def run(self, value: None) -> str:
            fast = self.call_activity(greet, "fast")
            slow = self.call_activity(greet, "slow")
            winner = await durable.when_any(fast, slow)
            await self.create_timer(timedelta(seconds=1))
            return winner.result()

    sim = Simulation(Race)
    sim.run()
    sim.add(task_completed(2, '"slow won"'))
    assert kinds(sim.run()) == ["createTimer"]
    sim.add(task_completed(1, '"fast late"'))
    sim.run()
    sim.add(timer_fired(3, START))
    assert output(sim.run()) == "slow won"


def test_typed_event_declared_on_class() -> None:
    class Approval(durable.Orchestration[None, bool]):
        approved: durable.Event[bool] = durable.Event("approved")

        async def run(self, value: None) -> bool:
            return await self.approved.wait()

    assert Approval.approved.type is bool
    sim = Simulation(Approval)
    sim.add(event_raised("APPROVED", False))
    assert output(sim.run()) is False


def test_event_without_payload_is_none() -> None:
    class Bare(durable.Orchestration[None, Any]):
        async def run(self, value: None) -> Any:
            return await self.wait_for_event("go")

    sim = Simulation(Bare)
    sim.add(event_raised("go"))
    assert output(sim.run()) is None


# ---------------------------------------------------------------- when_all


class FanOut(durable.Orchestration[int, int]):
    async def run(self, count: int) -> int:
        results = await durable.when_all([self.call_activity(double, i) for i in range(count)])
        return sum(results)


def test_fan_out_fan_in() -> None:
    sim = Simulation(FanOut, 5)
    first = sim.run()
    assert [a.id for a in first.actions] == [1, 2, 3, 4, 5]
    sim.add(*[task_completed(i + 1, str(i * 2)) for i in reversed(range(5))])
    assert output(sim.run()) == 20


def test_when_all_failure_only_after_all_children_finished() -> None:
    class Catch(durable.Orchestration[None, str]):
        async def run(self, value: None) -> str:
            tasks = [self.call_activity(double, i) for i in range(3)]
            try:
                await durable.when_all(tasks)
            except durable.TaskFailedError as error:
                done = [t.done for t in tasks]
                return f"{error.details.message}|{done}"
            return "no failure"

    sim = Simulation(Catch)
    sim.run()
    sim.add(task_failed(2, failure(message="first")))
    assert sim.run().actions == []
    sim.add(task_failed(1, failure(message="second")))
    assert sim.run().actions == []
    sim.add(task_completed(3, "4"))
    assert output(sim.run()) == "first|[True, True, True]"


def test_when_all_tuple_of_mixed_tasks() -> None:
    class Mixed(durable.Orchestration[None, list[Any]]):
        async def run(self, value: None) -> list[Any]:
            number, text = await durable.when_all(self.call_activity(double, 2), self.call_activity(greet, "x"))
            return [number, text]

    sim = Simulation(Mixed)
    sim.run()
    sim.add(task_completed(2, '"hello x"'), task_completed(1, "4"))
    assert output(sim.run()) == [4, "hello x"]


# ---------------------------------------------------------------- retries


def test_three_attempts_then_caught() -> None:
    policy = durable.RetryPolicy(first_interval=timedelta(seconds=1), max_attempts=3, backoff=2.0)

    class Retry(durable.Orchestration[None, str]):
        async def run(self, value: None) -> str:
            try:
                await self.call_activity(double, 1, retry=policy)
            except durable.TaskFailedError as error:
                return f"gave up: {error.details.message}"
            return "ok"

    sim = Simulation(Retry)
    assert kinds(sim.run()) == ["scheduleTask"]
    sim.add(task_failed(1, failure(message="attempt 1")))
    retry1 = sim.run()
    assert kinds(retry1) == ["createTimer"]
    # The run that saw the failure started at START + 1 s; the first retry waits 1 s.
    assert retry1.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc) == START + timedelta(seconds=2)
    sim.add(timer_fired(2, START))
    assert kinds(sim.run()) == ["scheduleTask"]
    sim.add(task_failed(3, failure(message="attempt 2")))
    retry2 = sim.run()
    fire_at = retry2.actions[0].createTimer.fireAt.ToDatetime(tzinfo=timezone.utc)
    # The second failure is seen at START + 3 s; backoff 2.0 doubles the wait to 2 s.
    assert fire_at == START + timedelta(seconds=5)
    sim.add(timer_fired(4, fire_at))
    assert kinds(sim.run()) == ["scheduleTask"]
    sim.add(task_failed(5, failure(message="attempt 3")))
    final = sim.run()
    assert output(final) == "gave up: attempt 3"
    scheduled = [e for e in sim.history if e.HasField("taskScheduled")]
    assert len(scheduled) == 3


def test_retry_without_max_interval_still_retries() -> None:
    policy = durable.RetryPolicy(first_interval=timedelta(seconds=2), max_attempts=2)

    class Retry(durable.Orchestration[None, int]):
        async def run(self, value: None) -> int:
            return await self.call_activity(double, 4, retry=policy)

    sim = Simulation(Retry)
    sim.run()
    sim.add(task_failed(1))
    assert kinds(sim.run()) == ["createTimer"]
    sim.add(timer_fired(2, START))
    assert kinds(sim.run()) == ["scheduleTask"]
    sim.add(task_completed(3, "8"))
    assert output(sim.run()) == 8


def test_retry_on_types_and_predicate() -> None:
    only_key = durable.RetryPolicy(first_interval=timedelta(seconds=1), max_attempts=5, retry_on=(KeyError,))
    assert only_key.should_retry(durable.FailureDetails("builtins.KeyError", "x"))
    assert not only_key.should_retry(durable.FailureDetails("builtins.ValueError", "x"))
    lookup = durable.RetryPolicy(first_interval=timedelta(seconds=1), max_attempts=5, retry_on=LookupError)
    assert lookup.should_retry(durable.FailureDetails("builtins.KeyError", "x"))
    predicate = durable.RetryPolicy(
        first_interval=timedelta(seconds=1), max_attempts=5, retry_on=lambda d: "transient" in d.message
    )
    assert predicate.should_retry(durable.FailureDetails("x.Y", "transient glitch"))
    assert not predicate.should_retry(durable.FailureDetails("x.Y", "fatal"))
    assert not predicate.should_retry(durable.FailureDetails("x.Y", "transient", is_non_retriable=True))


def test_retry_timeout_uses_orchestration_time() -> None:
    policy = durable.RetryPolicy(first_interval=timedelta(minutes=10), max_attempts=10, timeout=timedelta(minutes=15))

    class Retry(durable.Orchestration[None, int]):
        async def run(self, value: None) -> int:
            return await self.call_activity(double, 4, retry=policy)

    sim = Simulation(Retry)
    sim.run(advance=timedelta(minutes=1))
    sim.add(task_failed(1))
    assert kinds(sim.run(advance=timedelta(minutes=10))) == ["createTimer"]  # retry at +11 min
    sim.add(timer_fired(2, START))
    sim.run(advance=timedelta(minutes=1))
    sim.add(task_failed(3))
    # The next retry would start past 15 minutes of orchestration time.
    details = failed(sim.run())
    assert details.innerFailure.errorType == "builtins.ValueError"


def test_retry_policy_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        durable.RetryPolicy(first_interval=timedelta(seconds=1), max_attempts=0)
    with pytest.raises(ValueError, match="first_interval"):
        durable.RetryPolicy(first_interval=timedelta(0), max_attempts=2)
    with pytest.raises(TypeError, match="retry_on"):
        durable.RetryPolicy(first_interval=timedelta(seconds=1), max_attempts=2, retry_on=("KeyError",))  # type: ignore[arg-type]


# ---------------------------------------------------------------- sub-orchestrations


class Child(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return value + 1


def test_default_child_id() -> None:
    class Parent(durable.Orchestration[int, int]):
        async def run(self, value: int) -> int:
            return await self.call_sub_orchestration(Child, value)

    sim = Simulation(Parent, 1, instance_id="order-7")
    create = sim.run().actions[0].createSubOrchestration
    assert create.name == "Child"
    assert create.instanceId == "order-7:0001"
    assert create.input.value == "1"
    sim.add(sub_completed(1, "2"))
    assert output(sim.run()) == 2


def test_child_failure_details_reach_parent_intact() -> None:
    class Parent(durable.Orchestration[int, str]):
        async def run(self, value: int) -> str:
            try:
                await self.call_sub_orchestration(Child, value, instance_id="kid")
            except durable.TaskFailedError as error:
                chain = error.details.chain()
                return "|".join(f"{d.error_type}:{d.message}" for d in chain) + f"|{error.details.stack_trace}"
            return "no failure"

    sim = Simulation(Parent, 1)
    assert sim.run().actions[0].createSubOrchestration.instanceId == "kid"
    inner = failure("builtins.KeyError", "'sku'")
    sim.add(sub_failed(1, failure("durable.errors.TaskFailedError", "activity failed", inner)))
    assert output(sim.run()) == (
        "durable.errors.TaskFailedError:activity failed|builtins.KeyError:'sku'|Traceback: somewhere"
    )


def test_child_knows_parent_id() -> None:
    class Kid(durable.Orchestration[None, Any]):
        async def run(self, value: None) -> Any:
            return self.parent_instance_id

    new = [orchestrator_started(), execution_started("Kid", None, "kid", parent="mom")]
    result = replay({"Kid": Kid}, "kid", [], new)
    assert result.completion is not None
    assert json.loads(result.completion.result.value) == "mom"


def test_send_event_and_custom_status() -> None:
    class Sender(durable.Orchestration[None, None]):
        async def run(self, value: None) -> None:
            self.set_custom_status({"stage": "sending"})
            self.send_event("other", "poke", 5)

    result = Simulation(Sender).run()
    assert result.custom_status == '{"stage":"sending"}'
    send = result.actions[0].sendEvent
    assert (send.instance.instanceId, send.name, send.data.value) == ("other", "poke", "5")
    assert result.to_response("inst", "tok").customStatus.value == '{"stage":"sending"}'


# ---------------------------------------------------------------- suspend, resume, terminate


def test_suspend_holds_events_until_resume() -> None:
    sim = Simulation(ThreeEvents)
    sim.run()
    sim.add(suspended(), event_raised("add", 1), event_raised("add", 2))
    assert sim.run().completion is None
    sim.add(event_raised("add", 3))
    assert sim.run().completion is None
    sim.add(resumed())
    assert output(sim.run()) == [1, 2, 3]


def test_resume_when_not_suspended_is_ignored() -> None:
    sim = Simulation(ThreeEvents)
    sim.run()
    sim.add(resumed(), event_raised("add", 1), event_raised("add", 2), event_raised("add", 3))
    assert output(sim.run()) == [1, 2, 3]


def test_terminate_ends_even_while_suspended() -> None:
    sim = Simulation(ThreeEvents)
    sim.run()
    sim.add(suspended())
    sim.run()
    sim.add(terminated('"stop"'))
    result = sim.run()
    assert result.completion is not None
    assert result.completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_TERMINATED
    assert result.completion.result.value == '"stop"'


# ---------------------------------------------------------------- steps, goto and continue-as-new


class TenSteps(durable.Orchestration[int, int]):
    @durable.step(start=True)
    async def s0(self, n: int) -> durable.Goto:
        return self.goto(self.s1, n + 1)

    @durable.step
    async def s1(self, n: int) -> durable.Goto:
        return self.goto(self.s2, n + 1)

    @durable.step
    async def s2(self, n: int) -> durable.Goto:
        n = await self.call_activity(double, n)
        return self.goto(self.s3, n + 1)

    @durable.step
    async def s3(self, n: int) -> durable.Goto:
        return self.goto(self.s4, n + 1)

    @durable.step
    async def s4(self, n: int) -> durable.Goto:
        return self.goto(self.s5, n + 1)

    @durable.step
    async def s5(self, n: int) -> durable.Goto:
        return self.goto(self.s6, n + 1)

    @durable.step
    async def s6(self, n: int) -> durable.Goto:
        await self.create_timer(timedelta(seconds=1))
        return self.goto(self.s7, n + 1)

    @durable.step
    async def s7(self, n: int) -> durable.Goto:
        return self.goto(self.s8, n + 1)

    @durable.step
    async def s8(self, n: int) -> durable.Goto:
        return self.goto(self.s9, n + 1)

    @durable.step
    async def s9(self, n: int) -> int:
        return n * 100


def test_ten_step_goto_chain() -> None:
    sim = Simulation(TenSteps, 0)
    first = sim.run()
    assert kinds(first) == ["scheduleTask"]
    assert first.current_step == "s2"
    sim.add(task_completed(1, "4"))
    assert kinds(sim.run()) == ["createTimer"]
    assert current_step(TenSteps, "inst", sim.history) == "s6"
    sim.add(timer_fired(2, START))
    result = sim.run()
    assert output(result) == (4 + 7) * 100  # double(2) in s2, then +1 in each of the seven later steps
    assert result.current_step == "s9"


class Monitor(durable.Orchestration[int, str]):
    @durable.step(start=True)
    async def begin(self, limit: int) -> durable.Goto:
        return self.goto(self.poll, [0, limit])

    @durable.step
    async def poll(self, state: list[int]) -> str | durable.Goto:
        count, limit = state
        if count >= limit:
            return f"polled {count} times"
        await self.create_timer(timedelta(seconds=1))
        return self.goto(self.poll, [count + 1, limit], continue_as_new=True)


def test_goto_loop_with_continue_as_new() -> None:
    first = Simulation(Monitor, 2).run()
    assert kinds(first) == ["createTimer"]

    sim = Simulation(Monitor, 2)
    sim.run()
    sim.add(timer_fired(1, START))
    result = sim.run()
    assert result.completion is not None
    assert result.completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
    envelope = json.loads(result.completion.result.value)
    assert envelope == {STEP_ENVELOPE_KEY: "poll", "value": [1, 2]}

    # The new execution starts at the step named in its input.
    second = Simulation(Monitor, raw_input=result.completion.result.value)
    second.run()
    second.add(timer_fired(1, START))
    again = second.run()
    assert json.loads(again.completion.result.value) == {STEP_ENVELOPE_KEY: "poll", "value": [2, 2]}  # type: ignore[union-attr]
    third = Simulation(Monitor, raw_input=again.completion.result.value)  # type: ignore[union-attr]
    assert output(third.run()) == "polled 2 times"


def test_continue_as_new_keeps_20_events() -> None:
    class Counter(durable.Orchestration[int, int]):
        async def run(self, total: int) -> int:
            await self.wait_for_event("tick", int)
            if total + 1 >= 3:
                return total + 1
            self.continue_as_new(total + 1)

    sim = Simulation(Counter, 0)
    sim.add(*[event_raised("tick", i) for i in range(20)])
    result = sim.run()
    assert result.completion is not None
    assert result.completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
    assert result.completion.result.value == "1"
    carried = [json.loads(e.eventRaised.input.value) for e in result.completion.carryoverEvents]
    assert carried == list(range(1, 20))
    assert all(e.eventRaised.name == "tick" for e in result.completion.carryoverEvents)


def test_continue_as_new_without_keeping_events() -> None:
    class Drop(durable.Orchestration[int, int]):
        async def run(self, total: int) -> int:
            self.continue_as_new(total + 1, keep_events=False)

    sim = Simulation(Drop, 0)
    sim.add(event_raised("tick", 1))
    result = sim.run()
    assert result.completion is not None
    assert len(result.completion.carryoverEvents) == 0


def test_continue_as_new_escapes_except_exception() -> None:
    class Guarded(durable.Orchestration[int, int]):
        async def run(self, total: int) -> int:
            try:
                self.continue_as_new(total + 1)
            except Exception:
                return -1

    result = Simulation(Guarded, 0).run()
    assert result.completion is not None
    assert result.completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW


def test_actions_before_completion_stay_in_response() -> None:
    class Fire(durable.Orchestration[None, int]):
        async def run(self, value: None) -> int:
            self.call_activity(double, 1)
            return 5

    result = Simulation(Fire).run()
    assert kinds(result) == ["scheduleTask", "completeOrchestration"]
    assert [a.id for a in result.actions] == [1, 2]
