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
