"""Static scanning of one function for replay hazards, gotos and the names it waits on.

The class compiler calls `_FunctionScanner` on every step and helper method. A
step body runs again on every replay, so a call whose result differs between
runs (a clock, randomness, I/O, the environment, threads, sleeping) makes the
code disagree with its own history. Names in a call are resolved the way
Python would resolve them when the method runs: function-local imports, then
the closure, then the module globals, then builtins. The resolved object is
classified by its defining module and qualified name (`os.environ` by
identity), never by the text the user wrote.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import sys
import types
import typing
from typing import Any

import attrs

from durable._activity import Activity

_FunctionNode = typing.Union[ast.FunctionDef, ast.AsyncFunctionDef]

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
