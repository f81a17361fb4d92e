"""A scalar autograd engine, the tools that check any gradient numerically, and a neural net on the engine
(chapter 2).

``Value`` wraps one Python float and remembers the operation that produced it, so that
``loss.backward()`` can apply the chain rule through the whole computation, as PyTorch's autograd
does for tensors (the design is Andrej Karpathy's micrograd). ``numerical_gradient`` and
``relative_error`` are how you convince yourself that a gradient is right: by comparing it with
finite differences computed in float64. ``Neuron``, ``Layer`` and ``MLP`` (micrograd's ``nn``) build a
network out of ``Value`` s that trains with nothing but your ``backward()``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence

import torch

from exercises.kit.validate import require_float_tensor, require_generator, require_int_at_least, require_same_shape


def _as_value(x: Value | float) -> Value:
    """``x`` itself if it is a ``Value``, else a new constant ``Value(x)``."""
    return x if isinstance(x, Value) else Value(x)


class Value:
    """A scalar that remembers how it was computed, so that ``backward()`` can apply the chain rule.

    Attributes:
        data: the value, a Python ``float``.
        grad: ``∂L/∂self`` once ``L.backward()`` has run on an expression ``L`` that uses this
            value; ``0.0`` until then. Gradients **accumulate** (``+=``) over every use of a value.
        _prev: the ``Value`` objects this one was computed from (empty for a leaf).
        _op: the operation that produced it (``"+"``, ``"*"``, ``"tanh"``, ...), for drawing graphs.
        _backward: a function of no arguments that adds this node's contribution to its inputs'
            ``grad``: ``child.grad += (∂self/∂child) · self.grad``. A leaf's does nothing.

    Every operation returns a new ``Value`` whose ``_backward`` is set by that operation.
    Python numbers mix in freely: ``2 * a``, ``a - 1``, ``1 / a`` and ``a ** 3`` all work.

    Explained in course/02_backprop.ipynb, section "A scalar autograd engine".
    """

    def __init__(self, data: float, _children: tuple[Value, ...] = (), _op: str = "") -> None:
        if isinstance(data, bool) or not isinstance(data, numbers.Real):
            raise ValueError(f"Value holds a real number (int or float), got {type(data).__name__}")
        self.data = float(data)
        self.grad = 0.0

        def _backward() -> None:  # a leaf has no inputs to pass a gradient to
            return None

        self._backward = _backward
        self._prev = tuple(_children)
        self._op = _op

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    # ------------------------------------------------------------------ the two basic operations

    def __add__(self, other: Value | float) -> Value:
        """``out = self + other``. Local derivatives: ``∂out/∂self = ∂out/∂other = 1``, so
        ``_backward`` adds ``out.grad`` to both inputs' ``grad``.

        Explained in course/02_backprop.ipynb, section "Addition and multiplication".
        """
        other = _as_value(other)
        ### BEGIN SOLUTION
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out
        ### END SOLUTION

    def __mul__(self, other: Value | float) -> Value:
        """``out = self · other``. Local derivatives: ``∂out/∂self = other``, ``∂out/∂other = self``.

        Explained in course/02_backprop.ipynb, section "Addition and multiplication".
        """
        other = _as_value(other)
        ### BEGIN SOLUTION
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out
        ### END SOLUTION

    # ------------------------------------------------------------------ powers and functions

    def __pow__(self, exponent: int | float) -> Value:
        """``out = self ** exponent`` for a constant ``int`` or ``float`` exponent ``n``.
        Local derivative: ``∂out/∂self = n · self^(n−1)``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float)):
            raise ValueError(f"the exponent must be an int or a float constant, got {type(exponent).__name__}")
        ### BEGIN SOLUTION
        out = Value(self.data**exponent, (self,), f"**{exponent:g}")

        def _backward() -> None:
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out
        ### END SOLUTION

    def exp(self) -> Value:
        """``out = e^self``. Local derivative: ``∂out/∂self = e^self = out``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out
        ### END SOLUTION

    def log(self) -> Value:
        """``out = ln(self)`` for ``self > 0``. Local derivative: ``∂out/∂self = 1 / self``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        if self.data <= 0:
            raise ValueError(f"log needs a positive value, got {self.data!r}")
        ### BEGIN SOLUTION
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / self.data

        out._backward = _backward
        return out
        ### END SOLUTION

    def tanh(self) -> Value:
        """``out = tanh(self)``. Local derivative: ``∂out/∂self = 1 − tanh²(self) = 1 − out²``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = _backward
        return out
        ### END SOLUTION

    def sigmoid(self) -> Value:
        """``out = σ(self) = 1 / (1 + e^−self)``. Local derivative: ``∂out/∂self = σ·(1 − σ)``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        x = self.data
        s = 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))  # no overflow either way
        out = Value(s, (self,), "sigmoid")

        def _backward() -> None:
            self.grad += s * (1 - s) * out.grad

        out._backward = _backward
        return out
        ### END SOLUTION

    def relu(self) -> Value:
        """``out = max(0, self)``. Local derivative: 1 where ``self > 0``, else 0 (also at exactly 0).

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward() -> None:
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out
        ### END SOLUTION

    # ------------------------------------------------------------------ built from the others

    def __neg__(self) -> Value:
        """``-self``, as ``self · (−1)``: no new derivative to write.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        return self * -1
        ### END SOLUTION

    def __sub__(self, other: Value | float) -> Value:
        """``self − other``, as ``self + (−other)``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        return self + (-other)
        ### END SOLUTION

    def __truediv__(self, other: Value | float) -> Value:
        """``self / other``, as ``self · other^(−1)``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        return self * other**-1
        ### END SOLUTION

    def __radd__(self, other: float) -> Value:
        """``other + self`` for a Python number ``other`` (Python calls this after ``float + Value`` fails).

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        return self + other
        ### END SOLUTION

    def __rsub__(self, other: float) -> Value:
        """``other − self`` for a Python number ``other``. Mind the order: it is not ``self − other``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        return (-self) + other
        ### END SOLUTION

    def __rmul__(self, other: float) -> Value:
        """``other · self`` for a Python number ``other``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        return self * other
        ### END SOLUTION

    def __rtruediv__(self, other: float) -> Value:
        """``other / self`` for a Python number ``other``, as ``other · self^(−1)``.

        Explained in course/02_backprop.ipynb, section "More operations".
        """
        ### BEGIN SOLUTION
        return self**-1 * other
        ### END SOLUTION

    # ------------------------------------------------------------------ the backward pass

    def backward(self) -> None:
        """Backpropagate from this value: set ``self.grad = 1`` (``∂self/∂self``), then call every
        node's ``_backward`` in **reverse topological order**, so that a node passes its gradient on
        only after every node that uses it has added its share. Each node's ``_backward`` runs
        exactly once. Gradients accumulate into ``grad``: call ``backward`` on a fresh expression
        (or reset ``grad`` to 0) to start again.

        Explained in course/02_backprop.ipynb, section "Topological order".
        """
        ### BEGIN SOLUTION
        # Depth-first search that appends a node after all of its inputs (a topological order).
        # A loop with an explicit stack rather than recursion: deep graphs do not hit Python's limit.
        order: list[Value] = []
        visited: set[Value] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()
        ### END SOLUTION


def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor | float], x: torch.Tensor,
                       h: float = 1e-6) -> torch.Tensor:
    """Centred finite differences of a scalar function ``f`` at ``x``.

    For each element ``i`` of ``x``::

        grad[i] = (f(x + h·e_i) − f(x − h·e_i)) / (2h)

    where ``e_i`` is 1 at ``i`` and 0 elsewhere. The error is ``O(h²)`` (a one-sided difference's
    is ``O(h)``), plus rounding of about ``ε·|f| / h``: in float64 (``ε ≈ 1e-16``) ``h = 1e-6`` gives
    about 1e-10; in float32 (``ε ≈ 1e-7``) the same ``h`` gives nonsense, so check gradients in float64.

    Args:
        f: a function of a tensor shaped like ``x`` returning a scalar (a 0-d tensor or a Python number).
        x: a floating-point tensor of any shape (float64 for an accurate answer). You may change
            its elements while you work, but it must hold exactly its original values afterwards.
        h: the step, ``h > 0``.

    Returns:
        A tensor with the shape, dtype and device of ``x``.

    Explained in course/02_backprop.ipynb, section "Finite differences".
    """
    if not callable(f):
        raise ValueError(f"f must be a function of a tensor, got {type(f).__name__}")
    require_float_tensor("x", x)
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not h > 0:
        raise ValueError(f"h must be a positive number, got {h!r}")
    ### BEGIN SOLUTION
    grad = torch.zeros_like(x)
    for index in itertools.product(*(range(n) for n in x.shape)):
        old = x[index].item()
        x[index] = old + h
        f_plus = float(f(x))
        x[index] = old - h
        f_minus = float(f(x))
        x[index] = old  # put back exactly what was there (old + h − h may differ in the last bit)
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad
    ### END SOLUTION


def _as_tensor(name: str, value: object) -> torch.Tensor:
    """``value`` itself if it is a tensor, a float64 0-d tensor if it is a real number; else ``ValueError``."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a tensor or a number, got {type(value).__name__}")
    return torch.tensor(float(value), dtype=torch.float64)


