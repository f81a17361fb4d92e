"""Properties of ``exercises.autograd`` (chapter 2): ``Value``, ``numerical_gradient``, ``relative_error``.

``Value`` is judged against PyTorch's autograd in float64 on the very same expression: a program
builds the expression from your ``Value`` (``operator.mul(a, b)``, ``a.tanh()``, ``2.0 - a``, ...),
calls ``backward()`` and brings back every node's ``data`` and ``grad``; the judge rebuilds the
expression with float64 tensors and compares, to 1e-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from exercises.checks import Mistake, Property, expect_tensor, register
from exercises.checks.program import Program, Ref, fetch_number, fetched_number

# Chapter 2 computes gradients by hand: autograd is off limits in every exercise.
NO_AUTOGRAD = ("torch.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward")
TOLERANCE = 1e-6  # |got − expected| <= TOLERANCE · max(1, |expected|), for Value's data and grad

# ----------------------------------------------------------------------------- expressions

BINARY = ("add", "sub", "mul", "truediv")
SYMBOL = {"add": "+", "sub": "−", "mul": "·", "truediv": "/", "pow": "**", "neg": "unary −"}
FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "relu")


@dataclass(frozen=True)
class Expr:
    """A scalar expression, as data: leaves first, then operations on earlier nodes.

    Node ``i < len(leaves)`` is ``Value(leaves[i])``; node ``len(leaves) + k`` is ``ops[k]``, one of
    ``("add"|"sub"|"mul"|"truediv", a, b)`` where an ``int`` names a node and a ``float`` is a Python
    number (so ``("sub", 2.0, 0)`` is ``2.0 − node0``, the reflected form), ``("pow", i, exponent)``
    with an ``int`` or ``float`` exponent, ``("neg", i)``, or ``(function, i)`` for a method
    ``exp``, ``log``, ``tanh``, ``sigmoid`` or ``relu``. The last node is the output.
    """

    leaves: tuple[float, ...]
    ops: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        count = len(self.leaves)
        for op in self.ops:
            name = op[0]
            if name in BINARY:
                refs = [a for a in op[1:] if type(a) is int]
                if len(op) != 3 or not refs or any(type(a) not in (int, float) for a in op[1:]):
                    raise ValueError(f"bad operation {op!r}")
            elif name == "pow":
                if len(op) != 3 or type(op[1]) is not int or type(op[2]) not in (int, float):
                    raise ValueError(f"bad operation {op!r}")
                refs = [op[1]]
            elif name == "neg" or name in FUNCTIONS:
                if len(op) != 2 or type(op[1]) is not int:
                    raise ValueError(f"bad operation {op!r}")
                refs = [op[1]]
            else:
                raise ValueError(f"unknown operation {name!r}")
            if any(not 0 <= r < count for r in refs):
                raise ValueError(f"{op!r} refers to a node not defined before it")
            count += 1

    @property
    def size(self) -> int:
        return len(self.leaves) + len(self.ops)

    def consumers(self, node: int) -> list[int]:
        """The operations (node indices) that take ``node`` as an input, once per use."""
        return [len(self.leaves) + k for k, op in enumerate(self.ops) for a in op[1:2 if op[0] == "pow" else 3]
                if type(a) is int and a == node]

    def describe(self, node: int) -> str:
        """A learner-facing name of ``node``: a leaf, or the operation that made it."""
        if node < len(self.leaves):
            return f"leaf #{node + 1}"
        op = self.ops[node - len(self.leaves)]
        if op[0] in BINARY:
            left = "number" if type(op[1]) is not int else "Value"
            right = "number" if type(op[2]) is not int else "Value"
            reflected = "a reflected " if left == "number" else ""
            return f"the output of {reflected}{SYMBOL[op[0]]} ({left} {SYMBOL[op[0]]} {right})"
        return f"the output of {self.op_name(node)}"

    def op_name(self, node: int) -> str:
        """Short name of the operation that made ``node``, for diagnoses."""
        op = self.ops[node - len(self.leaves)]
        if op[0] in BINARY:
            return SYMBOL[op[0]] + (" (reflected)" if type(op[1]) is not int else "")
        if op[0] == "pow":
            return f"** {op[2]!r}"
        if op[0] == "neg":
            return "unary −"
        return f".{op[0]}()"


def build_value_program(expr: Expr, backward: bool = True) -> tuple[Program, list[Ref]]:
    """The program that builds ``expr`` from the learner's ``Value``, runs ``backward()`` on the
    output (unless told not to) and fetches ``data{i}`` and ``grad{i}`` of every node."""
    p = Program().forbid(*NO_AUTOGRAD)
    nodes: list[Ref] = [p.call("autograd.Value", float(v)) for v in expr.leaves]

    def arg(a: Any) -> Any:
        return nodes[a] if type(a) is int else float(a)

    for op in expr.ops:
        name = op[0]
        if name in BINARY:
            nodes.append(p.call(f"operator.{name}", arg(op[1]), arg(op[2])))
        elif name == "pow":
            nodes.append(p.call("operator.pow", nodes[op[1]], op[2]))
        elif name == "neg":
            nodes.append(p.call("operator.neg", nodes[op[1]]))
        else:
            nodes.append(p.method(nodes[op[1]], name))
    if backward:
        p.method(nodes[-1], "backward")
    for i, ref in enumerate(nodes):
        fetch_number(p, f"data{i}", p.attr(ref, "data"))
        fetch_number(p, f"grad{i}", p.attr(ref, "grad"))
    return p, nodes


def torch_oracle(expr: Expr) -> tuple[list[float], list[float]]:
    """``(data, grad)`` of every node of ``expr``, by PyTorch's autograd in float64."""
    nodes = [torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in expr.leaves]

    def arg(a: Any) -> Any:
        return nodes[a] if type(a) is int else float(a)

    for op in expr.ops:
        name = op[0]
        if name == "add":
            t = arg(op[1]) + arg(op[2])
        elif name == "sub":
            t = arg(op[1]) - arg(op[2])
        elif name == "mul":
            t = arg(op[1]) * arg(op[2])
        elif name == "truediv":
            t = arg(op[1]) / arg(op[2])
        elif name == "pow":
            t = nodes[op[1]] ** op[2]
        elif name == "neg":
            t = -nodes[op[1]]
        else:
            t = getattr(torch, name)(nodes[op[1]])
        t.retain_grad()
        nodes.append(t)
    nodes[-1].backward()
    data = [float(t.detach()) for t in nodes]
    grads = [float(t.grad) if t.grad is not None else 0.0 for t in nodes]
    return data, grads


def _close(got: float, expected: float) -> bool:
    return abs(got - expected) <= TOLERANCE * max(1.0, abs(expected))


def _number(got: dict[str, Any], key: str, what: str) -> float:
    value = fetched_number(got, key)
    if type(value) not in (int, float):
        raise Mistake(f"{what} must be a Python float; got {type(value).__name__}. Keep `data` and `grad` plain "
                      "floats (Value.__init__ converts `data` with float()).")
    if not math.isfinite(value):
        raise Mistake(f"{what} is {value}: something overflowed or divided by zero.")
    return float(value)


def _values(got: dict[str, Any], expr: Expr) -> tuple[list[float], list[float]]:
    data = [_number(got, f"data{i}", f"`data` of {expr.describe(i)}") for i in range(expr.size)]
    grads = [_number(got, f"grad{i}", f"`grad` of {expr.describe(i)}") for i in range(expr.size)]
    return data, grads


def _check_data(expr: Expr, data: list[float], expected: list[float]) -> None:
    for i in range(len(expr.leaves), expr.size):
        if not _close(data[i], expected[i]):
            raise Mistake(f"the value (`data`) of {expr.describe(i)} is wrong: check the forward computation of "
                          f"{expr.op_name(i)}.")


