"""Visible checks: run ``check("relu")`` after each attempt for an immediate, specific diagnosis.

A check is a list of *properties* of the contract (``docs/CURRICULUM.md`` in the course repository),
each with a short title and a judge that says what is wrong and the likely mistake when it fails.
The grader's hidden tests are built from the same properties with inputs you have not seen, so a
check that passes here is a good sign, not a guarantee.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from exercises.checks.program import ImportFailed, Program, StepFailed, import_exercise_module, run_program
from exercises.kit.catalogue import code_digests, find, untouched
from exercises.kit.drills import drill_catalogue
from exercises.kit.progress import plot_history, progress_report, record_attempt

__all__ = ["CheckFailed", "Mistake", "Property", "available_checks", "check", "evaluate", "progress_view",
           "show_progress"]


class Mistake(Exception):
    """A property of the contract does not hold; the message is the diagnosis."""


class CheckFailed(AssertionError):
    """Raised by ``check`` when a property fails; shows the diagnosis without a long traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of a traceback
        return [f"\x1b[31m{line}\x1b[0m" for line in str(self).splitlines()]


@dataclass
class Property:
    """One property of one exercise: the calls to make, and how to judge what they return."""

    exercise: str
    title: str
    program: Program
    judge: Callable[[dict[str, Any]], None]


def explain_failure(exc: StepFailed) -> str:
    """What a learner should read when their code raised during a check."""
    name = exc.target.rpartition(".")[2]
    if exc.error_type == "ImportFailed":
        return exc.message
    if exc.error_type == "NotImplementedError":
        return f"{name} is not implemented yet (it still raises NotImplementedError)."
    if exc.error_type in ("SystemExit", "KeyboardInterrupt"):
        return f"{name} raised {exc.error_type}: an exercise must return its result, never exit."
    if exc.error_type == "ForbiddenCall":
        return exc.message
    return f"{name} raised {exc.error_type}: {exc.message}"


def evaluate(prop: Property, run: Callable[[Program], dict[str, Any]]) -> tuple[bool, str]:
    """Run ``prop`` with ``run`` and judge it: ``(passed, diagnosis)``.

    ``run`` executes a program and returns the fetched values, raising ``StepFailed`` when the
    learner's code raised; any other exception from ``run`` propagates.
    """
    try:
        got = run(prop.program)
    except StepFailed as exc:
        return False, explain_failure(exc)
    try:
        prop.judge(got)
    except Mistake as exc:
        return False, str(exc)
    return True, ""


# ----------------------------------------------------------------------------- judging helpers


def expect_pair(value: Any, name: str) -> tuple[Any, Any]:
    """``value`` must be the ``(out, cache)`` pair a forward function returns."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Mistake(
            f"{name} must return a pair (out, cache); it returned {type(value).__name__}"
            + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
            + ". End it with `return out, cache`."
        )
    return value[0], value[1]


def expect_tensor(value: Any, what: str, like: torch.Tensor) -> torch.Tensor:
    """``value`` must be a tensor with the shape and dtype of ``like``."""
    if not isinstance(value, torch.Tensor):
        raise Mistake(f"{what} must be a torch.Tensor; got {type(value).__name__}.")
    if tuple(value.shape) != tuple(like.shape):
        raise Mistake(f"{what} has shape {tuple(value.shape)}; expected {tuple(like.shape)}.")
    if value.dtype != like.dtype:
        raise Mistake(
            f"{what} has dtype {value.dtype} for a {like.dtype} input; keep the input's dtype "
            "(build new tensors with torch.zeros_like / torch.where rather than torch.tensor)."
        )
    if value.device != like.device:
        raise Mistake(f"{what} is on {value.device}; expected {like.device}, the input's device.")
    return value


def expect_unchanged(after: Any, before: torch.Tensor, name: str, function: str) -> None:
    """An input must hold its original values after the call."""
    if not isinstance(after, torch.Tensor) or not torch.equal(after, before):
        raise Mistake(
            f"{function} changed its input `{name}` in place. Compute a new tensor instead of "
            "modifying the argument (avoid in-place ops such as `x[x < 0] = 0`, `x.clamp_()`, `x *= ...`)."
        )


def count_mismatches(got: torch.Tensor, expected: torch.Tensor, atol: float = 0.0, rtol: float = 0.0) -> int:
    """How many elements differ by more than ``atol + rtol·|expected|`` (NaN counts as different)."""
    close = torch.isclose(got.double(), expected.double(), rtol=rtol, atol=atol)
    return int((~close).sum())


# ----------------------------------------------------------------------------- running checks

_REGISTRY: dict[str, Callable[[], list[Property]]] = {}


def register(name: str) -> Callable[[Callable[[], list[Property]]], Callable[[], list[Property]]]:
    """Register the visible check ``name``; the factory builds its properties."""

    def wrap(factory: Callable[[], list[Property]]) -> Callable[[], list[Property]]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def _load_registry() -> None:
    """Import every module of this package: each registers its checks."""
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name != "program":
            importlib.import_module(f"{__name__}.{info.name}")


def available_checks() -> list[str]:
    """The names ``check`` accepts."""
    _load_registry()
    return sorted(_REGISTRY)


def check_catalogue() -> list[tuple[str, list[str]]]:
    """``(check name, exercises it covers)`` for every visible check, in the order the course registers them."""
    _load_registry()
    return [(name, list(dict.fromkeys(p.exercise for p in factory()))) for name, factory in _REGISTRY.items()]


def module_of(props: list[Property], name: str) -> str:
    """The exercise module a check's properties call into (from the exercise catalogue)."""
    modules = {entry.module for entry in map(find, {p.exercise for p in props}) if entry is not None}
    if len(modules) != 1:
        raise RuntimeError(f"check {name!r} covers exercises of {sorted(modules) or 'no'} exercise module(s); "
                           "a check covers exactly one module")
    return modules.pop()


