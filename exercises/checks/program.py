"""A check's calls into the exercises, written down as plain data so they can run anywhere.

A ``Program`` lists what to do (put a value, call an exercise, call a method, take an item or an
attribute) and which results to fetch. ``run_program`` executes it. The visible checks run it in
your own Python process; the grader runs the very same program in an isolated child process and
judges the fetched values in its own, trusted process. Either way your code gets the same calls.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A value that exists only while the program runs (an argument, a result, a cache)."""

    id: int


@dataclass
class Program:
    """Steps to run against an ``exercises`` package, and the values to bring back."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    fetches: dict[str, Ref] = field(default_factory=dict)
    forbidden: list[str] = field(default_factory=list)
    # Seconds of wall time this program needs at least (e.g. one that trains a model); the grader
    # runs it under the larger of this and its own per-test limit. ``None``: the grader's limit.
    timeout: float | None = None

    def _add(self, step: dict[str, Any]) -> Ref:
        self.steps.append(step)
        return Ref(len(self.steps) - 1)

    def put(self, value: Any) -> Ref:
        """Make ``value`` (tensors, numbers, strings, lists, dicts of them) available to later steps."""
        return self._add({"op": "put", "value": value})

    def call(self, target: str, *args: Any, **kwargs: Any) -> Ref:
        """Call ``target``: ``"layers.relu_forward"`` names ``exercises.layers.relu_forward``;
        names under ``torch``, ``operator``, ``math`` and ``builtins`` are taken as they are
        (``"torch.Generator"``, ``"operator.add"``)."""
        return self._add({"op": "call", "target": target, "args": list(args), "kwargs": kwargs})

    def raises(self, target: str, *args: Any, **kwargs: Any) -> Ref:
        """Call ``target`` expecting it to raise: the value is ``{"raised": type name or None,
        "message": str}``, so a judge can insist on a ``ValueError`` for bad input."""
        return self._add({"op": "raises", "target": target, "args": list(args), "kwargs": kwargs})

    def measure(self, target: str, *args: Any, **kwargs: Any) -> Ref:
        """Call ``target`` like ``call`` while counting the work it does. The value is ``{"value":
        what it returned, "ops": how many torch functions and tensor methods it called, "lines": how
        many Python lines it ran in the exercises package, "op_names": the distinct torch names,
        sorted}``. A Python loop over the images (or filters, or positions) of an input makes the
        counts grow with the input, while vectorized code's stay the same: judges compare counts at
        two sizes, which, unlike timings, do not depend on how loaded the machine is."""
        return self._add({"op": "measure", "target": target, "args": list(args), "kwargs": kwargs})

    def forbid(self, *names: str) -> Program:
        """Make calling any of ``names`` (``"torch.nn.functional.softmax"``, ``"torch.Tensor.backward"``)
        fail the program: for exercises that must compute by hand what torch would."""
        self.forbidden.extend(n for n in names if n not in self.forbidden)
        return self

    def method(self, obj: Ref, name: str, *args: Any, **kwargs: Any) -> Ref:
        """Call ``obj.name(*args, **kwargs)``."""
        return self._add({"op": "method", "obj": obj, "name": name, "args": list(args), "kwargs": kwargs})

    def attr(self, obj: Ref, name: str) -> Ref:
        """Read ``obj.name``."""
        return self._add({"op": "attr", "obj": obj, "name": name})

    def item(self, obj: Ref, index: int | str) -> Ref:
        """Take ``obj[index]``."""
        return self._add({"op": "item", "obj": obj, "index": index})

    def fetch(self, **refs: Ref) -> Program:
        """Name the values to bring back when the program has run."""
        self.fetches.update(refs)
        return self


class ForbiddenCall(Exception):
    """Raised inside a program when the code under test calls an operation it must not use."""


class StepFailed(Exception):
    """The learner's code raised (or returned something unusable) during one step."""

    def __init__(self, target: str, error_type: str, message: str, trace: str = "") -> None:
        super().__init__(f"{target} raised {error_type}: {message}")
        self.target = target
        self.error_type = error_type
        self.message = message
        self.trace = trace


def _describe(step: dict[str, Any]) -> str:
    if step["op"] in ("call", "measure"):
        return step["target"]
    if step["op"] == "method":
        return f".{step['name']}()"
    if step["op"] == "attr":
        return f".{step['name']}"
    return step["op"]