def _check_output_grad(expr: Expr, grads: list[float]) -> None:
    out = grads[-1]
    if out == 0.0 and all(g == 0.0 for g in grads):
        raise Mistake("after backward() every grad is still 0: backward must set the output's grad to 1.0 and "
                      "then call each node's _backward.")
    if not _close(out, 1.0):
        raise Mistake("after backward() the output's own grad must be 1.0 (∂L/∂L = 1): set `self.grad = 1.0` "
                      "before propagating.")


def _locate(expr: Expr, grads: list[float], expected: list[float]) -> str:
    """The diagnosis for a wrong gradient somewhere in ``expr``: the latest node (closest to the output)
    whose grad is wrong, when every node computed after it is right."""
    for i in reversed(range(expr.size)):
        if _close(grads[i], expected[i]):
            continue
        users = expr.consumers(i)
        ops = sorted({expr.op_name(u) for u in users})
        where = f"∂out/∂({expr.describe(i)}) is wrong although every node computed after it has the right grad"
        if len(users) > 1:
            return (f"{where}. That node is used {len(users)} times ({', '.join(ops)}): its grad must be the sum of "
                    "the contributions of every use (`+=` in each _backward, never `=`), and each _backward must run "
                    "once, in reverse topological order.")
        return f"{where}: check the backward (local derivative and chain rule) of {', '.join(ops)}."
    return "the gradients differ from PyTorch's."


def value_matches_torch(expr: Expr, title: str) -> Property:
    """Every node's ``data`` and ``grad`` agree with PyTorch's float64 autograd to 1e-6."""
    program, _ = build_value_program(expr)

    def judge(got: dict[str, Any]) -> None:
        data, grads = _values(got, expr)
        expected_data, expected_grads = torch_oracle(expr)
        _check_data(expr, data, expected_data)
        _check_output_grad(expr, grads)
        if all(_close(g, e) for g, e in zip(grads, expected_grads, strict=True)):
            return
        raise Mistake(_locate(expr, grads, expected_grads))

    return Property("Value", title, program, judge)


# ----------------------------------------------------------------------------- one operation at a time


def _single_op(op: tuple[Any, ...], leaves: tuple[float, ...], upstream: float | None) -> Expr:
    """``op`` on the leaves, then multiplied by the constant ``upstream`` (so that the operation's
    output receives a grad other than 1 and a missing chain-rule factor shows); ``op`` alone when
    ``upstream`` is None."""
    if upstream is None:
        return Expr(leaves, (op,))
    return Expr(leaves, (op, ("mul", len(leaves), float(upstream))))


def value_operation(op: tuple[Any, ...], leaves: tuple[float, ...], upstream: float | None = 1.5) -> Property:
    """One operation's value and the gradients it passes to its inputs, with named diagnoses of the
    usual wrong derivatives. ``upstream`` is the grad its output receives (through a multiplication
    by that constant; ``None`` for the output itself, grad 1: use it to test multiplication alone)."""
    expr = _single_op(op, leaves, upstream)
    g = 1.0 if upstream is None else float(upstream)
    program, _ = build_value_program(expr)
    name = expr.op_name(len(leaves))
    label = {"add": "a + b", "sub": "a − b", "mul": "a · b", "truediv": "a / b", "neg": "−a"}.get(op[0])
    if op[0] in BINARY and type(op[2]) is not int:
        label = f"a {SYMBOL[op[0]]} {op[2]:g}"
    if op[0] in BINARY and type(op[1]) is not int:
        label = f"{op[1]:g} {SYMBOL[op[0]]} a"
    if op[0] == "pow":
        label = f"a ** {op[2]!r}"
    if op[0] in FUNCTIONS:
        label = f"a.{op[0]}()"
    if op[0] in ("relu", "tanh", "sigmoid"):  # the sign of a tells two such properties apart
        label += " at a > 0" if leaves[op[1]] > 0 else " at a < 0"

    def judge(got: dict[str, Any]) -> None:
        data, grads = _values(got, expr)
        expected_data, expected_grads = torch_oracle(expr)
        _check_data(expr, data, expected_data)
        _check_output_grad(expr, grads)
        node = len(leaves)
        if not _close(grads[node], expected_grads[node]):
            raise Mistake(f"the grad of {label} itself is wrong: the backward of · (multiplication) "
                          "is the likely culprit.")
        for leaf in range(len(leaves)):
            if _close(grads[leaf], expected_grads[leaf]):
                continue
            if _close(grads[leaf], 0.0):
                raise Mistake(f"{label}: no gradient reached {'a' if leaf == 0 else 'b'}, although the result's own "
                              "grad is right. Does the result have a _backward that adds to its inputs' grad (and list "
                              "them as children), and does backward() call it after the result's grad is known "
                              "(reverse topological order)?")
            local = expected_grads[leaf] / g
            if upstream is not None and _close(grads[leaf], local):
                raise Mistake(f"{label}: the gradient passed to {'a' if leaf == 0 else 'b'} is the local derivative "
                              "alone: multiply it by out.grad (the chain rule).")
            if _close(grads[leaf], -expected_grads[leaf]):
                raise Mistake(f"{label}: the gradient passed to {'a' if leaf == 0 else 'b'} has the wrong sign.")
            hint = _derivative_hint(op, leaves, leaf, grads[leaf], g)
            raise Mistake(f"{label}: the gradient passed to {'a' if leaf == 0 else 'b'} is wrong{hint}.")

    return Property("Value", f"{label}: value and gradient ({name})", program, judge)


def _derivative_hint(op: tuple[Any, ...], leaves: tuple[float, ...], leaf: int, got: float, g: float) -> str:
    """A named wrong derivative that matches ``got``, if any: ``": it looks like ..."``."""
    x = leaves[op[1]] if type(op[1]) is int else None
    candidates: dict[str, float] = {}
    name = op[0]
    if name == "tanh":
        t = math.tanh(x)
        candidates = {"1 − x² with the input x; the derivative is 1 − tanh²(x), with the output": g * (1 - x * x),
                      "1 − tanh(x) without the square; the derivative is 1 − tanh²(x)": g * (1 - t),
                      "tanh(x) itself; the derivative is 1 − tanh²(x)": g * t}
    elif name == "sigmoid":
        s = 1 / (1 + math.exp(-x))
        candidates = {"σ(x) alone; the derivative is σ(x)·(1 − σ(x))": g * s,
                      "x·(1 − x) with the input; the derivative is σ(x)·(1 − σ(x)), with the output": g * x * (1 - x),
                      "1 − σ(x) alone; the derivative is σ(x)·(1 − σ(x))": g * (1 - s)}
    elif name == "log":
        candidates = {"ln(x); the derivative of ln(x) is 1/x": g * math.log(x),
                      "1/ln(x), dividing by the output; the derivative of ln(x) is 1/x, the input": g / math.log(x),
                      "x; the derivative of ln(x) is 1/x": g * x}
    elif name == "exp":
        candidates = {"x; the derivative of e^x is e^x": g * x}
    elif name == "pow":
        n = op[2]
        candidates = {"x^(n−1) without the factor n; d(xⁿ)/dx = n·x^(n−1)": g * x ** (n - 1),
                      "n·xⁿ; the exponent of the derivative is n − 1": g * n * x**n,
                      "(n−1)·x^(n−2)": g * (n - 1) * x ** (n - 2)}
    elif name == "relu":
        candidates = {"1 where x <= 0; the derivative is 1 only where x > 0": g * (1.0 if x <= 0 else 0.0)}
    elif name == "mul" and type(op[1]) is int and type(op[2]) is int:
        mine = leaves[op[1]] if leaf == 0 else leaves[op[2]]
        candidates = {"the input's own value; ∂(a·b)/∂a is b, the *other* input": g * mine}
    elif name == "truediv" and leaf == 1 and type(op[1]) is int:
        a, b = leaves[op[1]], leaves[op[2]]
        candidates = {"1/b²·a without the minus sign; ∂(a/b)/∂b = −a/b²": g * a / b**2,
                      "1/b; ∂(a/b)/∂b = −a/b²": g / b}
    for words, value in candidates.items():
        if isinstance(value, float) and math.isfinite(value) and _close(got, value):
            return f": it looks like {words}"
    return ""


