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
import builtins
import inspect
import linecache
import sys
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

import attrs

from durable._activity import Activity
from durable._machine import STEP_MARKER, Edge, StateMachine, StepOptions, StepSpec
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

_FunctionNode = typing.Union[ast.FunctionDef, ast.AsyncFunctionDef]


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


# ---------------------------------------------------------------------------- replay hazards


@attrs.frozen
class _Hazard:
    """One kind of call that breaks replay: its rule id, why it breaks, and the fix."""

    rule: str
    effect: str
    fix: str


_WALL_CLOCK = _Hazard(
    "wall-clock",
    "reads the wall clock and returns a different time on every replay",
    "use self.now(), the replay-safe current time taken from the orchestration history",
)
_SLEEP = _Hazard(
    "sleep",
    "blocks the worker instead of waiting durably",
    "await self.create_timer(timedelta(...)) instead",
)
_RANDOM = _Hazard(
    "randomness",
    "returns a different value on every replay",
    "compute the value in an activity and call it with self.call_activity",
)
_UUID = _Hazard(
    "randomness",
    "returns a different UUID on every replay",
    "use self.new_uuid(), which returns the same UUID on every replay",
)
_THREADS = _Hazard(
    "threads",
    "starts concurrent work that the orchestration history does not record",
    "run the work in activities and combine their tasks with durable.when_all or durable.when_any",
)
_IO = _Hazard(
    "io",
    "performs file, process or network I/O, whose result can differ on replay",
    "move the I/O into an activity and call it with self.call_activity",
)
_ENVIRONMENT = _Hazard(
    "environment",
    "reads the process environment, and that can differ between workers and replays",
    "read the value in an activity, or pass it in the orchestration input",
)


@attrs.frozen
class _HazardRule:
    """Calls to objects defined in `module` (or its submodules) named one of `names` (any name if None)."""

    module: str
    names: frozenset[str] | None
    hazard: _Hazard
    # Only a call without arguments reads the clock (`time.localtime()`, not `time.localtime(0)`).
    only_without_arguments: bool = False


def _rule(module: str, names: str | None, hazard: _Hazard, *, only_without_arguments: bool = False) -> _HazardRule:
    chosen = frozenset(names.split()) if names is not None else None
    return _HazardRule(module, chosen, hazard, only_without_arguments)


_CALL_RULES: tuple[_HazardRule, ...] = (
    _rule("time", "time time_ns monotonic monotonic_ns perf_counter perf_counter_ns", _WALL_CLOCK),
    _rule("time", "process_time process_time_ns thread_time thread_time_ns", _WALL_CLOCK),
    _rule("time", "localtime gmtime ctime", _WALL_CLOCK, only_without_arguments=True),
    _rule("datetime", "now utcnow today", _WALL_CLOCK),
    _rule("time", "sleep", _SLEEP),
    _rule("asyncio", "sleep", _SLEEP),
    _rule("uuid", "uuid1 uuid4", _UUID),
    _rule("random", None, _RANDOM),
    _rule("secrets", None, _RANDOM),
    _rule("os", "urandom getrandom", _RANDOM),
    _rule("os", "getenv getenvb putenv unsetenv", _ENVIRONMENT),
    _rule(
        "asyncio",
        "create_task ensure_future gather run to_thread wait wait_for as_completed shield "
        "run_coroutine_threadsafe get_event_loop get_running_loop new_event_loop timeout",
        _THREADS,
    ),
    _rule("threading", None, _THREADS),
    _rule("concurrent.futures", None, _THREADS),
    _rule("multiprocessing", None, _THREADS),
    _rule("io", "open open_code", _IO),
    _rule("os", "open read write system popen listdir scandir walk remove unlink mkdir makedirs rmdir", _IO),
    _rule(
        "pathlib",
        "open read_text read_bytes write_text write_bytes touch unlink mkdir rmdir iterdir glob rglob "
        "exists is_file is_dir stat",
        _IO,
    ),
    _rule("os.path", "exists lexists isfile isdir islink getsize getmtime getatime getctime", _IO),
    _rule("shutil", None, _IO),
    _rule("tempfile", None, _IO),
    _rule("glob", None, _IO),
    _rule("socket", None, _IO),
    _rule("ssl", None, _IO),
    _rule("select", None, _IO),
    _rule("subprocess", None, _IO),
    _rule("urllib", None, _IO),
    _rule("http.client", None, _IO),
    _rule("requests", None, _IO),
    _rule("httpx", None, _IO),
    _rule("aiohttp", None, _IO),
)

