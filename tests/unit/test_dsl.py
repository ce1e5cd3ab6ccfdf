"""The public DSL surface: class keywords, tasks, events, goto and the Mermaid graph."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable
from durable._graph import load_machine, to_mermaid
from durable._orchestration import registry
from durable._task import CompletableTask

from tests.unit.history import Simulation, output


class Named(durable.Orchestration[int, int], name="billing.named", version="2"):
    async def run(self, value: int) -> int:
        return value


def test_class_keywords_set_name_and_version() -> None:
    assert Named.__durable_name__ == "billing.named"
    assert Named.__durable_version__ == "2"
    assert Named.__durable_machine__.name == "billing.named"
    assert registry[("billing.named", "2")] is Named
    assert output(Simulation(Named, 3).run()) == 3


def test_default_name_is_class_name() -> None:
    class Plain(durable.Orchestration[None, None]):
        async def run(self, value: None) -> None:
            return None

    assert Plain.__durable_name__ == "Plain"
    assert Plain.__durable_version__ is None


def test_empty_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="name="):

        class Empty(durable.Orchestration[None, None], name=""):
            async def run(self, value: None) -> None:
                return None


def test_generic_arguments_are_recorded() -> None:
    machine = Named.__durable_machine__
    assert (machine.input_type, machine.output_type) == (int, int)


def test_task_result_and_exception() -> None:
    task: CompletableTask[int] = CompletableTask("demo")
    assert not task.done
    with pytest.raises(RuntimeError, match="has not finished"):
        task.result()
    with pytest.raises(RuntimeError, match="has not finished"):
        task.exception()
    task.complete(5)
    assert task.done and not task.failed
    assert task.result() == 5
    assert task.exception() is None

    failing: CompletableTask[int] = CompletableTask("demo")
    error = ValueError("nope")
    failing.fail(error)
    assert failing.failed
    assert failing.exception() is error
    with pytest.raises(ValueError, match="nope"):
        failing.result()


def test_when_all_and_when_any_validate_arguments() -> None:
    with pytest.raises(TypeError, match="item 1"):
        durable.when_all([CompletableTask("a"), "not a task"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one"):
        durable.when_any([])
    assert durable.when_all([]).result() == []


def test_event_on_class_and_instance() -> None:
    class Waits(durable.Orchestration[None, int]):
        number: durable.Event[int] = durable.Event("number")

        async def run(self, value: None) -> int:
            return await self.number.wait()

    assert isinstance(Waits.number, durable.Event)
    assert (Waits.number.name, Waits.number.type) == ("number", int)
    assert Waits.__durable_machine__.events >= {"number"}
    with pytest.raises(ValueError, match="non-empty name"):
        durable.Event("")


def test_goto_rejects_non_step() -> None:
    class Steps(durable.Orchestration[int, int]):
        @durable.step(start=True)
        async def first(self, value: int) -> int:
            return value

        async def helper(self, value: int) -> int:
            return value

    instance = Steps()
    with pytest.raises(ValueError, match="not a step of Steps"):
        instance.goto(instance.helper, 1)


def test_graph_shows_steps_edges_and_waits() -> None:
    class Approve(durable.Orchestration[int, str]):
        answer: durable.Event[str] = durable.Event("answer")

        @durable.step(start=True)
        async def ask(self, value: int) -> str | durable.Goto:
            if await durable.when_any(self.answer.wait(), self.create_timer(timedelta(days=1))):
                return self.goto(self.escalate, value)
            return "ok"

        @durable.step
        async def escalate(self, value: int) -> durable.Goto:
            return self.goto(self.ask, value, continue_as_new=True)

    text = to_mermaid(Approve.__durable_machine__)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> ask" in lines
    assert "    ask --> escalate" in lines
    assert "    escalate --> ask : continue as new" in lines
    assert "    ask : event answer" in lines
    assert "    ask : timer" in lines
    assert "    ask --> [*]" in lines
    assert "    escalate --> [*]" not in lines


def test_load_machine_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="MODULE:Class"):
        load_machine("no_colon")
    with pytest.raises(ValueError, match="has no attribute 'Missing'"):
        load_machine("tests.unit.test_dsl:Missing")
    with pytest.raises(ValueError, match="not a durable.Orchestration"):
        load_machine("tests.unit.test_dsl:pytest")
    assert load_machine("tests.unit.test_dsl:Named").name == "billing.named"