def value_accumulates(kind: str, a: float) -> Property:
    """A value used more than once receives the sum of every use's gradient (``+=``, not ``=``)."""
    if kind == "a + a":
        expr, partial = Expr((a,), (("add", 0, 0),)), 1.0
    elif kind == "a * a":
        expr, partial = Expr((a,), (("mul", 0, 0),)), a
    elif kind == "two uses":  # 3·a + e^a: a feeds two different operations
        expr, partial = Expr((a,), (("mul", 0, 3.0), ("exp", 0), ("add", 1, 2))), 3.0
    else:
        raise ValueError(f"unknown kind {kind!r}")
    program, _ = build_value_program(expr)

    def judge(got: dict[str, Any]) -> None:
        data, grads = _values(got, expr)
        expected_data, expected_grads = torch_oracle(expr)
        _check_data(expr, data, expected_data)
        _check_output_grad(expr, grads)
        if _close(grads[0], expected_grads[0]):
            return
        others = {1.0, partial, math.exp(a)} if kind == "two uses" else {partial}
        if any(_close(grads[0], v) for v in others):
            raise Mistake(f"{kind}: a's grad holds only one use's contribution. A value used several times must "
                          "receive the sum over every use: write `self.grad += ...` and `other.grad += ...` in "
                          "every _backward, never `=`.")
        raise Mistake(f"{kind}: a's grad is wrong; with a used more than once its grad must be the sum of every "
                      "use's contribution.")

    title = {"a + a": "b = a + a gives a.grad == 2 (gradients accumulate)",
             "a * a": "b = a · a gives a.grad == 2a (gradients accumulate)",
             "two uses": "a used by two operations gets the sum of both gradients"}[kind]
    return Property("Value", title, program, judge)


def order_expr(x: float, chain: int, short_first: bool) -> Expr:
    """``y = 2x``; ``m = y`` through ``chain`` multiplications by constants; ``out = y + m``.

    ``y`` reaches the output directly and through a chain, so its ``_backward`` must wait until
    the whole chain has run: any order but a reverse topological one gets ``x.grad`` wrong, and
    so does running a node's ``_backward`` twice."""
    ops: list[tuple[Any, ...]] = [("mul", 0, 2.0)]
    for k in range(chain):
        ops.append(("mul", len(ops), (3.0, 0.5, -1.25, 2.0)[k % 4]))
    last = len(ops)
    ops.append(("add", 1, last) if short_first else ("add", last, 1))
    return Expr((x,), tuple(ops))


def value_backward_order(x: float, chain: int = 2, short_first: bool = True) -> Property:
    """``backward`` runs each node's ``_backward`` once, after every node that uses it."""
    expr = order_expr(x, chain, short_first)
    program, _ = build_value_program(expr)

    def judge(got: dict[str, Any]) -> None:
        data, grads = _values(got, expr)
        expected_data, expected_grads = torch_oracle(expr)
        _check_data(expr, data, expected_data)
        _check_output_grad(expr, grads)
        if all(_close(g, e) for g, e in zip(grads, expected_grads, strict=True)):
            return
        # The graph only multiplies by constants and adds (their own properties check those), so a wrong
        # gradient here comes from the order in which backward() runs the nodes' _backward.
        if abs(grads[0]) > abs(expected_grads[0]):
            why = "too large: some node's _backward ran more than once (the graph was walked without a visited set)"
        else:
            why = ("too small: some node's _backward ran before every node using it had added its share "
                   "(or the order was not reversed)")
        raise Mistake(f"the input's grad is {why}. backward() must run each node's _backward exactly once, in reverse "
                      "topological order: build the order with a depth-first search that appends a node after its "
                      "children and skips nodes already visited, then call _backward on reversed(order). (If a "
                      "property on accumulation fails too, fix that first: `=` instead of `+=` looks the same here.)")

    return Property("Value", f"backward() follows reverse topological order (a node reused across a chain of {chain})",
                    program, judge)


def value_starts_at_zero(a: float) -> Property:
    """``grad`` is 0.0 before any ``backward``, and a leaf's own ``backward`` gives it grad 1."""
    p = Program().forbid(*NO_AUTOGRAD)
    leaf = p.call("autograd.Value", float(a))
    fetch_number(p, "before", p.attr(leaf, "grad"))
    fetch_number(p, "data", p.attr(leaf, "data"))
    other = p.call("autograd.Value", float(a))
    p.method(other, "backward")
    fetch_number(p, "after", p.attr(other, "grad"))

    def judge(got: dict[str, Any]) -> None:
        data, before, after = (fetched_number(got, key) for key in ("data", "before", "after"))
        if type(data) is not float or data != float(a):
            raise Mistake("Value(x).data must be x as a Python float.")
        if type(before) not in (int, float) or before != 0.0:
            raise Mistake("a new Value's grad must be 0.0 until backward() runs.")
        if type(after) not in (int, float) or after != 1.0:
            raise Mistake("Value(x).backward() must leave grad == 1.0 on it (∂x/∂x = 1).")

    return Property("Value", "grad is 0 before backward(), and 1 on the value backward() starts from", p, judge)


def value_pow_rejects_value_exponent(a: float, b: float) -> Property:
    """``Value ** Value`` is outside the contract and raises ``ValueError``."""
    p = Program().forbid(*NO_AUTOGRAD)
    base, exponent = p.call("autograd.Value", float(a)), p.call("autograd.Value", float(b))
    p.call("operator.pow", base, float(b))  # a number exponent works
    p.fetch(result=p.raises("operator.pow", base, exponent))

    def judge(got: dict[str, Any]) -> None:
        if got["result"]["raised"] != "ValueError":
            raise Mistake("Value ** Value must raise ValueError (only int or float exponents are supported): keep the "
                          "given check at the top of __pow__.")

    return Property("Value", "** works with a number exponent and raises ValueError for a Value exponent", p, judge)


VISIBLE_EXPRESSIONS = {
    "a neuron: tanh(w1·x1 + w2·x2 + b)": Expr(
        (2.0, 0.0, -3.0, 1.0, 6.8813735870195432),
        (("mul", 0, 2), ("mul", 1, 3), ("add", 5, 6), ("add", 7, 4), ("tanh", 8)),
    ),
    "every operator, with nodes reused several times": Expr(
        (-1.3, 0.8, 2.1),
        (
            ("mul", 0, 1),  # 3: a·b
            ("pow", 1, 3),  # 4: b³
            ("add", 3, 4),  # 5: d = a·b + b³
            ("sub", 2, 0),  # 6: c − a
            ("tanh", 6),  # 7
            ("exp", 5),  # 8: e^d
            ("add", 1.0, 8),  # 9: 1 + e^d (reflected)
            ("truediv", 7, 9),  # 10
            ("sigmoid", 10),  # 11
            ("mul", 11, 5),  # 12: uses d again
            ("sub", 2.0, 0),  # 13: 2 − a (reflected)
            ("pow", 13, 2),  # 14
            ("sub", 12, 14),  # 15
            ("add", 1, 1.0),  # 16: b + 1
            ("truediv", 3.0, 16),  # 17: 3 / (b + 1) (reflected)
            ("log", 17),  # 18
            ("add", 15, 18),  # 19
            ("neg", 0),  # 20: −a
            ("sub", 19, 20),  # 21: − −a
            ("mul", 0, 0),  # 22: a·a
            ("relu", 22),  # 23
            ("add", 21, 23),  # 24
            ("mul", 2.0, 1),  # 25: 2·b (reflected)
            ("add", 24, 25),  # 26
            ("pow", 2, 1.5),  # 27: c ** 1.5
            ("mul", 26, 27),  # 28
            ("sub", 28, 3.0),  # 29
            ("truediv", 29, 4.0),  # 30
        ),
    ),
}