# Methods that hand work to another thread whatever object they are called on
# (`loop.run_in_executor(...)`), matched by name because the receiver is unknown.
_THREAD_METHOD_NAMES = frozenset({"run_in_executor", "call_soon_threadsafe"})

# C modules and platform modules that define the public functions of a standard module.
_MODULE_ALIASES = {
    "posix": "os",
    "nt": "os",
    "_io": "io",
    "_socket": "socket",
    "_ssl": "ssl",
    "_random": "random",
    "_datetime": "datetime",
    "_pydatetime": "datetime",
    "_thread": "threading",
    "_asyncio": "asyncio",
    "_posixsubprocess": "subprocess",
    "posixpath": "os.path",
    "ntpath": "os.path",
    "genericpath": "os.path",
}


def _module_matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _environment_objects() -> tuple[object, ...]:
    import os

    return (os.environ, getattr(os, "environb", os.environ))


@attrs.frozen
class _Unloaded:
    """A name imported inside a method from a module that is not imported yet; only its path is known."""

    path: str


@attrs.frozen
class _InstanceOf:
    """The result of calling a class, such as `Path("a.txt")`; its attributes are looked up on the class."""

    cls: type


_UNKNOWN = object()


def _qualified_name(obj: object) -> str | None:
    """Return `module.QualName` for a module, class, function or bound method, or None."""
    if isinstance(obj, _Unloaded):
        return obj.path
    if isinstance(obj, types.ModuleType):
        return _MODULE_ALIASES.get(obj.__name__, obj.__name__)
    name = getattr(obj, "__name__", None)
    owner = getattr(obj, "__self__", None)
    if isinstance(name, str) and owner is not None and not isinstance(obj, type):
        if isinstance(owner, types.ModuleType):
            return f"{_qualified_name(owner)}.{name}"
        owner_type = owner if isinstance(owner, type) else type(owner)
        owner_name = _qualified_name(owner_type)
        return f"{owner_name}.{name}" if owner_name else None
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{_MODULE_ALIASES.get(module, module)}.{qualname}"
    return None


