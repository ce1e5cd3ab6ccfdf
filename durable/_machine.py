"""The compiled form of an orchestration class: its steps and transitions.

The class compiler builds a `StateMachine` once, when the class is created. The
replay runtime runs it, the CLI draws it, and the client uses it to name the
step an instance is in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["StepSpec", "Edge", "StateMachine", "STEP_MARKER", "StepOptions"]

# Attribute that `@step` sets on a function; its value is a `StepOptions`.
STEP_MARKER = "__durable_step__"


@attrs.frozen
class StepOptions:
    """Options given to `@step(...)`."""

    start: bool = False


@attrs.frozen
class StepSpec:
    """One step: an `async def` method taking one value besides `self`."""

    name: str
    function: Callable[..., Any]
    param_type: Any
    is_start: bool
    file: str | None
    line: int | None
    # Names gathered from the step body (and the helper methods it calls).
    activities: frozenset[str] = frozenset()
    sub_orchestrations: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    uses_timers: bool = False


@attrs.frozen
class Edge:
    """A `goto` from one step to another, found in the source."""

    source: str
    target: str
    continue_as_new: bool
    line: int | None = None


@attrs.frozen
class StateMachine:
    """Steps, the start step and the edges of one orchestration class."""

    class_name: str
    name: str
    version: str | None
    input_type: Any
    output_type: Any
    steps: dict[str, StepSpec]
    start: str
    edges: tuple[Edge, ...] = ()
    events: frozenset[str] = frozenset()

    @property
    def is_single_step(self) -> bool:
        """True for a class whose whole machine is one `run` method."""
        return len(self.steps) == 1

    def step(self, name: str) -> StepSpec:
        """Return the step called `name`, or raise KeyError naming the known steps."""
        try:
            return self.steps[name]
        except KeyError:
            known = ", ".join(sorted(self.steps))
            raise KeyError(f"{self.class_name} has no step {name!r}; its steps are: {known}") from None