def value_check() -> list[Property]:
    """The visible check for ``Value``: each operation alone, accumulation, order, then whole expressions."""
    props = [
        value_starts_at_zero(3.0),
        value_operation(("add", 0, 1), (1.5, -2.0)),
        value_operation(("mul", 0, 1), (1.5, -2.0), upstream=None),
        value_operation(("pow", 0, 3), (1.2,)),
        value_operation(("pow", 0, 0.5), (2.25,)),
        value_operation(("neg", 0), (0.7,)),
        value_operation(("sub", 0, 1), (1.5, -2.0)),
        value_operation(("truediv", 0, 1), (1.5, -2.0)),
        value_operation(("add", 2.0, 0), (0.7,)),
        value_operation(("sub", 2.0, 0), (0.7,)),
        value_operation(("mul", 2.0, 0), (0.7,)),
        value_operation(("truediv", 2.0, 0), (0.7,)),
        value_operation(("exp", 0), (0.6,)),
        value_operation(("log", 0), (1.7,)),
        value_operation(("tanh", 0), (0.8,)),
        value_operation(("sigmoid", 0), (-0.9,)),
        value_operation(("relu", 0), (0.4,)),
        value_operation(("relu", 0), (-0.4,)),
        value_accumulates("a + a", 3.0),
        value_accumulates("a * a", 3.0),
        value_accumulates("two uses", 0.5),
        value_backward_order(0.75, chain=2, short_first=True),
        value_pow_rejects_value_exponent(2.0, 3.0),
    ]
    props += [value_matches_torch(expr, f"agrees with PyTorch: {title}") for title, expr in VISIBLE_EXPRESSIONS.items()]
    return props


# ----------------------------------------------------------------------------- numerical_gradient

# Scalar functions of a tensor that a program can hand to numerical_gradient: each is built in the
# learner's process from trusted helpers, and the judge has the same function for torch's autograd.
SCALAR_FUNCTIONS = ("logsumexp", "norm", "det", "fsum")


def scalar_function(p: Program, name: str, ndim: int) -> Ref:
    """Build, inside program ``p``, the scalar function ``name`` of a tensor with ``ndim`` dimensions:
    ``logsumexp`` over all elements, the 2-``norm`` of all elements, ``det`` of a square matrix (all
    0-d tensors), or ``fsum``, Python's ``math.fsum`` of a 1-D tensor, which returns a Python float."""
    if name == "logsumexp":
        return p.call("operator.methodcaller", "logsumexp", list(range(ndim)))
    if name in ("norm", "det"):
        return p.call("operator.methodcaller", name)
    if name == "fsum":
        return p.call("builtins.getattr", p.call("builtins.__import__", "math"), "fsum")
    raise ValueError(f"unknown scalar function {name!r}")


def _judge_function(name: str, ndim: int) -> Any:
    """The same function as ``scalar_function``, for tensors in the judge (differentiable by torch)."""
    return {
        "logsumexp": lambda t: t.logsumexp(tuple(range(ndim))),
        "norm": lambda t: t.norm(),
        "det": lambda t: t.det(),
        "fsum": lambda t: t.sum(),
    }[name]


def _torch_gradient(name: str, x: torch.Tensor) -> torch.Tensor:
    t = x.detach().double().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_judge_function(name, x.ndim)(t), t)
    return grad


def _finite_difference(name: str, x: torch.Tensor, h: float, kind: str = "centred") -> torch.Tensor:
    """The judge's own float64 finite differences: ``centred``, ``forward`` or ``backward``."""
    f = _judge_function(name, x.ndim)
    base = x.detach().double()
    flat = base.reshape(-1)
    grad = torch.zeros(flat.numel(), dtype=torch.float64)
    f0 = float(f(base))
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] = float(flat[i]) + h
        minus[i] = float(flat[i]) - h
        fp, fm = float(f(plus.reshape(base.shape))), float(f(minus.reshape(base.shape)))
        grad[i] = {"centred": (fp - fm) / (2 * h), "forward": (fp - f0) / h, "backward": (f0 - fm) / h}[kind]
    return grad.reshape(base.shape)


def _numerical_gradient_program(name: str, x: torch.Tensor, h: float | None) -> Program:
    p = Program().forbid(*NO_AUTOGRAD)
    xr = p.put(x.clone())
    f = scalar_function(p, name, x.ndim)
    grad = (p.call("autograd.numerical_gradient", f, xr) if h is None
            else p.call("autograd.numerical_gradient", f, xr, h=h))
    return p.fetch(grad=grad, x_after=xr)


def _describe(x: torch.Tensor) -> str:
    layout = "" if x.is_contiguous() else " non-contiguous"
    return f"{'×'.join(map(str, x.shape)) or '0-d'}{layout} {str(x.dtype).removeprefix('torch.')}"


def _count_off(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> int:
    return int((~torch.isclose(got.double(), expected.double(), rtol=rtol, atol=atol)).sum())


def numerical_gradient_matches_autograd(name: str, x: torch.Tensor) -> Property:
    """With the default ``h``, the result agrees with torch's autograd to 1e-6 relative (x in float64)."""

    def judge(got: dict[str, Any]) -> None:
        grad = expect_tensor(got["grad"], "numerical_gradient's result", x)
        expected = _torch_gradient(name, x)
        scale = max(1.0, float(expected.abs().max()))
        off = _count_off(grad, expected, rtol=1e-6, atol=1e-6 * scale)
        if off == 0:
            return
        if float(grad.abs().max()) == 0.0:
            raise Mistake("numerical_gradient returned all zeros: f never saw the perturbed x. Change x's own "
                          "elements (x[index] = old + h) and call f(x), or call f on a perturbed copy; note that "
                          "x.reshape(-1) or x.flatten() may be a copy, so changing it does not change x.")
        if _count_off(grad, 2 * expected, rtol=1e-6, atol=2e-6 * scale) == 0:
            raise Mistake("numerical_gradient is twice the true gradient: the centred difference divides by 2h.")
        raise Mistake(f"numerical_gradient differs from the true gradient at {off} of {x.numel()} elements "
                      f"(f = {name}, x {_describe(x)}, default h).")

    return Property("numerical_gradient", f"agrees with autograd for f = {name} on a {_describe(x)} x",
                    _numerical_gradient_program(name, x, None), judge)


def numerical_gradient_is_centred(name: str, x: torch.Tensor, h: float) -> Property:
    """For a given (large) ``h`` the result is exactly the centred difference ``(f(x+h) − f(x−h)) / 2h``."""

    def judge(got: dict[str, Any]) -> None:
        grad = expect_tensor(got["grad"], "numerical_gradient's result", x)
        expected = _finite_difference(name, x, h)
        scale = max(1.0, float(expected.abs().max()))
        if _count_off(grad, expected, rtol=1e-8, atol=1e-10 * scale) == 0:
            return
        for kind in ("forward", "backward"):
            if _count_off(grad, _finite_difference(name, x, h, kind), rtol=1e-8, atol=1e-10 * scale) == 0:
                raise Mistake(f"numerical_gradient computed a one-sided ({kind}) difference; use the centred one, "
                              "(f(x + h) − f(x − h)) / (2h): its error is O(h²) instead of O(h).")
        if _count_off(grad, 2 * expected, rtol=1e-8, atol=1e-10 * scale) == 0:
            raise Mistake("numerical_gradient is twice the centred difference: divide by 2h, not h.")
        if _count_off(grad, _torch_gradient(name, x), rtol=1e-5, atol=1e-7 * scale) == 0:
            raise Mistake("numerical_gradient ignored its argument h (it used a fixed small step, or no finite "
                          "difference at all): use the h it is given.")
        raise Mistake(f"numerical_gradient is not the centred difference (f(x + h) − f(x − h)) / (2h) for h = {h:g}.")

    return Property("numerical_gradient", f"is the centred difference (f(x+h) − f(x−h)) / 2h for h = {h:g}",
                    _numerical_gradient_program(name, x, h), judge)


def numerical_gradient_keeps_x(name: str, x: torch.Tensor) -> Property:
    """``x`` holds exactly its original values afterwards."""

    def judge(got: dict[str, Any]) -> None:
        after = got["x_after"]
        if isinstance(after, torch.Tensor) and torch.equal(after, x):
            return
        if isinstance(after, torch.Tensor) and after.shape == x.shape and torch.allclose(after, x, rtol=1e-12, atol=0):
            raise Mistake("numerical_gradient left x changed in its last bits: adding h and then subtracting it does "
                          "not restore a float exactly. Save the old value (old = x[index].item()) and put it back "
                          "with x[index] = old.")
        raise Mistake("numerical_gradient left x modified: after perturbing an element, put its original value "
                      "back (x[index] = old) before moving on, or perturb a copy.")

    return Property("numerical_gradient", f"leaves x holding its original values for f = {name}",
                    _numerical_gradient_program(name, x, None), judge)


def numerical_gradient_rejects_bad_h(x: torch.Tensor, h: float = 0.0) -> Property:
    """A positive ``h`` works; ``h <= 0`` raises ``ValueError``."""
    p = Program().forbid(*NO_AUTOGRAD)
    f = scalar_function(p, "norm", x.ndim)
    p.call("autograd.numerical_gradient", f, p.put(x.clone()), h=1e-3)  # a positive h works
    p.fetch(result=p.raises("autograd.numerical_gradient", f, p.put(x.clone()), h=h))

    def judge(got: dict[str, Any]) -> None:
        if got["result"]["raised"] != "ValueError":
            raise Mistake(f"numerical_gradient(f, x, h={h:g}) must raise ValueError: "
                          "keep the given checks of the arguments.")

    return Property("numerical_gradient", f"works for h = 0.001; h = {h:g} raises ValueError", p, judge)


@register("numerical_gradient")
def numerical_gradient_check() -> list[Property]:
    """The visible check for ``numerical_gradient``."""
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=torch.float64)
    square = torch.tensor([[2.0, -1.0, 0.5], [0.3, 1.5, -0.4], [1.0, 0.2, 3.0]], dtype=torch.float64)
    return [
        numerical_gradient_matches_autograd("logsumexp", x),
        numerical_gradient_matches_autograd("det", square),
        numerical_gradient_matches_autograd("fsum", torch.tensor([0.5, -2.0, 3.25], dtype=torch.float64)),
        numerical_gradient_is_centred("norm", x, 0.1),
        numerical_gradient_keeps_x("det", square),
        numerical_gradient_rejects_bad_h(x),
    ]