def _display_name(obj: object, qualified: str) -> str:
    """Prefer the public module-level name of a bound method, such as `random.randint`."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", None)
    if owner is None or isinstance(owner, (type, types.ModuleType)) or not isinstance(name, str):
        return qualified
    module_name = qualified.split(".", 1)[0]
    module = sys.modules.get(module_name)
    if module is not None and getattr(module, name, None) == obj:
        return f"{module_name}.{name}"
    return qualified


def _classify_call(obj: object, argument_count: int) -> tuple[_Hazard, str] | None:
    """Return the hazard of calling `obj` and the name to show for it, or None if it is safe."""
    if isinstance(obj, _InstanceOf):
        return None
    qualified = _qualified_name(obj)
    if qualified is None:
        return None
    if "." in qualified:
        module_part, last = qualified.rsplit(".", 1)
    else:
        module_part, last = qualified, ""
    for rule in _CALL_RULES:
        if not _module_matches(module_part, rule.module):
            continue
        if rule.names is not None and last not in rule.names:
            continue
        if rule.only_without_arguments and argument_count:
            continue
        return rule.hazard, _display_name(obj, qualified)
    return None


# ---------------------------------------------------------------------------- source lookup


@attrs.frozen
class _ParsedFile:
    lines: list[str]
    tree: ast.Module
    # (name, first line including decorators) -> function node
    functions: dict[tuple[str, int], _FunctionNode]


# Parsed source files by file name, so that each file is parsed once however many
# classes it defines. An entry is reused while linecache returns the same list of lines.
_parsed_files: dict[str, _ParsedFile] = {}
_MAX_PARSED_FILES = 64


def _parse_file(filename: str, module_globals: dict[str, Any] | None) -> _ParsedFile | None:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    cached = _parsed_files.get(filename)
    if cached is not None and cached.lines is lines:
        return cached
    try:
        tree = ast.parse("".join(lines), filename)
    except (SyntaxError, ValueError):
        return None
    functions: dict[tuple[str, int], _FunctionNode] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            functions[(node.name, first)] = node
    parsed = _ParsedFile(lines, tree, functions)
    _parsed_files.pop(filename, None)
    if len(_parsed_files) >= _MAX_PARSED_FILES:
        del _parsed_files[next(iter(_parsed_files))]
    _parsed_files[filename] = parsed
    return parsed


def _source_of(fn: types.FunctionType) -> _FunctionNode | None:
    """Return the syntax tree of a function, or None if its source is unavailable."""
    code = fn.__code__
    parsed = _parse_file(code.co_filename, fn.__globals__)
    if parsed is None:
        return None
    # co_firstlineno is the line of the first decorator, as in the keys of `functions`.
    return parsed.functions.get((code.co_name, code.co_firstlineno))


# ---------------------------------------------------------------------------- name resolution


class _Scope:
    """Name lookup for one function, in the order Python uses when the function runs."""

    def __init__(self, fn: types.FunctionType, node: _FunctionNode, own_class_name: str) -> None:
        self.globals = fn.__globals__
        self.own_class_name = own_class_name
        self.closure: dict[str, object] = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                self.closure[name] = cell.cell_contents
            except ValueError:  # an empty cell: the variable is not assigned yet
                continue
        self.imports: dict[str, object] = {}
        self.locals: set[str] = set()
        self._collect_bindings(node)

    def _collect_bindings(self, node: _FunctionNode) -> None:
        for child in ast.walk(node):
            if isinstance(child, ast.arg):
                self.locals.add(child.arg)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                self.locals.add(child.id)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child is not node:
                self.locals.add(child.name)
            elif isinstance(child, ast.ExceptHandler) and child.name:
                self.locals.add(child.name)
            elif isinstance(child, (ast.MatchAs, ast.MatchStar)) and child.name:
                self.locals.add(child.name)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    bound = alias.asname or alias.name.split(".", 1)[0]
                    target = alias.name if alias.asname else bound
                    self.imports[bound] = _import_module(target)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                module = _import_module(child.module)
                for alias in child.names:
                    self.imports[alias.asname or alias.name] = _attribute(module, alias.name)

    def resolve(self, expr: ast.expr) -> object:
        """Return the object `expr` names, or `_UNKNOWN`."""
        if isinstance(expr, ast.Name):
            return self._resolve_name(expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.resolve(expr.value)
            return _UNKNOWN if base is _UNKNOWN else _attribute(base, expr.attr)
        if isinstance(expr, ast.Call):
            callee = self.resolve(expr.func)
            return _InstanceOf(callee) if isinstance(callee, type) else _UNKNOWN
        return _UNKNOWN

    def _resolve_name(self, name: str) -> object:
        if name in self.imports:
            return self.imports[name]
        if name in self.locals:
            return _UNKNOWN
        if name in self.closure:
            return self.closure[name]
        if name in self.globals:
            return self.globals[name]
        module_builtins = self.globals.get("__builtins__", builtins)
        if isinstance(module_builtins, dict):
            return module_builtins.get(name, _UNKNOWN)
        return getattr(module_builtins, name, _UNKNOWN)


def _import_module(path: str) -> object:
    # Only modules that are already imported are used: compiling a class never imports anything.
    module = sys.modules.get(path)
    return module if module is not None else _Unloaded(path)


def _attribute(base: object, name: str) -> object:
    """Look up `name` on a resolved object without running user code on instances."""
    if isinstance(base, _Unloaded):
        return _Unloaded(f"{base.path}.{name}")
    if isinstance(base, _InstanceOf):
        base = base.cls
    elif not isinstance(base, (types.ModuleType, type)):
        # Properties of arbitrary objects could run code: look the name up on the type instead.
        if any(base is environment for environment in _environment_objects()):
            return _UNKNOWN
        base = type(base)
    try:
        return getattr(base, name)
    except Exception:  # noqa: BLE001 - any failure means the name is unknown here
        return _UNKNOWN


# ---------------------------------------------------------------------------- scanning one function


@attrs.frozen
class _Goto:
    target: str
    continue_as_new: bool
    line: int
    text: str


@attrs.frozen
class _Finding:
    """A replay hazard at one line of one function."""

    line: int
    hazard: _Hazard
    message: str


@attrs.define
class _Facts:
    """Facts about one function body: hazards found, gotos, and what it schedules or waits for."""

    findings: list[_Finding] = attrs.Factory(list)
    gotos: list[_Goto] = attrs.Factory(list)
    activities: set[str] = attrs.Factory(set)
    sub_orchestrations: set[str] = attrs.Factory(set)
    events: set[str] = attrs.Factory(set)
    event_attributes: set[str] = attrs.Factory(set)
    uses_timers: bool = False
    # Names of every `self.<name>` read, called or not: helper methods and properties among them.
    self_references: list[str] = attrs.Factory(list)


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _self_attribute(expr: ast.expr, self_name: str) -> str | None:
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == self_name:
        return expr.attr
    return None


def _string_literal(expr: ast.expr | None) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    return None


def _argument(node: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(node.args) > position and not any(isinstance(arg, ast.Starred) for arg in node.args[: position + 1]):
        return node.args[position]
    for item in node.keywords:
        if item.arg == keyword:
            return item.value
    return None


class _FunctionScanner(ast.NodeVisitor):
    """Syntax-tree visitor that collects the `_Facts` of one function body."""

    def __init__(self, scope: _Scope, self_name: str, check_hazards: bool) -> None:
        self.scope = scope
        self.self_name = self_name
        self.check_hazards = check_hazards
        self.facts = _Facts()

    def scan(self, node: _FunctionNode) -> _Facts:
        for statement in node.body:
            self.visit(statement)
        return self.facts

    def visit_Call(self, node: ast.Call) -> None:
        method = _self_attribute(node.func, self.self_name)
        if method is not None:
            self._self_call(method, node)
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "wait":
            attribute = _self_attribute(node.func.value, self.self_name)
            if attribute is not None:
                self.facts.event_attributes.add(attribute)
        if self.check_hazards and method is None:
            self._check_call(node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attribute = _self_attribute(node, self.self_name)
        if attribute is not None and isinstance(node.ctx, ast.Load):
            self.facts.self_references.append(attribute)
        if not self._check_reference(node):
            self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._check_reference(node)

    def _self_call(self, method: str, node: ast.Call) -> None:
        facts = self.facts
        if method == "goto":
            self._goto(node)
        elif method == "call_activity":
            name = self._activity_name(_argument(node, 0, "activity"))
            if name is not None:
                facts.activities.add(name)
        elif method == "call_sub_orchestration":
            name = self._orchestration_name(_argument(node, 0, "orchestration"))
            if name is not None:
                facts.sub_orchestrations.add(name)
        elif method == "wait_for_event":
            name = _string_literal(_argument(node, 0, "name"))
            if name is not None:
                facts.events.add(name)
        elif method == "create_timer":
            facts.uses_timers = True

    def _goto(self, node: ast.Call) -> None:
        target_expr = _argument(node, 0, "step")
        if target_expr is None:
            return
        target = _self_attribute(target_expr, self.self_name) or _string_literal(target_expr)
        if target is None:
            return  # a computed target: the runtime checks it when the step returns
        continue_as_new = any(
            item.arg == "continue_as_new" and isinstance(item.value, ast.Constant) and item.value.value is True
            for item in node.keywords
        )
        self.facts.gotos.append(_Goto(target, continue_as_new, node.lineno, _short(node)))

    def _activity_name(self, expr: ast.expr | None) -> str | None:
        if expr is None:
            return None
        literal = _string_literal(expr)
        if literal is not None:
            return literal
        resolved = self.scope.resolve(expr)
        return resolved.name if isinstance(resolved, Activity) else None

    def _orchestration_name(self, expr: ast.expr | None) -> str | None:
        if expr is None:
            return None
        literal = _string_literal(expr)
        if literal is not None:
            return literal
        is_type_of_self = (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Name)
            and expr.func.id == "type"
            and len(expr.args) == 1
            and isinstance(expr.args[0], ast.Name)
            and expr.args[0].id == self.self_name
        )
        if is_type_of_self:
            return self.scope.own_class_name
        resolved = self.scope.resolve(expr)
        name = getattr(resolved, "__durable_name__", None) if isinstance(resolved, type) else None
        if isinstance(name, str):
            return name
        if isinstance(expr, ast.Name) and expr.id == self.scope.own_class_name:
            # The class statement has not bound its own name yet while the class is compiled.
            return self.scope.own_class_name
        return None

    def _check_call(self, node: ast.Call) -> None:
        callee = self.scope.resolve(node.func)
        found = None if callee is _UNKNOWN else _classify_call(callee, len(node.args) + len(node.keywords))
        if found is not None:
            hazard, name = found
            self._report(node, hazard, f"`{_short(node.func)}(...)` calls {name}, which {hazard.effect}")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _THREAD_METHOD_NAMES:
            self._report(node, _THREADS, f"`{_short(node.func)}(...)` {_THREADS.effect}")

    def _check_reference(self, node: ast.Attribute | ast.Name) -> bool:
        if not self.check_hazards or not isinstance(node.ctx, ast.Load):
            return False
        resolved = self.scope.resolve(node)
        if resolved is _UNKNOWN or not any(resolved is environment for environment in _environment_objects()):
            return False
        self._report(node, _ENVIRONMENT, f"`{_short(node)}` {_ENVIRONMENT.effect}")
        return True

    def _report(self, node: ast.expr, hazard: _Hazard, message: str) -> None:
        # One finding per rule and line: `threading.Thread(...).start()` is one problem, not two.
        if any(found.line == node.lineno and found.hazard == hazard for found in self.facts.findings):
            return
        self.facts.findings.append(_Finding(node.lineno, hazard, message))


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
