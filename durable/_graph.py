"""Drawing a compiled orchestration as a Mermaid state diagram."""

from __future__ import annotations

import importlib
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from durable._machine import StateMachine
from durable._orchestration import Goto

__all__ = ["to_mermaid", "load_machine"]


def to_mermaid(machine: StateMachine) -> str:
    """Render steps, transitions, and the timers, events and activities each step waits on."""
    title = machine.name if machine.name == machine.class_name else f"{machine.name} ({machine.class_name})"
    lines = ["stateDiagram-v2", f"    %% {title}"]
    lines.append(f"    [*] --> {_node(machine.start)}")
    for name, spec in machine.steps.items():
        waits: list[str] = []
        waits.extend(f"activity {activity}" for activity in sorted(spec.activities))
        waits.extend(f"child {child}" for child in sorted(spec.sub_orchestrations))
        waits.extend(f"event {event}" for event in sorted(spec.events))
        if spec.uses_timers:
            waits.append("timer")
        for wait in waits:
            lines.append(f"    {_node(name)} : {_label(wait)}")
    for edge in machine.edges:
        label = " : continue as new" if edge.continue_as_new else ""
        lines.append(f"    {_node(edge.source)} --> {_node(edge.target)}{label}")
    for name, spec in machine.steps.items():
        if _may_finish(spec.function):
            lines.append(f"    {_node(name)} --> [*]")
    return "\n".join(lines) + "\n"


def load_machine(target: str) -> StateMachine:
    """Import `module:Class` and return its compiled machine, with a clear error when that fails."""
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"expected MODULE:Class (for example examples.chaining:Greetings), got {target!r}")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"module {module_name!r} has no attribute {class_name!r}")
    machine = getattr(cls, "__durable_machine__", None)
    if not isinstance(machine, StateMachine):
        raise ValueError(f"{target} is not a durable.Orchestration subclass")
    return machine


def _may_finish(function: Callable[..., Any]) -> bool:
    # A step annotated to return only `Goto` always moves on; any other return
    # type (or none) can end the orchestration with a result.
    try:
        returned = typing.get_type_hints(function).get("return")
    except Exception:  # noqa: BLE001 - unresolvable annotations: assume it can finish
        return True
    if returned is None:
        return True
    options = typing.get_args(returned) if typing.get_origin(returned) in (typing.Union, types.UnionType) else (returned,)
    return any(option is not Goto for option in options)


def _node(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _label(text: str) -> str:
    return text.replace(":", " ").replace(";", " ")