# ----------------------------------------------------------------------------- relative_error


def _expected_relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float(((a - b).abs() / torch.maximum(torch.full_like(a, 1e-8), a.abs() + b.abs())).max())


def relative_error_value(a: torch.Tensor, b: torch.Tensor) -> Property:
    """``max(|a−b| / max(1e-8, |a|+|b|))``, as a Python float, to 1e-9 relative."""
    p = Program()
    fetch_number(p, "result", p.call("autograd.relative_error", p.put(a.clone()), p.put(b.clone())))

    def judge(got: dict[str, Any]) -> None:
        result = fetched_number(got, "result")  # a NumPy float64 is a float too
        if isinstance(result, torch.Tensor):
            raise Mistake("relative_error must return a Python float, not a tensor: end with float(...) or .item().")
        if type(result) not in (int, float):
            raise Mistake(f"relative_error must return a Python float; got {type(result).__name__}.")
        expected = _expected_relative_error(a, b)
        rtol = 1e-9 if a.dtype == b.dtype == torch.float64 else 1e-5  # float32 input may be compared in float32
        if abs(result - expected) <= rtol * expected + 1e-300:
            return
        if result != result:
            raise Mistake("relative_error returned nan: where a and b are both 0 the denominator is 0; take "
                          "max(1e-8, |a| + |b|) as the denominator.")
        a64, b64 = a.double(), b.double()
        ratio = (a64 - b64).abs() / torch.maximum(torch.full_like(a64, 1e-8), a64.abs() + b64.abs())
        if abs(result - float(ratio.mean())) <= 1e-9 * expected:
            raise Mistake("relative_error averaged over the elements; the contract takes the maximum.")
        alt = (a64 - b64).abs() / torch.maximum(torch.full_like(a64, 1e-8), torch.maximum(a64.abs(), b64.abs()))
        if abs(result - float(alt.max())) <= 1e-9 * float(alt.max()):
            raise Mistake("relative_error divides by max(|a|, |b|); the contract divides by |a| + |b| "
                          "(floored at 1e-8).")
        raise Mistake("relative_error differs from max(|a − b| / max(1e-8, |a| + |b|)); compute it in float64.")

    return Property("relative_error", f"equals max(|a−b| / max(1e-8, |a|+|b|)) on {_describe(a)} tensors", p, judge)


def relative_error_rejects_mismatch(a: torch.Tensor, b: torch.Tensor) -> Property:
    p = Program()
    p.call("autograd.relative_error", p.put(a), p.put(a))  # equal shapes work
    p.fetch(result=p.raises("autograd.relative_error", p.put(a), p.put(b)))

    def judge(got: dict[str, Any]) -> None:
        if got["result"]["raised"] != "ValueError":
            raise Mistake("relative_error of tensors with different shapes must raise ValueError (no broadcasting): "
                          "keep the given shape check.")

    return Property("relative_error", "works on equal shapes; different shapes raise ValueError", p, judge)


@register("relative_error")
def relative_error_check() -> list[Property]:
    """The visible check for ``relative_error``."""
    a = torch.tensor([[1.0, -2.0, 0.0], [3.0, 1e-3, 5.0]], dtype=torch.float64)
    b = torch.tensor([[1.0 + 1e-9, -2.5, 0.0], [3.0, 2e-3, -5.0]], dtype=torch.float64)
    close = torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64)
    return [
        relative_error_value(a, b),
        relative_error_value(close, close * (1 + 1e-10)),
        relative_error_value(torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)),
        relative_error_rejects_mismatch(torch.zeros(3, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)),
    ]


# Registered in the order the notebook meets them (the progress view lists checks in this order).
register("value")(value_check)


# ============================================================================= Neuron, Layer, MLP
#
# The helpers below run in the learner's process (a program calls them as "checks.autograd.<name>"):
# they read a network through the contract's attributes (``layers``, ``neurons``, ``w``, ``b``) and bring
# back plain numbers. The judges rebuild the same network with float64 tensors and torch's autograd.

NET_CLASSES = ("Neuron", "Layer", "MLP")


def _neurons_of(model: Any) -> list[list[Any]]:
    """The neurons of a Neuron, Layer or MLP, layer by layer, through the contract's attributes."""
    if hasattr(model, "layers"):
        return [list(layer.neurons) for layer in model.layers]
    if hasattr(model, "neurons"):
        return [list(model.neurons)]
    return [[model]]


def _is_value(v: Any) -> bool:
    return hasattr(v, "data") and hasattr(v, "grad") and hasattr(v, "backward")


def assign_parameters(model: Any, values: list[list[list[float]]]) -> None:
    """Set every weight and bias of ``model`` to ``values[layer][neuron] = [w..., b]`` where the structure
    allows (a judge diagnoses a wrong structure from ``describe_net``)."""
    try:
        layers = _neurons_of(model)
    except Exception:  # noqa: BLE001  (the judge reports the structure)
        return
    for neurons, given in zip(layers, values, strict=False):
        for neuron, numbers in zip(neurons, given, strict=False):
            w = list(getattr(neuron, "w", []))
            for v, number in zip(w, numbers[:-1], strict=False):
                v.data = float(number)
            if hasattr(neuron, "b"):
                neuron.b.data = float(numbers[-1])