def _learner_trace(exc: BaseException) -> str:
    """The traceback without the frames of this module: what the learner needs to see."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames[-6:]) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines)[-4000:]


# Call targets outside the exercises package that a program may name (programs are written by the
# course, never by learners): constructors and helpers such as ``torch.Generator`` or ``operator.add``.
TRUSTED_MODULES = ("torch", "operator", "math", "builtins")


class ImportFailed(Exception):
    """An exercise module could not be imported; the message says why, for the learner."""


def import_exercise_module(module_name: str, package: str = "exercises") -> Any:
    """Import ``exercises.<module_name>``, turning every way it can fail into ``ImportFailed``."""
    full, path = f"{package}.{module_name}", f"{package}/{module_name.replace('.', '/')}.py"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            raise ImportFailed(f"{path} is missing: it must exist, with its functions' names unchanged.") from None
        raise ImportFailed(f"{path} imports a module that is not available here: {exc}") from None
    except SyntaxError as exc:
        raise ImportFailed(f"{path} has a syntax error on line {exc.lineno}: {exc.msg}.") from None
    except (Exception, SystemExit) as exc:
        raise ImportFailed(
            f"importing {path} failed with {type(exc).__name__}: {str(exc)[:300]}. Code at the top level "
            "of a module runs when it is imported: keep it to definitions."
        ) from None


def resolve(target: str, package: str = "exercises") -> Any:
    """The callable a ``call`` step names."""
    module_name, _, attr_name = target.rpartition(".")
    if not module_name or not attr_name:
        raise ValueError(f"call target must look like 'module.name', got {target!r}")
    root = module_name.split(".")[0]
    if root in TRUSTED_MODULES:  # the program's own helpers: torch.Generator, operator.add, ...
        return getattr(_lookup(module_name), attr_name)
    module = import_exercise_module(module_name, package)
    try:
        return getattr(module, attr_name)
    except AttributeError:
        raise AttributeError(
            f"{package}/{module_name.replace('.', '/')}.py has no '{attr_name}': "
            "was it renamed or deleted? Its name is fixed by the course's contract."
        ) from None


def run_program(
    steps: list[dict[str, Any]],
    fetches: dict[str, Any],
    package: str = "exercises",
    catch: tuple[type[BaseException], ...] = (Exception,),
    on_step: Any = None,
    forbidden: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Execute ``steps`` and return ``{name: value}`` for ``fetches``.

    Raises ``StepFailed`` when a step raises one of ``catch``, or when it called one of the
    ``forbidden`` operations (even if it caught the error that call raised). ``on_step(i)``, when
    given, is called before step ``i`` runs (the grader uses it to tell which call hung).
    """
    with _forbidding(forbidden) as used:
        values = _run_steps(steps, fetches, package, catch, on_step, used)
    return values


@contextmanager
def _forbidding(names: list[str] | tuple[str, ...]) -> Iterator[list[str]]:
    """Replace each named callable by one that records the call and raises ``ForbiddenCall``."""
    used: list[str] = []
    patched = []
    for name in names:
        owner_name, _, attr = name.rpartition(".")
        owner = _lookup(owner_name)
        original = getattr(owner, attr)
        own = attr in getattr(owner, "__dict__", {})  # else inherited (``torch.Tensor.unfold``): deleted after

        def blocked(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            used.append(_name)
            raise ForbiddenCall(f"{_name} must not be used here: this exercise computes it by hand")

        setattr(owner, attr, blocked)
        patched.append((owner, attr, original, own))
    try:
        yield used
    finally:
        for owner, attr, original, own in reversed(patched):
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)  # as it was: the attribute comes from a base class again


def fetch_number(p: Program, name: str, ref: Ref) -> None:
    """Fetch ``ref`` as ``name``, and as ``name + "_float"`` the Python ``float`` of it when it is a
    ``float`` or of a float subclass (NumPy's ``float64`` is one), ``None`` otherwise. A float subclass is a
    float for the contract, but only plain Python numbers travel back from the grader's sandbox, so
    the conversion happens in the program, where it never raises."""
    float_type = p.call("builtins.getattr", p.call("builtins.__import__", "builtins"), "float")
    floats = p.call("builtins.filter", p.attr(float_type, "__instancecheck__"), [ref])
    p.fetch(**{name: ref, f"{name}_float": p.call("builtins.next", p.call("builtins.map", float_type, floats), None)})


