"""The class compiler: turns an orchestration class into a checked `StateMachine`.

`compile_orchestration` reads the class and changes nothing. It finds the steps,
checks their shape, reads each step's syntax tree (and those of the helper
methods and properties it uses through `self`) and reports every problem at
once in one `OrchestrationDefinitionError`.

Replay safety is checked statically. A step body runs again on every replay,
so a call whose result differs between runs (a clock, randomness, I/O, the
environment, threads, sleeping) makes the code disagree with its own history.
Names in a call are resolved the way Python would resolve them when the method
runs: function-local imports, then the closure, then the module globals, then
builtins. The resolved object is classified by its defining module and
qualified name (`os.environ` by identity), never by the text the user wrote, so
`import time as t; t.time()` and `from random import randint as r; r(1, 6)` are
both found.

NOTE: the check is a best effort. A hazard reached through a local variable
(`p = Path(name); p.read_text()`), an instance attribute or a function outside
the class is not seen.
"""

from __future__ import annotations

import ast
import inspect
import sys
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload


from durable._machine import STEP_MARKER, Edge, StateMachine, StepOptions, StepSpec
from durable._scan import _Facts, _FunctionNode, _FunctionScanner, _Goto, _parse_file, _Scope, _source_of
from durable.errors import DefinitionProblem, OrchestrationDefinitionError

__all__ = [
    "compile_orchestration",
    "step",
    "allow_nondeterminism",
    "DurableDefinitionWarning",
    "OPT_OUT_MARKER",
]

F = TypeVar("F", bound=Callable[..., Any])

# Attribute that `@allow_nondeterminism(reason)` sets on a function; its value is the reason.
OPT_OUT_MARKER = "__durable_allow_nondeterminism__"

# Classes from these modules supply the framework's own methods, never steps or helpers.
# A framework class may also set `__durable_framework__ = True` in its own body.
_FRAMEWORK_MODULES = frozenset({"typing", "durable._orchestration"})



class DurableDefinitionWarning(UserWarning):
    """Issued at class creation when a check had to be skipped, for example for lack of source."""


# ---------------------------------------------------------------------------- decorators


@overload
def step(fn: F, /) -> F: ...
@overload
def step(*, start: bool = False) -> Callable[[F], F]: ...


def step(fn: F | None = None, /, *, start: bool = False) -> F | Callable[[F], F]:
    """Mark an `async def` method as a step of a multi-step orchestration.

    Use `@step` for an ordinary step and `@step(start=True)` for the step a new
    instance begins with. The function itself is returned unchanged, so its
    signature stays visible to type checkers.
    """

    def mark(function: F) -> F:
        if not callable(function):
            raise TypeError(f"@step expects a function, got {function!r}")
        setattr(function, STEP_MARKER, StepOptions(start=bool(start)))
        return function

    if fn is None:
        return mark
    return mark(fn)


def allow_nondeterminism(reason: str) -> Callable[[F], F]:
    """Exempt one step or helper method from the replay-safety checks.

    The reason is required and should state why the flagged calls are safe on
    replay. The class compiler reports an empty reason as a problem. The
    exemption covers only the decorated method's own body, not the helpers it
    calls, and the step-shape and `goto` checks still apply. It works above or
    below `@step`.
    """
    if not isinstance(reason, str):
        raise TypeError(
            "allow_nondeterminism takes the reason as a string: "
            f'@allow_nondeterminism("why this is replay-safe"), got {reason!r}'
        )

    def mark(function: F) -> F:
        setattr(function, OPT_OUT_MARKER, reason)
        return function

    return mark


# ---------------------------------------------------------------------------- the class compiler


def _is_framework_class(klass: type) -> bool:
    if klass is object or klass.__module__ in _FRAMEWORK_MODULES:
        return True
    return bool(klass.__dict__.get("__durable_framework__"))


def _class_namespace(cls: type) -> dict[str, Any]:
    """Return the attributes that the class and its user-defined bases define, subclasses winning."""
    namespace: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not _is_framework_class(klass):
            namespace.update(klass.__dict__)
    return namespace


def _unwrap_method(value: object) -> types.FunctionType | None:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    return value if isinstance(value, types.FunctionType) else None