def describe_net(model: Any, params: Any) -> dict[str, Any]:
    """``model``'s structure, weights, biases and their grads as plain data, and where each entry of its
    ``parameters()`` (``params``) sits in that structure: ``listed[k]`` is the slot (weights then bias,
    neuron by neuron, layer by layer), ``-1`` for something that is not one of them, ``-2`` for a list."""
    try:
        layers = _neurons_of(model)
        slots: dict[int, int] = {}
        described = []
        for neurons in layers:
            row = []
            for neuron in neurons:
                w, b = list(neuron.w), neuron.b
                for v in (*w, b):
                    slots.setdefault(id(v), len(slots))
                row.append({"w": [float(v.data) for v in w], "b": float(b.data),
                            "w_grad": [float(v.grad) for v in w], "b_grad": float(b.grad),
                            "nonlin": bool(getattr(neuron, "nonlin", True))})
            described.append(row)
    except Exception as exc:  # noqa: BLE001  (plain data back, for the judge to explain)
        return {"error": f"{type(exc).__name__}: {exc}"[:300], "layers": [], "listed": [], "params_type": ""}
    listed = ([slots.get(id(p), -2 if isinstance(p, (list, tuple)) else -1) for p in params]
              if isinstance(params, (list, tuple)) else [])
    return {"error": None, "layers": described, "listed": listed, "params_type": type(params).__name__,
            "slots": len(slots)}


class _NoBackward:
    """Stands in for a loss when a network's output is not made of Values (the judge says what it was)."""

    def backward(self) -> None:
        return None


def weighted_sum(out: Any, upstream: list[float]) -> Any:
    """``Σ_k upstream[k]·out[k]`` built with the learner's Value operations (``out`` a Value or a list)."""
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    if not outs or not all(_is_value(o) for o in outs) or len(outs) != len(upstream):
        return _NoBackward()
    total = outs[0] * float(upstream[0])
    for o, u in zip(outs[1:], upstream[1:], strict=True):
        total = total + o * float(u)
    return total


def output_data(out: Any) -> dict[str, Any]:
    """What a network returned: ``{"kind": "value" | "list" | "other", "type": ..., "data": [floats]}``."""
    if _is_value(out):
        return {"kind": "value", "type": type(out).__name__, "data": [float(out.data)]}
    if isinstance(out, (list, tuple)) and all(_is_value(o) for o in out):
        return {"kind": "list", "type": type(out).__name__, "data": [float(o.data) for o in out]}
    return {"kind": "other", "type": type(out).__name__, "data": []}


def train_net(model: Any, inputs: list[list[float]], targets: list[float], steps: int, lr: float) -> dict[str, Any]:
    """Full-batch gradient descent on the mean hinge loss ``mean(relu(1 − y·score))`` (labels ±1), through
    the learner's ``model``, ``Value``, ``zero_grad()`` and ``parameters()``: the losses, step by step, and
    the final accuracy."""
    losses: list[float] = []
    for _ in range(steps + 1):
        scores = [model(list(x)) for x in inputs]
        loss = (scores[0] * -float(targets[0]) + 1.0).relu()
        for s, y in zip(scores[1:], targets[1:], strict=True):
            loss = loss + (s * -float(y) + 1.0).relu()
        loss = loss * (1.0 / len(inputs))
        losses.append(float(loss.data))
        if len(losses) > steps:
            break
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
    correct = sum((float(s.data) > 0) == (y > 0) for s, y in zip(scores, targets, strict=True))
    return {"losses": losses, "accuracy": correct / len(inputs)}


def _spec(kind: str, nin: int, sizes: tuple[int, ...], nonlin: bool = True) -> tuple[list[int], list[bool], str]:
    """``(layer sizes including nin, ReLU per layer, the call as the learner wrote it)`` of a network."""
    if kind == "Neuron":
        return [nin, 1], [nonlin], f"Neuron({nin}{'' if nonlin else ', nonlin=False'})"
    if kind == "Layer":
        return [nin, sizes[0]], [nonlin], f"Layer({nin}, {sizes[0]}{'' if nonlin else ', nonlin=False'})"
    return [nin, *sizes], [i != len(sizes) - 1 for i in range(len(sizes))], f"MLP({nin}, {list(sizes)})"


def _net_program(kind: str, nin: int, sizes: tuple[int, ...], nonlin: bool, seed: int) -> tuple[Program, Ref]:
    p = Program().forbid(*NO_AUTOGRAD)
    gen = p.method(p.call("torch.Generator"), "manual_seed", seed)
    if kind == "Neuron":
        model = p.call("autograd.Neuron", nin, nonlin=nonlin, generator=gen)
    elif kind == "Layer":
        model = p.call("autograd.Layer", nin, sizes[0], nonlin=nonlin, generator=gen)
    else:
        model = p.call("autograd.MLP", nin, list(sizes), generator=gen)
    return p, model


def _torch_net(values: list[list[list[float]]], relu: list[bool], x: list[float], upstream: list[float],
               activation: str = "relu", bias: bool = True) -> dict[str, Any]:
    """The network with these parameters in float64 torch: outputs, and the gradients of
    ``Σ upstream·out`` with respect to the input and every parameter. ``activation`` (``relu``, ``tanh``)
    is applied in the layers flagged in ``relu``; ``bias=False`` leaves the biases out."""
    h = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    params = []
    out = h
    for given, nonlin in zip(values, relu, strict=True):
        w = torch.tensor([n[:-1] for n in given], dtype=torch.float64, requires_grad=True)
        b = torch.tensor([n[-1] for n in given], dtype=torch.float64, requires_grad=True)
        params.append((w, b))
        out = w @ out + (b if bias else 0.0 * b)
        if nonlin:
            out = torch.relu(out) if activation == "relu" else torch.tanh(out)
    (out * torch.tensor(upstream, dtype=torch.float64)).sum().backward()
    return {"out": out.detach().tolist(), "x_grad": h.grad.tolist(),
            "grads": [[[*wr, br] for wr, br in zip(w.grad.tolist(), b.grad.tolist(), strict=True)]
                      for w, b in params]}


def _pre_activations(values: list[list[list[float]]], relu: list[bool], x: list[float]) -> list[list[float]]:
    h = torch.tensor(x, dtype=torch.float64)
    pre = []
    for given, nonlin in zip(values, relu, strict=True):
        w = torch.tensor([n[:-1] for n in given], dtype=torch.float64)
        b = torch.tensor([n[-1] for n in given], dtype=torch.float64)
        z = w @ h + b
        pre.append(z.tolist())
        h = torch.relu(z) if nonlin else z
    return pre


def _telling(pre: list[float], nonlin: bool, inactive: bool = False) -> bool:
    """Whether one layer's pre-activations make its mistakes show: none near the kink at 0; a ReLU layer of
    several units with both signs (a missing ReLU shows), a single ReLU unit active (its bias and gradients
    show) or, when ``inactive``, negative (a missing ReLU shows), a linear layer with a negative output (a
    ReLU that should not be there shows)."""
    if any(abs(v) < 0.05 for v in pre):
        return False
    if nonlin:
        return (min(pre) < 0 < max(pre)) if len(pre) > 1 else (pre[0] < 0) == inactive
    return min(pre) < 0


def _random_values(sizes: list[int], relu: list[bool], x: list[float], seed: int,
                   inactive: bool = False) -> list[list[list[float]]]:
    """Parameters in [−1, 1], ``values[layer][neuron] = [w..., b]``, whose every layer is ``_telling``."""
    for attempt in range(500):
        g = torch.Generator().manual_seed(seed + 1000 * attempt)
        values = [[(torch.rand(sizes[i] + 1, generator=g, dtype=torch.float64) * 2 - 1).tolist()
                   for _ in range(sizes[i + 1])] for i in range(len(sizes) - 1)]
        if all(_telling(pre, r, inactive) for pre, r in zip(_pre_activations(values, relu, x), relu, strict=True)):
            return values
    raise ValueError("no parameters found that make every layer's mistakes show: change the seed or the input")