def relative_error(a: torch.Tensor | float, b: torch.Tensor | float) -> float:
    """The largest elementwise relative error between ``a`` and ``b``::

        max over elements of |a − b| / max(1e-8, |a| + |b|)

    computed in float64. 0 means identical. An element that is ``(1 + δ)`` times the other scores
    ``|δ| / (2 + δ) ≈ |δ| / 2`` (a factor 2: 1/3; a 0.1 % slip: 5e-4), while a correct gradient
    against float64 finite differences scores about 1e-10 divided by the size of its smallest entries:
    the course's pass mark is 1e-6. The 1e-8 floor makes two zeros agree instead of giving 0/0.

    Args:
        a, b: tensors of the same shape (or Python numbers), any floating dtype.

    Returns:
        A Python ``float`` (0.0 for empty tensors).

    Explained in course/02_backprop.ipynb, section "Finite differences".
    """
    a, b = _as_tensor("a", a), _as_tensor("b", b)
    require_same_shape("b", b, "a", a)
    ### BEGIN SOLUTION
    a64, b64 = (t.detach().to("cpu", torch.float64) for t in (a, b))  # on the CPU: MPS has no float64
    if a64.numel() == 0:
        return 0.0
    denominator = (a64.abs() + b64.abs()).clamp(min=1e-8)
    return float(((a64 - b64).abs() / denominator).max())
    ### END SOLUTION