def progress_view(history: list[dict[str, Any]] | None = None) -> str:
    """The progress view of every check and drill of the course, from ``history`` (default: your progress file)."""
    return progress_report(check_catalogue(), history, drill_catalogue())


def show_progress(plot: bool = False) -> None:
    """Print the progress view (from any notebook cell): which checks pass, your attempts, your fluency in the
    drills, and the next practice plan; with ``plot=True`` also draw your history over time."""
    print(progress_view())
    if plot:
        plot_history()


def _fresh_module(module: str) -> str | None:
    """Re-import ``exercises.<module>`` so the check sees the file as it is now; or say why not."""
    sys.modules.pop(f"exercises.{module}", None)
    try:
        import_exercise_module(module)
    except ImportFailed as exc:
        return str(exc)
    return None


def _your_code(module: str, exercises: list[str]) -> tuple[dict[str, str], bool]:
    """The digest of each of ``exercises``' code in your file as it is now, and whether all of it is still
    exactly the stub the course gave you (a run on untouched stubs is not an attempt)."""
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec(f"exercises.{module}")
        source = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
    except (OSError, UnicodeDecodeError, ImportError, ValueError):
        source = ""
    digests = {e: d for e, d in code_digests(source).items() if e in exercises}
    return digests, bool(digests) and all(untouched(e, d) for e, d in digests.items())


def check(name: str, *, verbose: bool = True, record: bool = True) -> None:
    """Run the visible check ``name`` (for example ``"relu"``) against your current code.

    Reloads your exercise module first, so edits are picked up without restarting the kernel.
    Prints one line per property and raises ``CheckFailed`` listing the failures; returns nothing when
    all pass. Each run is recorded in your progress history (``exercises.kit.progress``).
    """
    _load_registry()
    if name not in _REGISTRY:
        raise ValueError(f"no check named {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    props = _REGISTRY[name]()
    module = module_of(props, name)
    code, stub = _your_code(module, list(dict.fromkeys(p.exercise for p in props)))
    problem = _fresh_module(module)
    if problem:
        if record:
            record_attempt(name, module, {name: False}, [problem], code=code, untouched=stub)
        raise CheckFailed(f"✗ {name}: {problem}")

    def run(program: Program) -> dict[str, Any]:
        return run_program(program.steps, program.fetches, forbidden=program.forbidden)

    failures = []
    results: dict[str, bool] = {}
    for prop in props:
        passed, diagnosis = evaluate(prop, run)
        results[prop.exercise] = results.get(prop.exercise, True) and passed
        if verbose:
            print(f"  {'✓' if passed else '✗'} {prop.exercise}: {prop.title}")
            if not passed:
                print(f"      {diagnosis}")
        if not passed:
            failures.append(f"✗ {prop.exercise}: {prop.title}\n    {diagnosis}")
    if record:
        record_attempt(name, module, results, [f.splitlines()[1].strip() for f in failures], code=code, untouched=stub)
    if failures:
        summary = f"{len(failures)} of {len(props)} properties of '{name}' failed"
        if verbose:
            raise CheckFailed(f"{summary} (see above). Fix your code, save the file, and run this cell again.")
        raise CheckFailed(summary + ":\n" + "\n".join(failures))
    if verbose:
        print(f"All properties of '{name}' hold. Well done!")