def _judge_structure(net: dict[str, Any], kind: str, sizes: list[int], relu: list[bool], call: str) -> None:
    if net["error"]:
        where = {"MLP": "self.layers, a list of Layers", "Layer": "self.neurons, a list of Neurons",
                 "Neuron": "self.w and self.b"}[kind]
        raise Mistake(f"{call}: its parts could not be read ({net['error']}); keep them where the contract puts "
                      f"them: {where} (each Layer's neurons in self.neurons, each Neuron's w and b).")
    layers = net["layers"]
    if kind == "MLP" and len(layers) != len(sizes) - 1:
        raise Mistake(f"{call} must hold {len(sizes) - 1} layers in self.layers, one per entry of nouts; it holds "
                      f"{len(layers)}.")
    for k, (neurons, nonlin) in enumerate(zip(layers, relu, strict=True)):
        where = f"layer {k + 1} of {call}" if kind == "MLP" else call
        if len(neurons) != sizes[k + 1]:
            raise Mistake(f"{where} must have {sizes[k + 1]} neurons; it has {len(neurons)}"
                          + (": layer k maps nouts[k − 1] inputs (nin for the first) to nouts[k] outputs."
                             if kind == "MLP" else "."))
        fan_in = {len(n["w"]) for n in neurons}
        if fan_in != {sizes[k]}:
            raise Mistake(f"the neurons of {where} must take {sizes[k]} inputs each (the size of the layer's input); "
                          f"they take {sorted(fan_in)}.")
        flags = {n["nonlin"] for n in neurons}
        if kind == "MLP" and flags != {nonlin}:
            if k == len(layers) - 1:
                raise Mistake(f"the last layer of {call} must be linear (nonlin=False): its outputs are scores, of "
                              "either sign; a ReLU there would clip every negative score to 0.")
            raise Mistake(f"layer {k + 1} of {call} is a hidden layer: its neurons need the ReLU (nonlin=True); only "
                          "the last layer is linear.")
        if kind == "Layer" and flags != {nonlin}:
            raise Mistake(f"{call} must pass nonlin={nonlin} on to each of its Neurons.")


def _judge_values(got: dict[str, Any], kind: str, sizes: list[int], relu: list[bool], call: str,
                  values: list[list[list[float]]], x: list[float], upstream: list[float]) -> None:
    result = got["outputs"]
    n_out = sizes[-1]
    if kind != "Neuron":
        if n_out == 1 and result["kind"] == "list":
            raise Mistake(f"{call} returned a list of one Value; with a single output unit it returns the Value "
                          "itself (micrograd's `out[0] if len(out) == 1 else out`), so that a loss can use it as a "
                          "number.")
        if n_out > 1 and result["kind"] != "list":
            raise Mistake(f"{call} must return a list of its {n_out} outputs; it returned a {result['type']}.")
    if (kind == "Neuron" or n_out == 1) and result["kind"] != "value":
        raise Mistake(f"{call} must return a Value; it returned a {result['type']}.")
    if len(result["data"]) != n_out:
        raise Mistake(f"{call} returned {len(result['data'])} outputs; it has {n_out}.")
    expected = _torch_net(values, relu, x, upstream)
    if not all(_close(a, e) for a, e in zip(result["data"], expected["out"], strict=True)):
        linear = [False] * len(relu)
        candidates = [
            (linear, {}, "no ReLU was applied: a Neuron with nonlin=True returns relu(Σ wᵢxᵢ + b)"),
            (relu, {"activation": "tanh"}, "it looks like tanh; the contract's Neuron uses ReLU (micrograd's nn.py): "
                                           "act.relu() when nonlin is true"),
            (relu, {"bias": False}, "the bias b is missing: the sum starts from b, Σ wᵢxᵢ + b"),
            ([True] * len(relu), {}, "the last layer applies a ReLU; it must be linear (nonlin=False for the last "
                                     "layer: its outputs are scores of either sign)" if kind == "MLP" else
                                     "a ReLU was applied although nonlin is False"),
        ]
        for flags, variant, why in candidates:
            if flags == relu and not variant:
                continue
            wrong = _torch_net(values, flags, x, upstream, **variant)["out"]
            if all(_close(a, e) for a, e in zip(result["data"], wrong, strict=True)):
                raise Mistake(f"{call}'s output is wrong: {why}.")
        raise Mistake(f"{call}'s output differs from relu(Σ wᵢxᵢ + b) layer by layer (the last layer linear). "
                      "Each layer's output list is the next layer's input.")
    x_grads = [fetched_number(got, f"x_grad{i}") for i in range(len(x))]
    params_ok = all(_close(g, e) for layer, want in zip(got["net"]["layers"], expected["grads"], strict=True)
                    for neuron, numbers in zip(layer, want, strict=True)
                    for g, e in zip([*neuron["w_grad"], neuron["b_grad"]], numbers, strict=True))
    inputs_ok = all(type(g) in (int, float) and _close(g, e) for g, e in zip(x_grads, expected["x_grad"], strict=True))
    if not params_ok or not inputs_ok:
        which = "the weights' and biases'" if not params_ok else "the inputs'"
        raise Mistake(f"{call}'s output is right but {which} gradients after backward() are not: the network is "
                      "built from your Value operations, so check(\"value\") should fail too; if it passes, make "
                      "sure the output is computed from the Values themselves (not from their .data).")


def net_forward_backward(kind: str, nin: int, sizes: tuple[int, ...], x: list[float], seed: int,
                         nonlin: bool = True, inactive: bool = False) -> Property:
    """``kind`` (``Neuron``, ``Layer``, ``MLP``) has the contract's structure; with parameters set to known
    values its output, and the gradients ``backward()`` gives every input and parameter, agree with
    torch's autograd in float64. ``inactive``: a single ReLU unit's pre-activation is negative."""
    layer_sizes, relu, call = _spec(kind, nin, sizes, nonlin)
    values = _random_values(layer_sizes, relu, x, seed, inactive)
    upstream = [1.0] if layer_sizes[-1] == 1 else [round(0.5 + 0.25 * k, 2) * (-1) ** k
                                                   for k in range(layer_sizes[-1])]
    p, model = _net_program(kind, nin, sizes, nonlin, seed)
    p.call("checks.autograd.assign_parameters", model, values)
    inputs = [p.call("autograd.Value", float(v)) for v in x]
    out = p.method(model, "__call__", inputs)
    p.method(p.call("checks.autograd.weighted_sum", out, upstream), "backward")
    p.fetch(outputs=p.call("checks.autograd.output_data", out),
            net=p.call("checks.autograd.describe_net", model, p.method(model, "parameters")))
    for i, ref in enumerate(inputs):
        fetch_number(p, f"x_grad{i}", p.attr(ref, "grad"))

    def judge(got: dict[str, Any]) -> None:
        _judge_structure(got["net"], kind, layer_sizes, relu, call)
        _judge_values(got, kind, layer_sizes, relu, call, values, x, upstream)

    where = " (a negative pre-activation)" if inactive else ""
    return Property(kind, f"{call}{where}: structure, output and gradients agree with torch's autograd", p, judge)


