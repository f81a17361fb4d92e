"""The stubs in exercises/ are exactly what the generator makes from solutions/, and say where to look."""

from __future__ import annotations

import ast
import json
import re

import pytest

from grading import PROJECT_ROOT, stubs


def test_exercises_do_not_drift_from_solutions() -> None:
    assert stubs.drift() == [], "run `make stubs` and commit exercises/"


def test_every_solution_module_has_a_stub_and_regions_are_gone() -> None:
    modules = stubs.solution_modules()
    assert "layers.py" in modules
    for name in modules:
        stub = (PROJECT_ROOT / "exercises" / name).read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in stub and "END SOLUTION" not in stub


def _functions(source: str) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}


def test_stub_keeps_signatures_and_docstrings_and_raises_naming_the_exercise() -> None:
    for name, solution in stubs.solution_modules().items():
        stub = (PROJECT_ROOT / "exercises" / name).read_text(encoding="utf-8")
        sol_funcs, stub_funcs = _functions(solution), _functions(stub)
        assert sol_funcs.keys() == stub_funcs.keys()
        for fname, sol in sol_funcs.items():
            mine = stub_funcs[fname]
            assert ast.dump(sol.args) == ast.dump(mine.args), f"{fname}: signature changed"
            assert ast.get_docstring(sol) == ast.get_docstring(mine), f"{fname}: docstring changed"
        namespace: dict = {}
        exec(compile(stub, f"exercises/{name}", "exec"), namespace)
        for fname in ("relu_forward", "relu_backward"):
            if fname not in namespace:
                continue
            import torch

            with pytest.raises(NotImplementedError,
                               match=rf"{fname} is not implemented yet: see course/00_welcome\.ipynb"):
                if fname == "relu_forward":
                    namespace[fname](torch.zeros(2))
                else:
                    namespace[fname](torch.zeros(2), torch.zeros(2))


def test_explained_in_points_to_a_real_notebook_section() -> None:
    for name, solution in stubs.solution_modules().items():
        for fname, func in _functions(solution).items():
            doc = ast.get_docstring(func) or ""
            match = re.search(r'Explained in (course/[\w.]+\.ipynb), section "([^"]+)"', doc)
            if "### BEGIN SOLUTION" not in ast.get_source_segment(solution, func):
                continue
            assert match, f"{name}:{fname} lacks an 'Explained in course/..., section \"...\"' line"
            notebook = PROJECT_ROOT / match.group(1)
            assert notebook.exists(), f"{fname} points to a missing notebook {notebook}"
            cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
            headings = [ln.lstrip("#").strip() for c in cells if c["cell_type"] == "markdown"
                        for ln in "".join(c["source"]).splitlines() if ln.startswith("#")]
            assert match.group(2) in headings, f"{fname}: no section {match.group(2)!r} in {notebook.name}"


def test_module_level_regions_are_removed_and_function_regions_replaced() -> None:
    source = '''"""Doc."""
import torch
### BEGIN SOLUTION
def _helper(x):
    return x * 2
### END SOLUTION


def f(x):
    """Double it.

    Explained in course/00_welcome.ipynb, section "S".
    """
    if x is None:
        raise ValueError("x")
    ### BEGIN SOLUTION
    return _helper(x)
    ### END SOLUTION
'''
    stub = stubs.make_stub(source, "demo.py")
    assert "_helper" not in stub
    assert "raise ValueError" in stub  # given code stays
    assert "raise NotImplementedError('f is not implemented yet: see course/00_welcome.ipynb, section \"S\".')" in stub
    compile(stub, "demo.py", "exec")


def test_a_raise_line_too_long_is_wrapped_and_says_the_same() -> None:
    source = '''def an_exercise_with_a_rather_long_name(x):
    """Explained in course/03_convolution.ipynb, section "A section title long enough to wrap the line"."""
    ### BEGIN SOLUTION
    return x
    ### END SOLUTION
'''
    stub = stubs.make_stub(source, "demo.py")
    assert max(len(line) for line in stub.splitlines()) <= stubs.LINE_LENGTH
    assert "    raise NotImplementedError(\n" in stub
    namespace: dict = {}
    exec(compile(stub, "demo.py", "exec"), namespace)
    with pytest.raises(NotImplementedError) as raised:
        namespace["an_exercise_with_a_rather_long_name"](1)
    assert str(raised.value) == ("an_exercise_with_a_rather_long_name is not implemented yet: see "
                                 'course/03_convolution.ipynb, section "A section title long enough to wrap the line".')


@pytest.mark.parametrize("source, problem", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "without a matching"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n",
     "inside another"),
    ('def f():\n    """No pointer."""\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n', "Explained in"),
])
def test_malformed_solutions_are_refused_with_a_clear_message(source: str, problem: str) -> None:
    with pytest.raises(stubs.StubError, match=problem):
        stubs.make_stub(source, "bad.py")


def test_drift_is_reported(tmp_path) -> None:
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    (tmp_path / "solutions" / "m.py").write_text(
        'def f():\n    """Explained in course/x.ipynb, section "S"."""\n'
        '    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n')
    assert stubs.drift(tmp_path / "exercises", tmp_path / "solutions")  # missing stub
    assert stubs.write(tmp_path / "exercises", tmp_path / "solutions") == ["m.py", "kit/stub_digests.json"]
    assert stubs.drift(tmp_path / "exercises", tmp_path / "solutions") == []
    (tmp_path / "exercises" / "m.py").write_text("edited by hand\n")
    assert stubs.drift(tmp_path / "exercises", tmp_path / "solutions")