def _step_options(value: object) -> StepOptions | None:
    # `@step` may sit inside `@staticmethod`, which does not copy the marker outwards.
    for candidate in (value, _unwrap_method(value)):
        try:
            options = inspect.getattr_static(candidate, STEP_MARKER, None)
        except Exception:  # noqa: BLE001 - an attribute that cannot be read is no marker
            continue
        if isinstance(options, StepOptions):
            return options
    return None


def _first_parameter(node: _FunctionNode) -> str:
    arguments = [*node.args.posonlyargs, *node.args.args]
    return arguments[0].arg if arguments else "self"


class _ClassCompiler:
    """State and checks for compiling one class, used only by `compile_orchestration`."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.class_name = cls.__name__
        self.namespace = _class_namespace(cls)
        self.problems: list[DefinitionProblem] = []
        self.facts: dict[types.FunctionType, _Facts | None] = {}
        self.without_source: list[types.FunctionType] = []
        self.step_names: set[str] = set()

    # -------------------------------------------------------------- problems

    def problem(
        self,
        method: str | None,
        fn: Callable[..., Any] | None,
        line: int | None,
        rule: str,
        message: str,
        fix: str,
    ) -> None:
        code = getattr(fn, "__code__", None)
        file = code.co_filename if isinstance(code, types.CodeType) else self.class_file()
        found = DefinitionProblem(self.class_name, method, file, line, rule, message, fix)
        if found not in self.problems:
            self.problems.append(found)

    def class_file(self) -> str | None:
        module = sys.modules.get(self.cls.__module__)
        file = getattr(module, "__file__", None)
        return file if isinstance(file, str) else None

    def class_line(self) -> int | None:
        first_line = getattr(self.cls, "__firstlineno__", None)  # Python 3.13 and later
        if isinstance(first_line, int):
            return first_line
        file = self.class_file()
        module = sys.modules.get(self.cls.__module__)
        parsed = _parse_file(file, vars(module)) if file and module else None
        if parsed is None:
            return None
        candidates = [
            node for node in ast.walk(parsed.tree) if isinstance(node, ast.ClassDef) and node.name == self.class_name
        ]
        method_lines = [
            fn.__code__.co_firstlineno
            for fn in map(_unwrap_method, self.cls.__dict__.values())
            if fn is not None and fn.__code__.co_filename == file
        ]
        containing = [
            node
            for node in candidates
            if any(node.lineno <= line <= (node.end_lineno or node.lineno) for line in method_lines)
        ]
        if containing:
            return max(node.lineno for node in containing)
        return candidates[0].lineno if len(candidates) == 1 else None

    @staticmethod
    def def_line(fn: types.FunctionType) -> int:
        source = _source_of(fn)
        return source.lineno if source is not None else fn.__code__.co_firstlineno

    # -------------------------------------------------------------- steps

    def find_steps(self) -> dict[str, tuple[Any, StepOptions]]:
        marked: dict[str, tuple[Any, StepOptions]] = {}
        for name, value in self.namespace.items():
            options = _step_options(value)
            if options is not None:
                marked[name] = (value, options)
        if marked:
            return marked
        run = self.namespace.get("run")
        if run is not None:
            return {"run": (run, StepOptions(start=True))}
        self.problem(
            None,
            None,
            self.class_line(),
            "no-steps",
            "the class has no step: no method is marked @step and it defines no `async def run(self, value)`",
            "define `async def run(self, value)` for a one-step orchestration, "
            "or mark methods with @step and one of them with @step(start=True)",
        )
        return {}

    def check_step(self, name: str, value: Any) -> types.FunctionType | None:
        fn = value if isinstance(value, types.FunctionType) else None
        if fn is None:
            inner = _unwrap_method(value)
            self.problem(
                name,
                inner,
                self.def_line(inner) if inner else self.class_line(),
                "step-not-function",
                f"step `{name}` is a {type(value).__name__}, not a plain method",
                f"define it as `async def {name}(self, value)` without staticmethod, classmethod or property",
            )
            return None
        if not inspect.iscoroutinefunction(fn):
            if inspect.isasyncgenfunction(fn):
                kind, fix = "an async generator", f"make `{name}` return its result instead of yielding values"
            else:
                kind, fix = "defined with `def`", f"define it as `async def {name}(self, value)`"
            self.problem(
                name,
                fn,
                self.def_line(fn),
                "step-not-async",
                f"step `{name}` is {kind}, but the runtime drives each step as a coroutine",
                fix,
            )
        parameters = list(inspect.signature(fn).parameters.values())
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if len(parameters) != 2 or any(parameter.kind not in positional for parameter in parameters):
            signature_text = ", ".join(str(parameter) for parameter in parameters)
            self.problem(
                name,
                fn,
                self.def_line(fn),
                "step-parameters",
                f"step `{name}` takes ({signature_text}), but a step takes exactly one value besides self",
                f"declare it as `async def {name}(self, value: T)`. Pack several values into one "
                "dataclass or attrs class, or take `value: None` when the step needs no input",
            )
        return fn

    def choose_start(self, steps: dict[str, tuple[Any, StepOptions]]) -> str | None:
        if len(steps) == 1:
            return next(iter(steps))
        starts = [name for name, (_, options) in steps.items() if options.start]
        if not starts:
            self.problem(
                None,
                None,
                self.class_line(),
                "no-start-step",
                f"none of the steps {', '.join(steps)} is marked start=True",
                "mark the step that a new instance begins with as @step(start=True)",
            )
            return None
        for extra in starts[1:]:
            fn = _unwrap_method(steps[extra][0])
            self.problem(
                extra,
                fn,
                self.def_line(fn) if fn else None,
                "several-start-steps",
                f"steps {', '.join(starts)} are all marked start=True, but a class has one start step",
                f"keep start=True on one of them and write a plain @step on `{extra}`",
            )
        return starts[0]

    def param_type(self, fn: types.FunctionType) -> Any:
        parameters = list(inspect.signature(fn).parameters)
        if len(parameters) < 2:
            return Any
        try:
            hints = typing.get_type_hints(fn, localns={self.class_name: self.cls})
        except Exception as exc:  # noqa: BLE001 - any unresolvable annotation falls back to Any
            code = fn.__code__
            warnings.warn_explicit(
                f"{self.class_name}.{fn.__name__}: the parameter annotation could not be resolved ({exc}), "
                "so its input is decoded as plain JSON values",
                DurableDefinitionWarning,
                code.co_filename,
                code.co_firstlineno,
                module=self.cls.__module__,
            )
            return Any
        return hints.get(parameters[1], Any)

    # -------------------------------------------------------------- bodies

    def scan(self, name: str, fn: types.FunctionType, reached_from: str | None) -> _Facts | None:
        """Return the facts of one method's body, scanning it on first use; None without source."""
        if fn in self.facts:
            return self.facts[fn]
        source = _source_of(fn)
        if source is None:
            self.facts[fn] = None
            self.without_source.append(fn)
            return None

        node = source
        reason = getattr(fn, OPT_OUT_MARKER, None)
        exempt = isinstance(reason, str) and bool(reason.strip())
        if isinstance(reason, str) and not exempt:
            self.problem(
                name,
                fn,
                node.lineno,
                "opt-out-reason",
                f"@allow_nondeterminism on `{name}` gives no reason, so its body is still checked",
                "state why the flagged calls are replay-safe, "
                'for example @allow_nondeterminism("reads a file baked into the image")',
            )

        scope = _Scope(fn, node, self.class_name)
        facts = _FunctionScanner(scope, _first_parameter(node), check_hazards=not exempt).scan(node)
        self.facts[fn] = facts

        via = f" (reached from step `{reached_from}`)" if reached_from and reached_from != name else ""
        for finding in facts.findings:
            self.problem(name, fn, finding.line, finding.hazard.rule, finding.message + via, finding.hazard.fix)
        for goto in facts.gotos:
            if goto.target not in self.step_names:
                self.report_unknown_goto(name, fn, goto)
        return facts

    def report_unknown_goto(self, name: str, fn: types.FunctionType, goto: _Goto) -> None:
        kind = "a method but not a step" if _unwrap_method(self.namespace.get(goto.target)) else "not a step"
        known = ", ".join(sorted(self.step_names)) or "none"
        self.problem(
            name,
            fn,
            goto.line,
            "goto-unknown-step",
            f"`{goto.text}` goes to `{goto.target}`, which is {kind} of {self.class_name}",
            f"mark `{goto.target}` with @step, or go to one of the steps: {known}",
        )

    def helper(self, name: str) -> types.FunctionType | None:
        if name in self.step_names:
            return None
        value = self.namespace.get(name)
        if isinstance(value, property):
            value = value.fget
        return _unwrap_method(value)

    def reachable(self, step_name: str, fn: types.FunctionType) -> Iterator[_Facts]:
        """Yield the facts of a step and of every helper method it reaches through `self`."""
        seen: set[types.FunctionType] = set()
        pending: list[tuple[str, types.FunctionType]] = [(step_name, fn)]
        while pending:
            name, function = pending.pop()
            if function in seen:
                continue
            seen.add(function)
            facts = self.scan(name, function, step_name)
            if facts is None:
                continue
            yield facts
            for referenced in facts.self_references:
                helper = self.helper(referenced)
                if helper is not None and helper not in seen:
                    pending.append((referenced, helper))

    def event_names(self, attributes: set[str]) -> set[str]:
        names: set[str] = set()
        for attribute in attributes:
            value = self.namespace.get(attribute)
            name = getattr(value, "name", None)
            if getattr(value, "__durable_event__", False) is True and isinstance(name, str):
                names.add(name)
        return names

    def warn_without_source(self) -> None:
        if not self.without_source:
            return
        first = self.without_source[0].__code__
        methods = ", ".join(f"{self.class_name}.{fn.__name__}" for fn in self.without_source)
        warnings.warn_explicit(
            f"the source code of {methods} is unavailable, as for code run through exec(), "
            "so the replay-safety and goto checks were skipped for these methods",
            DurableDefinitionWarning,
            first.co_filename,
            first.co_firstlineno,
            module=self.cls.__module__,
        )