def net_parameters(kind: str, nin: int, sizes: tuple[int, ...], seed: int, nonlin: bool = True) -> Property:
    """``parameters()`` lists every weight and bias of the network exactly once, and nothing else."""
    layer_sizes, relu, call = _spec(kind, nin, sizes, nonlin)
    p, model = _net_program(kind, nin, sizes, nonlin, seed)
    p.fetch(net=p.call("checks.autograd.describe_net", model, p.method(model, "parameters")))

    def judge(got: dict[str, Any]) -> None:
        net = got["net"]
        _judge_structure(net, kind, layer_sizes, relu, call)
        if net["params_type"] not in ("list", "tuple"):
            raise Mistake(f"{call}.parameters() must return a list of Values; it returned a {net['params_type']}.")
        listed, total = net["listed"], net["slots"]
        if -2 in listed:
            raise Mistake(f"{call}.parameters() holds lists inside its list: flatten it, "
                          "[p for n in self.neurons for p in n.parameters()], so that it is a list of Values.")
        if -1 in listed:
            raise Mistake(f"{call}.parameters() holds something that is not one of the network's own weights or "
                          "biases (a number, or a copy such as Value(w.data)): return the Value objects themselves, "
                          "so that the optimizer's updates reach the network.")
        if len(set(listed)) != len(listed):
            raise Mistake(f"{call}.parameters() lists some parameters more than once: an optimizer would update "
                          "them twice per step. List each weight and bias exactly once.")
        missing = sorted(set(range(total)) - set(listed))
        if missing:
            biases, at = set(), 0
            layer_of = {}
            for k, neurons in enumerate(net["layers"]):
                for neuron in neurons:
                    for _ in neuron["w"]:
                        layer_of[at] = k
                        at += 1
                    biases.add(at)
                    layer_of[at] = k
                    at += 1
            if set(missing) <= biases:
                raise Mistake(f"{call}.parameters() leaves out the biases: each Neuron's parameters are its weights "
                              "and its bias, w + [b]; a bias left out never learns.")
            layers_missing = sorted({layer_of[m] + 1 for m in missing})
            if kind == "MLP" and len(net["layers"]) > 1 and all(
                    all(layer_of[s] + 1 != k for s in listed) for k in layers_missing):
                raise Mistake(f"{call}.parameters() leaves out every parameter of layer(s) {layers_missing}: "
                              "collect those of every layer, [p for layer in self.layers for p in layer.parameters()].")
            raise Mistake(f"{call}.parameters() leaves out {len(missing)} of the network's {total} weights and biases: "
                          "each must be listed once, or it never learns.")

    count = sum((layer_sizes[i] + 1) * layer_sizes[i + 1] for i in range(len(layer_sizes) - 1))
    return Property(kind, f"{call}.parameters() lists all {count} weights and biases, each once", p, judge)


def net_uses_generator(kind: str, nin: int, sizes: tuple[int, ...], seed: int) -> Property:
    """Two networks built from generators in the same state are identical; from another state, different."""
    p = Program().forbid(*NO_AUTOGRAD)
    nets = {}
    for name, s in (("first", seed), ("again", seed), ("other", seed + 1)):
        p.call("torch.manual_seed", 1234)  # torch's global generator in the same state before each network
        gen = p.method(p.call("torch.Generator"), "manual_seed", s)
        if kind == "Layer":
            model = p.call("autograd.Layer", nin, sizes[0], generator=gen)
        else:
            model = p.call("autograd.MLP", nin, list(sizes), generator=gen)
        nets[name] = p.call("checks.autograd.describe_net", model, [])
    p.fetch(**nets)
    call = _spec(kind, nin, sizes)[2]

    def judge(got: dict[str, Any]) -> None:
        def weights(net: dict[str, Any]) -> list[float]:
            return [v for layer in net["layers"] for n in layer for v in (*n["w"], n["b"])]

        if any(got[k]["error"] for k in got):
            _judge_structure(got["first"], kind, *_spec(kind, nin, sizes)[:2], call)
        if weights(got["first"]) != weights(got["again"]):
            raise Mistake(f"two {call}s built from generators in the same state differ: every weight must be drawn "
                          "from the generator given, and only from it.")
        if weights(got["first"]) == weights(got["other"]):
            raise Mistake(f"two {call}s built from generators in different states are identical: the weights do not "
                          "come from the generator given. Pass `generator` on to every Layer and Neuron you create "
                          "(a Neuron given none draws from torch's global generator).")

    return Property(kind, f"{call} built from the same generator state is the same network", p, judge)


def moons(n: int, seed: int, noise: float = 0.1) -> tuple[list[list[float]], list[float]]:
    """``n`` points of two interleaving half circles (scikit-learn's ``make_moons``), labels ±1."""
    draws = torch.Generator().manual_seed(seed)
    half = n // 2
    t = torch.rand(n, generator=draws, dtype=torch.float64) * math.pi
    upper = torch.arange(n) < half
    xs = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    ys = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    points = torch.stack([xs, ys], 1) + noise * torch.randn(n, 2, generator=draws, dtype=torch.float64)
    labels = torch.where(upper, 1.0, -1.0)
    return points.tolist(), labels.tolist()


def net_trains(nin_hidden: tuple[int, ...], n: int, seed: int, steps: int = 40, lr: float = 0.5) -> Property:
    """An ``MLP(2, [*hidden, 1])`` trained by gradient descent on a small two-moons set, through the learner's
    ``parameters()``, ``zero_grad()`` and ``backward()``, brings its hinge loss down by a quarter at least
    (a correct network halves it, or better, from almost any start)."""
    xs, ys = moons(n, seed)
    p = Program().forbid(*NO_AUTOGRAD)
    p.timeout = 60.0
    gen = p.method(p.call("torch.Generator"), "manual_seed", seed)
    model = p.call("autograd.MLP", 2, [*nin_hidden, 1], generator=gen)
    p.fetch(result=p.call("checks.autograd.train_net", model, xs, ys, steps, lr))
    call = f"MLP(2, {[*nin_hidden, 1]})"

    def judge(got: dict[str, Any]) -> None:
        losses = got["result"]["losses"] if isinstance(got["result"], dict) else None
        if not isinstance(losses, list) or not all(type(v) is float and math.isfinite(v) for v in losses):
            raise Mistake(f"training {call} gave a loss that is not a finite number.")
        if losses[-1] == losses[0]:
            raise Mistake(f"training {call} did not change its loss ({losses[0]:.3f}): the updates "
                          "p.data −= lr·p.grad never reached the network. parameters() must return the network's "
                          "own Values (not copies), and backward() must fill their grads.")
        if not losses[-1] <= 0.75 * losses[0]:
            raise Mistake(f"{call} did not learn: gradient descent took its hinge loss from {losses[0]:.3f} only to "
                          f"{losses[-1]:.3f} in {steps} steps (a correct network loses a quarter at least). If the "
                          "other properties pass, check that parameters() lists every weight and bias.")

    return Property("MLP", f"{call} learns a two-moons toy set: its loss falls by a quarter or more in {steps} steps",
                    p, judge)


@register("mlp")
def mlp_check() -> list[Property]:
    """The visible check for ``Neuron``, ``Layer`` and ``MLP``."""
    return [
        net_forward_backward("Neuron", 3, (), [0.5, -1.2, 2.0], seed=1),
        net_forward_backward("Neuron", 3, (), [0.5, -1.2, 2.0], seed=1, inactive=True),
        net_forward_backward("Neuron", 2, (), [1.5, -0.5], seed=2, nonlin=False),
        net_parameters("Neuron", 3, (), seed=3),
        net_forward_backward("Layer", 3, (4,), [0.7, -0.3, 1.1], seed=4),
        net_forward_backward("Layer", 2, (1,), [0.4, -0.9], seed=5, nonlin=False),
        net_parameters("Layer", 3, (4,), seed=6),
        net_uses_generator("Layer", 2, (3,), seed=7),
        net_forward_backward("MLP", 2, (4, 3, 1), [0.8, -1.1], seed=8),
        net_forward_backward("MLP", 3, (4, 2), [1.0, 0.5, -0.7], seed=9),
        net_parameters("MLP", 2, (4, 3, 1), seed=10),
        net_uses_generator("MLP", 2, (4, 1), seed=11),
        net_trains((8,), n=16, seed=12),
    ]
