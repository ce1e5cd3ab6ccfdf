"""The class compiler, called directly on plain classes.

The classes here are never run: the compiler only reads their shape and their
syntax trees. Expected line numbers come from `# line: <marker>` comments, so
moving code around does not break the tests.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import socket
import subprocess
import threading
import urllib.request
import uuid
import warnings
from datetime import date
from datetime import datetime as dt
from datetime import timedelta
from pathlib import Path
from random import randint as r
from time import sleep
import time as t
from typing import Any

import pytest

from durable._activity import ActivityContext, activity
from durable._compiler import (
    DurableDefinitionWarning,
    allow_nondeterminism,
    compile_orchestration,
    step,
)
from durable._machine import STEP_MARKER, Edge, StateMachine, StepOptions
from durable.errors import DefinitionProblem, OrchestrationDefinitionError


# ---------------------------------------------------------------------------- helpers


class Base:
    """Stand-ins for the orchestration methods, so the classes below read like real ones."""

    __durable_framework__ = True

    def goto(self, target: Any, value: Any, *, continue_as_new: bool = False) -> Any: ...
    def call_activity(self, activity: Any, value: Any = None) -> Any: ...
    def call_sub_orchestration(self, orchestration: Any, value: Any = None) -> Any: ...
    def wait_for_event(self, name: str, type: Any = None) -> Any: ...
    def create_timer(self, delay: Any) -> Any: ...
    def now(self) -> dt:
        raise NotImplementedError

    def new_uuid(self) -> uuid.UUID:
        raise NotImplementedError


def compile_class(cls: type) -> StateMachine:
    return compile_orchestration(cls, name=cls.__name__, version=None, input_type=Any, output_type=Any)


def problems_of(cls: type) -> list[DefinitionProblem]:
    with pytest.raises(OrchestrationDefinitionError) as caught:
        compile_class(cls)
    assert caught.value.class_name == cls.__name__
    return caught.value.problems


def line_of(cls: type, marker: str) -> int:
    """Return the line in this file that carries the comment `# line: <marker>` inside `cls`."""
    lines, first = inspect.getsourcelines(cls)
    matches = [index for index, text in enumerate(lines) if text.rstrip().endswith(f"# line: {marker}")]
    assert len(matches) == 1, f"marker {marker!r} found {len(matches)} times in {cls.__name__}"
    return first + matches[0]


def only_problem(problems: list[DefinitionProblem], rule: str, method: str | None) -> DefinitionProblem:
    found = [problem for problem in problems if problem.rule == rule and problem.method == method]
    assert len(found) == 1, f"expected one {rule} problem in {method}, got: {problems}"
    return found[0]


@activity
def charge(ctx: ActivityContext, amount: int) -> str:
    return f"charged {amount}"


@activity(name="notify-manager")
def notify(ctx: ActivityContext, text: str) -> None:
    return None


class Approval:
    """Duck-typed stand-in for `durable.Event`: the compiler reads `__durable_event__` and `name`."""

    __durable_event__ = True

    def __init__(self, name: str) -> None:
        self.name = name

    def wait(self) -> Any: ...


class Child:
    __durable_name__ = "child-orchestration"


# ---------------------------------------------------------------------------- the step decorator


def test_step_returns_same_function() -> None:
    async def first(self: Any, value: int) -> None: ...

    async def second(self: Any, value: int) -> None: ...

    assert step(first) is first
    assert getattr(first, STEP_MARKER) == StepOptions(start=False)
    assert step(start=True)(second) is second
    assert getattr(second, STEP_MARKER) == StepOptions(start=True)


# ---------------------------------------------------------------------------- compiled machines


class Greetings(Base):
    async def run(self, cities: list[str]) -> list[str]:
        return [await self.call_activity(charge, len(city)) for city in cities]


def test_one_step_run_class_compiles() -> None:
    machine = compile_class(Greetings)

    assert list(machine.steps) == ["run"]
    assert machine.start == "run"
    assert machine.is_single_step
    run = machine.steps["run"]
    assert run.is_start
    assert run.function is Greetings.run
    assert run.param_type == list[str]
    assert run.activities == frozenset({"charge"})
    assert run.file == __file__
    assert run.line == Greetings.run.__code__.co_firstlineno


class Expense(Base):
    approval = Approval("approval")

    @step(start=True)
    async def submit(self, claim: int) -> Any:
        await self.call_activity(notify, "claim")
        return self.goto(self.wait_for_decision, claim)  # line: submit-goto

    @step
    async def wait_for_decision(self, claim: int) -> Any:
        answer = self.wait_for_event("decision", bool)
        deadline = self.create_timer(timedelta(days=3))
        if await answer:
            return self.goto(self.pay, claim)  # line: decision-goto-pay
        del deadline
        return self.goto(self.escalate, claim)  # line: decision-goto-escalate

    @step
    async def escalate(self, claim: int) -> Any:
        await self.approval.wait()
        await self.call_sub_orchestration(Child, claim)
        await self.call_sub_orchestration("audit", claim)
        return self.goto(self.submit, claim, continue_as_new=True)  # line: escalate-goto

    @step
    async def pay(self, claim: int) -> Any:
        return await self.record(claim)

    async def record(self, claim: int) -> Any:
        await self.call_activity("ledger", claim)
        return await self.call_activity(charge, claim)


def test_machine_records_steps_and_start() -> None:
    machine = compile_class(Expense)

    assert list(machine.steps) == ["submit", "wait_for_decision", "escalate", "pay"]
    assert machine.start == "submit"
    assert [name for name, spec in machine.steps.items() if spec.is_start] == ["submit"]
    assert not machine.is_single_step
    assert machine.class_name == "Expense"
    assert machine.steps["pay"].param_type is int


def test_machine_records_edges() -> None:
    machine = compile_class(Expense)

    assert set(machine.edges) == {
        Edge("submit", "wait_for_decision", False, line_of(Expense, "submit-goto")),
        Edge("wait_for_decision", "pay", False, line_of(Expense, "decision-goto-pay")),
        Edge("wait_for_decision", "escalate", False, line_of(Expense, "decision-goto-escalate")),
        Edge("escalate", "submit", True, line_of(Expense, "escalate-goto")),
    }


def test_machine_records_events_activities_and_timers() -> None:
    machine = compile_class(Expense)
    steps = machine.steps

    assert machine.events == frozenset({"decision", "approval"})
    assert steps["wait_for_decision"].events == frozenset({"decision"})
    assert steps["escalate"].events == frozenset({"approval"})
    assert steps["submit"].activities == frozenset({"notify-manager"})
    # `pay` reaches its activities through the helper method `record`.
    assert steps["pay"].activities == frozenset({"ledger", "charge"})
    assert steps["escalate"].sub_orchestrations == frozenset({"child-orchestration", "audit"})
    assert steps["wait_for_decision"].uses_timers
    assert not steps["submit"].uses_timers


class ParentSteps(Base):
    @step(start=True)
    async def begin(self, value: int) -> Any:
        return self.goto(self.finish, value)

    @step
    async def finish(self, value: int) -> int:
        return value


class ChildSteps(ParentSteps):
    @step
    async def finish(self, value: int) -> int:
        return value + 1


def test_inherited_steps_are_kept() -> None:
    machine = compile_class(ChildSteps)

    assert list(machine.steps) == ["begin", "finish"]
    assert machine.steps["finish"].function is ChildSteps.finish
    assert machine.start == "begin"


class SelfChild(Base):
    async def run(self, depth: int) -> Any:
        await self.call_sub_orchestration(SelfChild, depth - 1)
        return await self.call_sub_orchestration(type(self), depth - 1)


def test_sub_orchestration_of_own_class_uses_own_name() -> None:
    machine = compile_class(SelfChild)

    assert machine.steps["run"].sub_orchestrations == frozenset({"SelfChild"})


class UnresolvedAnnotation(Base):
    async def run(self, value: "NotDefinedAnywhere") -> None:  # type: ignore[name-defined]  # noqa: F821
        ...


def test_unresolved_annotation_warns_and_uses_any() -> None:
    with pytest.warns(DurableDefinitionWarning, match="UnresolvedAnnotation.run: the parameter annotation"):
        machine = compile_class(UnresolvedAnnotation)

    assert machine.steps["run"].param_type is Any


class AnnotationNamesOwnClass(Base):
    async def run(self, value: AnnotationNamesOwnClass) -> None: ...


def test_annotation_may_name_own_class() -> None:
    machine = compile_class(AnnotationNamesOwnClass)

    assert machine.steps["run"].param_type is AnnotationNamesOwnClass


# ---------------------------------------------------------------------------- step shape


class NotAsync(Base):
    @step(start=True)
    async def first(self, value: int) -> Any:
        return self.goto(self.second, value)

    @step
    def second(self, value: int) -> int:  # line: second
        return value


def test_step_not_async() -> None:
    problem = only_problem(problems_of(NotAsync), "step-not-async", "second")

    assert problem.line == line_of(NotAsync, "second")
    assert problem.file == __file__
    assert "async def second(self, value)" in problem.fix


class AsyncGeneratorStep(Base):
    async def run(self, value: int) -> Any:  # line: run
        yield value


def test_async_generator_step_is_not_async() -> None:
    problem = only_problem(problems_of(AsyncGeneratorStep), "step-not-async", "run")

    assert "async generator" in problem.message
    assert "return its result instead of yielding" in problem.fix
    assert problem.line == line_of(AsyncGeneratorStep, "run")


class WrongParameters(Base):
    @step(start=True)
    async def none(self) -> None:  # line: none
        ...

    @step
    @allow_nondeterminism("a second decorator moves the first line up")
    async def two(self, a: int, b: int) -> None:  # line: two
        ...

    @step
    async def keyword_only(self, *, value: int) -> None:  # line: keyword_only
        ...

    @step
    async def just_right(self, value: int) -> None: ...


def test_step_parameters() -> None:
    problems = problems_of(WrongParameters)

    for method in ("none", "two", "keyword_only"):
        problem = only_problem(problems, "step-parameters", method)
        assert problem.line == line_of(WrongParameters, method), method
        assert f"async def {method}(self, value: T)" in problem.fix
    assert "takes (self, a: 'int', b: 'int')" in only_problem(problems, "step-parameters", "two").message
    assert not [problem for problem in problems if problem.method == "just_right"]


class StaticStep(Base):
    @step(start=True)
    @staticmethod
    async def begin(value: int) -> None: ...


def test_static_method_step_rejected() -> None:
    problem = only_problem(problems_of(StaticStep), "step-not-function", "begin")

    assert "staticmethod" in problem.message


class NoStart(Base):  # line: class
    @step
    async def one(self, value: int) -> None: ...

    @step
    async def two(self, value: int) -> None: ...


def test_no_start_step() -> None:
    problem = only_problem(problems_of(NoStart), "no-start-step", None)

    assert problem.line == line_of(NoStart, "class")
    assert "one, two" in problem.message
    assert "@step(start=True)" in problem.fix


class SeveralStarts(Base):
    @step(start=True)
    async def one(self, value: int) -> None: ...

    @step(start=True)
    async def two(self, value: int) -> None:  # line: two
        ...

    @step(start=True)
    async def three(self, value: int) -> None:  # line: three
        ...


def test_several_start_steps() -> None:
    problems = problems_of(SeveralStarts)

    assert [problem.method for problem in problems if problem.rule == "several-start-steps"] == ["two", "three"]
    assert only_problem(problems, "several-start-steps", "two").line == line_of(SeveralStarts, "two")
    assert only_problem(problems, "several-start-steps", "three").line == line_of(SeveralStarts, "three")
    assert "keep start=True on one" in problems[0].fix


class SingleUnmarkedStep(Base):
    @step
    async def only(self, value: int) -> None: ...


def test_single_step_is_the_start() -> None:
    machine = compile_class(SingleUnmarkedStep)

    assert machine.start == "only"
    assert machine.steps["only"].is_start


class NoSteps(Base):  # line: class
    async def helper(self, value: int) -> None: ...


def test_class_without_steps() -> None:
    problem = only_problem(problems_of(NoSteps), "no-steps", None)

    assert problem.line == line_of(NoSteps, "class")
    assert "async def run(self, value)" in problem.fix


# ---------------------------------------------------------------------------- goto


class BadGotos(Base):
    @step(start=True)
    async def begin(self, value: int) -> Any:
        if value:
            return self.goto(self.not_a_step, value)  # line: helper-target
        return self.goto(self.missing, value)  # type: ignore[attr-defined]  # line: missing-target

    @step
    async def end(self, value: int) -> Any:
        return self.goto(self.begin, value)

    def not_a_step(self, value: int) -> None: ...


def test_goto_unknown_step() -> None:
    problems = [problem for problem in problems_of(BadGotos) if problem.rule == "goto-unknown-step"]

    assert [(problem.method, problem.line) for problem in problems] == [
        ("begin", line_of(BadGotos, "helper-target")),
        ("begin", line_of(BadGotos, "missing-target")),
    ]
    assert "`not_a_step`, which is a method but not a step of BadGotos" in problems[0].message
    assert "`missing`, which is not a step of BadGotos" in problems[1].message
    assert problems[1].fix == "mark `missing` with @step, or go to one of the steps: begin, end"


# ---------------------------------------------------------------------------- replay hazards


class WallClockAlias(Base):
    async def run(self, value: int) -> float:
        return t.time()  # line: hazard


class DatetimeAlias(Base):
    async def run(self, value: int) -> Any:
        return dt.now()  # line: hazard


class DateToday(Base):
    async def run(self, value: int) -> Any:
        return date.today()  # line: hazard


class Monotonic(Base):
    async def run(self, value: int) -> Any:
        return t.monotonic()  # line: hazard


class LocalTime(Base):
    async def run(self, value: int) -> Any:
        return t.localtime()  # line: hazard


class SleepImported(Base):
    async def run(self, value: int) -> None:
        sleep(1)  # line: hazard


class AsyncioSleep(Base):
    async def run(self, value: int) -> None:
        await asyncio.sleep(1)  # line: hazard


class RandomAlias(Base):
    async def run(self, value: int) -> int:
        return r(1, 6)  # line: hazard


class Uuid4(Base):
    async def run(self, value: int) -> Any:
        return uuid.uuid4()  # line: hazard


class Urandom(Base):
    async def run(self, value: int) -> Any:
        return os.urandom(8)  # line: hazard


class SecretsToken(Base):
    async def run(self, value: int) -> Any:
        return secrets.token_hex(8)  # line: hazard


class ThreadStart(Base):
    async def run(self, value: int) -> None:
        threading.Thread(target=print).start()  # line: hazard


class Gather(Base):
    async def run(self, value: int) -> Any:
        return await asyncio.gather()  # line: hazard


class CreateTask(Base):
    async def run(self, value: int) -> Any:
        return asyncio.create_task(self.other())  # line: hazard

    async def other(self) -> None: ...


class RunInExecutor(Base):
    async def run(self, value: int) -> Any:
        loop = object()
        return await loop.run_in_executor(None, print)  # type: ignore[attr-defined]  # line: hazard


class OpenFile(Base):
    async def run(self, value: int) -> Any:
        with open("data.txt") as handle:  # line: hazard
            return handle.read()


class PathRead(Base):
    async def run(self, value: int) -> Any:
        return Path("data.txt").read_text()  # line: hazard


class Subprocess(Base):
    async def run(self, value: int) -> Any:
        return subprocess.run(["true"])  # line: hazard


class Socket(Base):
    async def run(self, value: int) -> Any:
        return socket.socket()  # line: hazard


class Urlopen(Base):
    async def run(self, value: int) -> Any:
        return urllib.request.urlopen("http://example.com")  # line: hazard


class EnvironIndex(Base):
    async def run(self, value: int) -> Any:
        return os.environ["HOME"]  # line: hazard


class EnvironGet(Base):
    async def run(self, value: int) -> Any:
        return os.environ.get("HOME")  # line: hazard


class Getenv(Base):
    async def run(self, value: int) -> Any:
        return os.getenv("HOME")  # line: hazard


class LocalImport(Base):
    async def run(self, value: int) -> Any:
        import time as clock

        return clock.time()  # line: hazard


class LocalFromImport(Base):
    async def run(self, value: int) -> Any:
        from random import choice as pick

        return pick([1, 2])  # line: hazard


class NestedFunction(Base):
    async def run(self, value: int) -> Any:
        def later() -> float:
            return t.perf_counter()  # line: hazard

        return later()


HAZARDS = [
    (WallClockAlias, "wall-clock", "`t.time(...)` calls time.time", "self.now()"),
    (DatetimeAlias, "wall-clock", "`dt.now(...)` calls datetime.datetime.now", "self.now()"),
    (DateToday, "wall-clock", "calls datetime.date.today", "self.now()"),
    (Monotonic, "wall-clock", "calls time.monotonic", "self.now()"),
    (LocalTime, "wall-clock", "calls time.localtime", "self.now()"),
    (SleepImported, "sleep", "`sleep(...)` calls time.sleep", "self.create_timer"),
    (AsyncioSleep, "sleep", "calls asyncio.tasks.sleep", "self.create_timer"),
    (RandomAlias, "randomness", "`r(...)` calls random.randint", "activity"),
    (Uuid4, "randomness", "calls uuid.uuid4", "self.new_uuid()"),
    (Urandom, "randomness", "calls os.urandom", "activity"),
    (SecretsToken, "randomness", "calls secrets.token_hex", "activity"),
    (ThreadStart, "threads", "calls threading.Thread", "durable.when_all"),
    (Gather, "threads", "calls asyncio.tasks.gather", "durable.when_all"),
    (CreateTask, "threads", "calls asyncio.tasks.create_task", "durable.when_all"),
    (RunInExecutor, "threads", "`loop.run_in_executor(...)`", "activities"),
    (OpenFile, "io", "`open(...)` calls io.open", "self.call_activity"),
    (PathRead, "io", "calls pathlib.Path.read_text", "self.call_activity"),
    (Subprocess, "io", "calls subprocess.run", "self.call_activity"),
    (Socket, "io", "calls socket.socket", "self.call_activity"),
    (Urlopen, "io", "calls urllib.request.urlopen", "self.call_activity"),
    (EnvironIndex, "environment", "`os.environ`", "orchestration input"),
    (EnvironGet, "environment", "`os.environ`", "orchestration input"),
    (Getenv, "environment", "calls os.getenv", "orchestration input"),
    (LocalImport, "wall-clock", "`clock.time(...)` calls time.time", "self.now()"),
    (LocalFromImport, "randomness", "`pick(...)` calls random.choice", "activity"),
    (NestedFunction, "wall-clock", "calls time.perf_counter", "self.now()"),
]


@pytest.mark.parametrize(
    ("cls", "rule", "message", "fix"), HAZARDS, ids=[case[0].__name__ for case in HAZARDS]
)
def test_replay_hazard(cls: type, rule: str, message: str, fix: str) -> None:
    problems = problems_of(cls)

    assert len(problems) == 1, problems
    problem = only_problem(problems, rule, "run")
    assert problem.line == line_of(cls, "hazard")
    assert problem.file == __file__
    assert message in problem.message
    assert fix in problem.fix


def test_closure_alias_caught() -> None:
    import random as dice

    class ClosureAlias(Base):
        async def run(self, value: int) -> float:
            return dice.random()  # line: hazard

    problem = only_problem(problems_of(ClosureAlias), "randomness", "run")

    assert problem.line == line_of(ClosureAlias, "hazard")
    assert "`dice.random(...)` calls random.random" in problem.message


class ShadowedNames(Base):
    async def run(self, random: Any) -> Any:
        t = self.now()
        open = print
        open(t)
        return random.choice([1, 2]), dt(2024, 1, 1), timedelta(seconds=1)


def test_shadowed_names_not_reported() -> None:
    machine = compile_class(ShadowedNames)

    assert machine.start == "run"


class ClockWithArgument(Base):
    async def run(self, value: int) -> Any:
        return t.localtime(0), dt.fromtimestamp(0), uuid.uuid5(uuid.NAMESPACE_DNS, "a")


def test_deterministic_calls_not_reported() -> None:
    assert compile_class(ClockWithArgument).start == "run"


class SeveralProblems(Base):
    @step(start=True)
    async def begin(self, value: int) -> Any:
        stamp = t.time()  # line: clock
        return self.goto(self.nowhere, stamp)  # type: ignore[attr-defined]  # line: goto

    @step
    def end(self, value: int) -> int:  # line: end
        return value


def test_several_problems_in_one_error() -> None:
    with pytest.raises(OrchestrationDefinitionError) as caught:
        compile_class(SeveralProblems)
    problems = caught.value.problems

    found = {(problem.rule, problem.method, problem.line) for problem in problems}
    assert found == {
        ("step-not-async", "end", line_of(SeveralProblems, "end")),
        ("wall-clock", "begin", line_of(SeveralProblems, "clock")),
        ("goto-unknown-step", "begin", line_of(SeveralProblems, "goto")),
    }
    text = str(caught.value)
    assert "SeveralProblems has 3 problems" in text
    assert f"{__file__}:{line_of(SeveralProblems, 'clock')}: SeveralProblems.begin: [wall-clock]" in text


# ---------------------------------------------------------------------------- helper methods


class HelperChain(Base):
    async def run(self, value: int) -> Any:
        return await self.first(value)

    async def first(self, value: int) -> Any:
        return self.second(value)

    def second(self, value: int) -> Any:
        return self.read_clock()

    @staticmethod
    def unused() -> float:
        return t.time()

    def read_clock(self) -> float:
        return t.time()  # line: hazard


def test_helpers_followed_transitively() -> None:
    problems = problems_of(HelperChain)

    assert len(problems) == 1, problems
    problem = only_problem(problems, "wall-clock", "read_clock")
    assert problem.line == line_of(HelperChain, "hazard")
    assert "reached from step `run`" in problem.message


class PropertyHelper(Base):
    async def run(self, value: int) -> Any:
        return self.clock.isoformat()

    @property
    def clock(self) -> Any:
        return dt.utcnow()  # line: hazard


def test_property_helper_followed() -> None:
    problem = only_problem(problems_of(PropertyHelper), "wall-clock", "clock")

    assert problem.line == line_of(PropertyHelper, "hazard")


class HelperCycle(Base):
    async def run(self, value: int) -> Any:
        return self.ping(value)

    def ping(self, value: int) -> Any:
        return self.pong(value - 1) if value else None

    def pong(self, value: int) -> Any:
        sleep(value)  # line: hazard
        return self.ping(value)


@pytest.mark.timeout(10)
def test_helper_cycle_terminates() -> None:
    problem = only_problem(problems_of(HelperCycle), "sleep", "pong")

    assert problem.line == line_of(HelperCycle, "hazard")


class HelperGoto(Base):
    @step(start=True)
    async def begin(self, value: int) -> Any:
        return self.next_step(value)

    @step
    async def end(self, value: int) -> Any:
        return value

    def next_step(self, value: int) -> Any:
        return self.goto(self.end, value, continue_as_new=True)  # line: goto


def test_helper_goto_becomes_step_edge() -> None:
    machine = compile_class(HelperGoto)

    assert machine.edges == (Edge("begin", "end", True, line_of(HelperGoto, "goto")),)


# ---------------------------------------------------------------------------- opting out


class OptOutBelowStep(Base):
    @step(start=True)
    @allow_nondeterminism("measures local latency for a log line only")
    async def begin(self, value: int) -> Any:
        t.time()
        return self.goto(self.end, value)

    @allow_nondeterminism("reads a file baked into the image")
    @step
    async def end(self, value: int) -> Any:
        return Path("/etc/hostname").read_text()


def test_opt_out_in_either_order() -> None:
    machine = compile_class(OptOutBelowStep)

    assert list(machine.steps) == ["begin", "end"]
    assert machine.edges == (Edge("begin", "end", False, machine.edges[0].line),)


class OptOutWithoutReason(Base):
    @allow_nondeterminism("  ")
    async def run(self, value: int) -> Any:  # line: run
        return t.time()  # line: hazard


def test_opt_out_requires_reason() -> None:
    problems = problems_of(OptOutWithoutReason)

    reason = only_problem(problems, "opt-out-reason", "run")
    assert reason.line == line_of(OptOutWithoutReason, "run")
    assert "@allow_nondeterminism(" in reason.fix
    # Without a reason the exemption does not apply.
    assert only_problem(problems, "wall-clock", "run").line == line_of(OptOutWithoutReason, "hazard")


def test_opt_out_reason_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="reason as a string"):

        @allow_nondeterminism  # type: ignore[arg-type]
        async def run(self: Any, value: int) -> None: ...


class OptOutDoesNotCoverHelpers(Base):
    @allow_nondeterminism("the step itself is fine")
    async def run(self, value: int) -> Any:
        return self.helper()

    def helper(self) -> Any:
        return uuid.uuid4()  # line: hazard


def test_opt_out_does_not_cover_helpers() -> None:
    problem = only_problem(problems_of(OptOutDoesNotCoverHelpers), "randomness", "helper")

    assert problem.line == line_of(OptOutDoesNotCoverHelpers, "hazard")


# ---------------------------------------------------------------------------- missing source


EXEC_SOURCE = """
import time

class FromExec(Base):
    @step(start=True)
    async def begin(self, value: int):
        time.time()
        return self.goto(self.end, value)

    @step
    async def end(self, value: int):
        return value
"""


def test_class_without_source_warns() -> None:
    namespace: dict[str, Any] = {"Base": Base, "step": step}
    exec(compile(EXEC_SOURCE, "<generated>", "exec"), namespace)

    with pytest.warns(DurableDefinitionWarning, match="FromExec.begin, FromExec.end is unavailable"):
        machine = compile_class(namespace["FromExec"])

    assert list(machine.steps) == ["begin", "end"]
    assert machine.start == "begin"
    assert machine.edges == ()


def test_class_with_source_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile_class(Expense)