# ----------------------------------------------------------------------------- a neural net on Value


class Module:
    """micrograd's base class (given): ``parameters()`` lists the trainable ``Value`` s, ``zero_grad()``
    sets their ``grad`` back to 0 before the next ``backward()``."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self) -> list[Value]:
        return []


def _optional_generator(generator: torch.Generator | None) -> torch.Generator | None:
    return None if generator is None else require_generator("generator", generator)


class Neuron(Module):
    """One unit: ``neuron(x) = relu(Σᵢ wᵢ·xᵢ + b)``, or ``Σᵢ wᵢ·xᵢ + b`` itself when ``nonlin`` is false.

    Attributes (given): ``w``, a list of ``nin`` ``Value`` s drawn uniformly from ``[−1, 1]`` with
    ``generator`` (torch's global generator when it is ``None``); ``b``, ``Value(0.0)``; ``nonlin``.

    Explained in course/02_backprop.ipynb, section "A neural net on Value".
    """

    def __init__(self, nin: int, nonlin: bool = True, generator: torch.Generator | None = None) -> None:
        require_int_at_least("nin", nin, 1)
        draws = torch.rand(nin, generator=_optional_generator(generator), dtype=torch.float64) * 2 - 1
        self.w = [Value(float(v)) for v in draws]
        self.b = Value(0.0)
        self.nonlin = bool(nonlin)

    def __call__(self, x: Sequence[Value | float]) -> Value:
        """The neuron's output, a ``Value``, for one input ``x``: a sequence of ``nin`` numbers or ``Value`` s
        (or one of them alone when ``nin`` is 1).

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        x = [x] if isinstance(x, (Value, numbers.Real)) else list(x)  # one number: a one-input neuron's input
        if len(x) != len(self.w):
            raise ValueError(f"this neuron takes {len(self.w)} inputs; got {len(x)}")
        ### BEGIN SOLUTION
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act
        ### END SOLUTION

    def parameters(self) -> list[Value]:
        """Every weight and the bias, each once.

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        ### BEGIN SOLUTION
        return [*self.w, self.b]
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons side by side, each seeing the whole input. Attribute ``neurons``: the list of them,
    each ``Neuron(nin, nonlin, generator)``.

    Explained in course/02_backprop.ipynb, section "A neural net on Value".
    """

    def __init__(self, nin: int, nout: int, nonlin: bool = True, generator: torch.Generator | None = None) -> None:
        """Create ``self.neurons``, drawing every neuron's weights from ``generator``.

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        require_int_at_least("nin", nin, 1)
        require_int_at_least("nout", nout, 1)
        generator = _optional_generator(generator)
        ### BEGIN SOLUTION
        self.neurons = [Neuron(nin, nonlin=nonlin, generator=generator) for _ in range(nout)]
        ### END SOLUTION

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        """The list of the neurons' outputs for the input ``x``; the single ``Value`` when there is one
        neuron (as micrograd does, so that a network ending in one unit returns a number).

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        ### BEGIN SOLUTION
        out = [neuron(x) for neuron in self.neurons]
        return out[0] if len(out) == 1 else out
        ### END SOLUTION

    def parameters(self) -> list[Value]:
        """Every neuron's parameters, in one flat list.

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        ### BEGIN SOLUTION
        return [p for neuron in self.neurons for p in neuron.parameters()]
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: ``layers`` of sizes ``nin → nouts[0] → … → nouts[−1]``, with a ReLU in
    every layer but the last, which is linear (its outputs are scores, of any sign).

    Explained in course/02_backprop.ipynb, section "A neural net on Value".
    """

    def __init__(self, nin: int, nouts: Sequence[int], generator: torch.Generator | None = None) -> None:
        """Create ``self.layers``: ``Layer(nin, nouts[0])``, ``Layer(nouts[0], nouts[1])``, …, the last one
        with ``nonlin=False``, all drawing from ``generator``.

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        require_int_at_least("nin", nin, 1)
        if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence) or not nouts:
            raise ValueError(f"nouts must be a non-empty list of layer sizes, got {nouts!r}")
        for size in nouts:
            require_int_at_least("each layer size in nouts", size, 1)
        generator = _optional_generator(generator)
        ### BEGIN SOLUTION
        sizes = [nin, *nouts]
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != len(nouts) - 1, generator=generator)
                       for i in range(len(nouts))]
        ### END SOLUTION

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        """The network's output for one input ``x`` (``nin`` numbers or ``Value`` s): each layer's output is
        the next one's input; a single ``Value`` when the last layer has one unit.

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def parameters(self) -> list[Value]:
        """Every layer's parameters, in one flat list.

        Explained in course/02_backprop.ipynb, section "A neural net on Value".
        """
        ### BEGIN SOLUTION
        return [p for layer in self.layers for p in layer.parameters()]
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