def fetched_number(got: dict[str, Any], name: str) -> Any:
    """What ``fetch_number`` brought back as ``name``: a Python ``int`` or ``float`` where the value was
    one (a float subclass converted), else the value itself."""
    value = got[name]
    if type(value) not in (int, float) and type(got.get(f"{name}_float")) is float:
        return got[f"{name}_float"]
    return value


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _lookup(dotted: str) -> Any:
    """A module or a class attribute path such as ``torch.nn.functional`` or ``torch.Tensor``."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ValueError(f"cannot find {dotted!r}")


def _measured(function: Any, args: list[Any], kwargs: dict[str, Any], package: str) -> dict[str, Any]:
    """``function(*args, **kwargs)`` with its torch calls (a ``TorchFunctionMode``) and the Python lines it
    runs in ``package`` (a trace function; ``checks`` excluded) counted; see ``Program.measure``."""
    import os
    import sys

    from torch.overrides import TorchFunctionMode, resolve_name

    roots = tuple(os.path.realpath(p) + os.sep for p in importlib.import_module(package).__path__)
    excluded = tuple(root + "checks" + os.sep for root in roots)
    counts = {"ops": 0, "lines": 0}
    names: set[str] = set()
    ours: dict[str, bool] = {}

    class Counter(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            counts["ops"] += 1
            names.add(resolve_name(func) or getattr(func, "__qualname__", None) or repr(func))
            return func(*args, **(kwargs or {}))

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            counts["lines"] += 1
        return local

    def on_call(frame: Any, event: str, arg: Any) -> Any:
        filename = frame.f_code.co_filename
        if filename not in ours:
            real = os.path.realpath(filename)
            ours[filename] = real.startswith(roots) and not real.startswith(excluded)
        return local if ours[filename] else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        with Counter():
            value = function(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return {"value": value, "ops": counts["ops"], "lines": counts["lines"], "op_names": sorted(names)}


def _run_steps(
    steps: list[dict[str, Any]],
    fetches: dict[str, Any],
    package: str,
    catch: tuple[type[BaseException], ...],
    on_step: Any,
    used: list[str],
) -> dict[str, Any]:

    def deref(value: Any) -> Any:
        if isinstance(value, Ref):
            return values[value.id]
        if _is_tensor(value):  # the program's own inputs: a copy per run, so that code that changes its
            # input in place cannot change what the next run of the same program sees (a leaf stays a leaf)
            return value.detach().clone().requires_grad_(value.requires_grad)
        if isinstance(value, list):
            return [deref(v) for v in value]
        if isinstance(value, tuple):
            return tuple(deref(v) for v in value)
        if isinstance(value, dict):
            return {k: deref(v) for k, v in value.items()}
        return value

    values: list[Any] = []
    for index, step in enumerate(steps):
        op = step["op"]
        if on_step is not None:
            on_step(index)
        try:
            if op == "put":
                result = deref(step["value"])
            elif op == "call":
                result = resolve(step["target"], package)(*deref(step["args"]), **deref(step["kwargs"]))
            elif op == "raises":
                function = resolve(step["target"], package)
                try:
                    function(*deref(step["args"]), **deref(step["kwargs"]))
                    result = {"raised": None, "message": ""}
                except Exception as exc:
                    result = {"raised": type(exc).__name__, "message": str(exc)[:500]}
            elif op == "measure":
                function = resolve(step["target"], package)
                result = _measured(function, deref(step["args"]), deref(step["kwargs"]), package)
            elif op == "method":
                obj = deref(step["obj"])
                result = getattr(obj, step["name"])(*deref(step["args"]), **deref(step["kwargs"]))
            elif op == "attr":
                result = getattr(deref(step["obj"]), step["name"])
            elif op == "item":
                result = deref(step["obj"])[step["index"]]
            else:
                raise ValueError(f"unknown step {op!r}")
        except catch as exc:
            if used:
                break
            raise StepFailed(_describe(step), type(exc).__name__, str(exc)[:2000], _learner_trace(exc)) from exc
        if used:
            break
        values.append(result)
    if used:
        raise StepFailed(_describe(step), "ForbiddenCall",
                         f"{_describe(step).rpartition('.')[2]} called {used[0]}, which this exercise must not use: "
                         "the point is to write that part yourself.")
    return {name: deref(ref) for name, ref in fetches.items()}