def compile_orchestration(
    cls: type, *, name: str, version: str | None, input_type: Any, output_type: Any
) -> StateMachine:
    """Check an orchestration class and compile it into its `StateMachine`.

    Every problem found is collected and raised together as one
    `OrchestrationDefinitionError`. A method whose source cannot be read is
    compiled without the syntax-tree checks, with a `DurableDefinitionWarning`.
    """
    compiler = _ClassCompiler(cls)
    found = compiler.find_steps()
    functions: dict[str, types.FunctionType] = {}
    for step_name, (value, _) in found.items():
        fn = compiler.check_step(step_name, value)
        if fn is not None:
            functions[step_name] = fn
    compiler.step_names = set(found)
    start = compiler.choose_start(found) if found else None

    steps: dict[str, StepSpec] = {}
    edges: list[Edge] = []
    for step_name, fn in functions.items():
        activities: set[str] = set()
        children: set[str] = set()
        events: set[str] = set()
        uses_timers = False
        for facts in compiler.reachable(step_name, fn):
            activities |= facts.activities
            children |= facts.sub_orchestrations
            events |= facts.events | compiler.event_names(facts.event_attributes)
            uses_timers = uses_timers or facts.uses_timers
            for goto in facts.gotos:
                edge = Edge(step_name, goto.target, goto.continue_as_new, goto.line)
                if goto.target in compiler.step_names and edge not in edges:
                    edges.append(edge)
        steps[step_name] = StepSpec(
            name=step_name,
            function=fn,
            param_type=compiler.param_type(fn),
            is_start=step_name == start,
            file=fn.__code__.co_filename,
            line=fn.__code__.co_firstlineno,
            activities=frozenset(activities),
            sub_orchestrations=frozenset(children),
            events=frozenset(events),
            uses_timers=uses_timers,
        )

    compiler.warn_without_source()
    if compiler.problems or start is None:
        raise OrchestrationDefinitionError(compiler.class_name, compiler.problems)
    return StateMachine(
        class_name=compiler.class_name,
        name=name,
        version=version,
        input_type=input_type,
        output_type=output_type,
        steps=steps,
        start=start,
        edges=tuple(edges),
        events=frozenset(event for spec in steps.values() for event in spec.events),
    )
