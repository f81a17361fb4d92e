"""The properties of chapter 2's ``exercises.autograd`` accept every correct implementation and name
each realistic mistake, in the visible checks and in the hidden tests alike.

Each variant is the reference with one change. The properties run in-process here, exactly as the
visible check runs them; test_layers_grading.py runs the hidden suite through the real sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from exercises.checks import Property, evaluate
from exercises.checks.autograd import (
    describe_net,
    mlp_check,
    net_trains,
    numerical_gradient_check,
    relative_error_check,
    value_check,
)
from exercises.checks.program import Program
from grading import PROJECT_ROOT
from grading.stubs import strip_markers
from grading.suite import load_suite
from tests.conftest import forget_module, module_installer

REFERENCE = strip_markers((PROJECT_ROOT / "solutions" / "autograd.py").read_text(encoding="utf-8"))
STUB = (PROJECT_ROOT / "exercises" / "autograd.py").read_text(encoding="utf-8")
CHECKS = {"Value": value_check, "numerical_gradient": numerical_gradient_check, "relative_error": relative_error_check,
          "Neuron": mlp_check, "Layer": mlp_check, "MLP": mlp_check}
NETS = ("Neuron", "Layer", "MLP")
# A mistake in an exercise may cost those built on it: the network classes are built from Value and from each other.
BUILT_ON = {"Neuron": {"Value"}, "Layer": {"Value", "Neuron"}, "MLP": {"Value", "Neuron", "Layer"}}
TRAINS = "learns a two-moons"  # the training properties: seconds each, run by the tests that need them


def variant(*changes: tuple[str, str]) -> str:
    """The reference with each ``(old, new)`` replaced once: a mistake or a correct alternative."""
    source = REFERENCE
    for old, new in changes:
        assert old in source, f"the reference no longer contains {old!r}; update the variant"
        source = source.replace(old, new, 1)
    return source


def hidden_properties(exercise: str, training: bool = False) -> list[Property]:
    props = [t.build() for t in load_suite() if t.exercise == exercise and t.name.startswith("autograd.")]
    return [p for p in props if training or TRAINS not in p.title]


def visible_properties(exercise: str, training: bool = False) -> list[Property]:
    return [p for p in CHECKS[exercise]() if p.exercise == exercise and (training or TRAINS not in p.title)]


def all_properties(exercise: str, training: bool = False) -> list[Property]:
    return visible_properties(exercise, training) + hidden_properties(exercise, training)


@pytest.fixture
def install(tmp_path: Path, monkeypatch) -> Iterator[Callable[[str], Callable[[Program], dict[str, Any]]]]:
    """Install an autograd.py source as exercises.autograd (the network checks' helpers live in
    exercises.checks); return a program runner for it."""
    yield module_installer("autograd", tmp_path, monkeypatch)
    forget_module("autograd")


# ----------------------------------------------------------------------------- correct alternatives

RECURSIVE_TOPO = '''        order: list[Value] = []
        visited: set[Value] = set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                order.append(v)

        build(self)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()
'''
BACKWARD_BODY = REFERENCE[REFERENCE.index("        # Depth-first search that appends"):
                          REFERENCE.index("\n\ndef numerical_gradient")] + "\n"
SIGMOID_BODY = REFERENCE[REFERENCE.index("        x = self.data\n        s = 1 / (1 + math.exp"):
                         REFERENCE.index("    def relu(self)")]
TANH_LINE = "        t = math.tanh(self.data)\n"
GRADIENT_LOOP = REFERENCE[REFERENCE.index("    grad = torch.zeros_like(x)\n    for index"):
                          REFERENCE.index("\n\ndef _as_tensor")] + "\n"
NETWORK_SECTION = REFERENCE.index("\n\n# " + "-" * 77 + " a neural net on Value")
RELATIVE_BODY = REFERENCE[REFERENCE.index("    a64, b64 = (t.detach()"):NETWORK_SECTION]

CORRECT = {
    "reference": REFERENCE,
    "micrograd's recursive topological sort": variant((BACKWARD_BODY, RECURSIVE_TOPO)),
    "Kahn's algorithm: breadth-first, a node queued once all its users have run": variant((BACKWARD_BODY,
        "        from collections import deque\n"
        "        users: dict[Value, int] = {}\n        stack, seen = [self], {self}\n"
        "        while stack:\n            node = stack.pop()\n            for child in node._prev:\n"
        "                users[child] = users.get(child, 0) + 1\n                if child not in seen:\n"
        "                    seen.add(child)\n                    stack.append(child)\n"
        "        self.grad = 1.0\n        queue = deque([self])\n        while queue:\n"
        "            node = queue.popleft()\n            node._backward()\n            for child in node._prev:\n"
        "                users[child] -= 1\n                if users[child] == 0:\n"
        "                    queue.append(child)\n")),
    "children kept in a set, as micrograd does": variant(("        self._prev = tuple(_children)\n",
                                                          "        self._prev = set(_children)\n")),
    "sigmoid built from tanh": variant((SIGMOID_BODY, "        return ((self * 0.5).tanh() + 1) * 0.5\n\n")),
    "sigmoid as 1 / (1 + exp(-x))": variant(("        s = 1 / (1 + math.exp(-x)) if x >= 0 "
                                             "else math.exp(x) / (1 + math.exp(x))",
                                             "        s = 1 / (1 + math.exp(-x))")),
    "tanh from exp, as micrograd does": variant(
        (TANH_LINE, "        t = (math.exp(2 * self.data) - 1) / (math.exp(2 * self.data) + 1)\n")),
    "division with its own derivative": variant(("        return self * other**-1\n",
                                                 "        other = _as_value(other)\n"
                                                 "        out = Value(self.data / other.data, (self, other), '/')\n\n"
                                                 "        def _backward():\n"
                                                 "            self.grad += out.grad / other.data\n"
                                                 "            other.grad += -self.data / other.data**2 * out.grad\n\n"
                                                 "        out._backward = _backward\n"
                                                 "        return out\n")),
    "subtraction via multiplication by -1": variant(("        return self + (-other)\n",
                                                     "        return self + other * -1\n")),
    "reflected ops through Value(other)": variant(("        return (-self) + other\n",
                                                   "        return Value(other) - self\n"),
                                                  ("        return self**-1 * other\n",
                                                   "        return Value(other) / self\n")),
    "numerical gradient on a perturbed copy": variant((GRADIENT_LOOP,
        "    grad = torch.zeros_like(x)\n"
        "    for index in itertools.product(*(range(n) for n in x.shape)):\n"
        "        plus, minus = x.clone(), x.clone()\n"
        "        plus[index] += h\n"
        "        minus[index] -= h\n"
        "        grad[index] = (f(plus) - f(minus)) / (2 * h)\n"
        "    return grad\n")),
    "relative error without float64 conversion": variant((RELATIVE_BODY,
        "    if a.numel() == 0:\n        return 0.0\n"
        "    return ((a - b).abs() / torch.clamp(a.abs() + b.abs(), min=1e-8)).max().item()\n")),
    # numpy.float64 is a float (a subclass): grads and results of that type are floats for the contract.
    "NumPy's tanh and exp inside Value (grads become numpy.float64)": variant(
        ("import torch\n", "import numpy as np\nimport torch\n"),
        (TANH_LINE, "        t = np.tanh(self.data)\n"),
        ("            self.grad += out.data * out.grad\n", "            self.grad += np.exp(self.data) * out.grad\n")),
    "relative error in NumPy, returning a numpy.float64": variant((RELATIVE_BODY,
        "    import numpy as np\n    a_, b_ = a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()\n"
        "    if a_.size == 0:\n        return 0.0\n"
        "    return np.max(np.abs(a_ - b_) / np.maximum(1e-8, np.abs(a_) + np.abs(b_)))\n")),
}


@pytest.mark.parametrize("name", CORRECT)
def test_correct_implementations_pass_every_visible_and_hidden_property(name: str, install) -> None:
    run = install(CORRECT[name])
    for exercise in CHECKS:
        for prop in all_properties(exercise):
            assert evaluate(prop, run) == (True, ""), f"{name}: {prop.exercise}: {prop.title}"


# ----------------------------------------------------------------------------- realistic mistakes

ADD_BACKWARD = "            self.grad += out.grad\n            other.grad += out.grad\n"
MUL_BACKWARD = "            self.grad += other.data * out.grad\n            other.grad += self.data * out.grad\n"

MISTAKES: dict[str, tuple[str, str, str]] = {  # name -> (source, exercise, words the diagnosis must contain)
    "= instead of += in addition": (variant((ADD_BACKWARD, "            self.grad = out.grad\n"
                                                           "            other.grad = out.grad\n")),
                                    "Value", "holds only one use's contribution"),
    "= instead of += in multiplication": (variant((MUL_BACKWARD, "            self.grad = other.data * out.grad\n"
                                                                 "            other.grad = self.data * out.grad\n")),
                                          "Value", "holds only one use's contribution"),
    "naive breadth-first order (_backward as each node leaves the queue)": (variant((BACKWARD_BODY,
        "        from collections import deque\n"
        "        self.grad = 1.0\n        queue, seen = deque([self]), {self}\n"
        "        while queue:\n            node = queue.popleft()\n            node._backward()\n"
        "            for child in node._prev:\n                if child not in seen:\n"
        "                    seen.add(child)\n                    queue.append(child)\n")),
        "Value", "ran before every node using it had added its share"),
    "depth-first without a visited set or topological order": (variant((BACKWARD_BODY,
        "        self.grad = 1.0\n        stack = [self]\n"
        "        while stack:\n            node = stack.pop()\n            node._backward()\n"
        "            stack.extend(node._prev)\n")),
        "Value", "ran more than once"),
    "topological order not reversed": (variant(("        for node in reversed(order):\n",
                                                "        for node in order:\n")),
                                       "Value", "reverse topological order"),
    "backward never seeds the output's grad": (variant(("        self.grad = 1.0\n        for node",
                                                        "        for node")),
                                               "Value", "must set the output's grad to 1.0"),
    "tanh derivative from the input": (variant(("            self.grad += (1 - t * t) * out.grad\n",
                                                "            self.grad += (1 - self.data**2) * out.grad\n")),
                                       "Value", "1 − x² with the input x"),
    "tanh derivative without the square": (variant(("            self.grad += (1 - t * t) * out.grad\n",
                                                    "            self.grad += (1 - t) * out.grad\n")),
                                           "Value", "without the square"),
    "tanh without the chain rule": (variant(("            self.grad += (1 - t * t) * out.grad\n",
                                             "            self.grad += 1 - t * t\n")),
                                    "Value", "multiply it by out.grad"),
    "sigmoid derivative is sigma": (variant(("            self.grad += s * (1 - s) * out.grad\n",
                                             "            self.grad += s * out.grad\n")),
                                    "Value", "σ(x) alone"),
    "log derivative is log": (variant(("            self.grad += out.grad / self.data\n",
                                       "            self.grad += math.log(self.data) * out.grad\n")),
                              "Value", "ln(x); the derivative of ln(x) is 1/x"),
    "log derivative divides by the output": (variant(("            self.grad += out.grad / self.data\n",
                                                      "            self.grad += out.grad / out.data\n")),
                                             "Value", "dividing by the output"),
    "power rule without n": (variant(("            self.grad += exponent * self.data ** (exponent - 1) * out.grad\n",
                                      "            self.grad += self.data ** (exponent - 1) * out.grad\n")),
                             "Value", "without the factor n"),
    "power rule keeps the exponent": (variant(
        ("            self.grad += exponent * self.data ** (exponent - 1) * out.grad\n",
         "            self.grad += exponent * self.data**exponent * out.grad\n")),
                                      "Value", "the exponent of the derivative is n − 1"),
    "exp derivative is x": (variant(("            self.grad += out.data * out.grad\n",
                                     "            self.grad += self.data * out.grad\n")),
                            "Value", "the derivative of e^x is e^x"),
    "multiplication passes each input its own value": (variant(
        (MUL_BACKWARD, "            self.grad += self.data * out.grad\n"
                       "            other.grad += other.data * out.grad\n")),
                                                       "Value", "the *other* input"),
    "reflected subtraction in the wrong order": (variant(("        return (-self) + other\n",
                                                          "        return self - other\n")),
                                                 "Value", "reflected −"),
    "no __rmul__": (variant(('''    def __rmul__(self, other: float) -> Value:''',
                             '''    def _unused(self, other: float) -> Value:''')),
                    "Value", "unsupported operand"),
    "forward difference": (variant(("        grad[index] = (f_plus - f_minus) / (2 * h)\n",
                                    "        grad[index] = (f_plus - float(f(x))) / h\n")),
                           "numerical_gradient", "one-sided (forward)"),
    "divides by h instead of 2h": (variant(("        grad[index] = (f_plus - f_minus) / (2 * h)\n",
                                            "        grad[index] = (f_plus - f_minus) / h\n")),
                                   "numerical_gradient", "divide by 2h"),
    "ignores h": (variant(("        x[index] = old + h\n", "        x[index] = old + 1e-5\n"),
                          ("        x[index] = old - h\n", "        x[index] = old - 1e-5\n"),
                          ("        grad[index] = (f_plus - f_minus) / (2 * h)\n",
                           "        grad[index] = (f_plus - f_minus) / 2e-5\n")),
                  "numerical_gradient", "ignored its argument h"),
    "x not restored": (variant(("        x[index] = old  # put back", "        # put back")),
                       "numerical_gradient", "left x modified"),
    "x restored by adding h back": (variant(("        x[index] = old + h\n", "        x[index] += h\n"),
                                            ("        x[index] = old - h\n", "        x[index] -= 2 * h\n"),
                                            ("        x[index] = old  # put back",
                                             "        x[index] += h  # put back")),
                                    "numerical_gradient", "left x changed in its last bits"),
    "perturbs a reshaped copy": (variant((GRADIENT_LOOP,
        "    grad = torch.zeros(x.numel(), dtype=x.dtype)\n    flat = x.reshape(-1)\n"
        "    for i in range(flat.numel()):\n        old = flat[i].item()\n"
        "        flat[i] = old + h\n        fp = float(f(x))\n        flat[i] = old - h\n        fm = float(f(x))\n"
        "        flat[i] = old\n        grad[i] = (fp - fm) / (2 * h)\n    return grad.reshape(x.shape)\n")),
        "numerical_gradient", "all zeros"),
    "relative error without the 1e-8 floor": (variant((".clamp(min=1e-8)", "")), "relative_error", "returned nan"),
    "relative error averaged": (variant(("    return float(((a64 - b64).abs() / denominator).max())",
                                         "    return float(((a64 - b64).abs() / denominator).mean())")),
                                "relative_error", "averaged"),
    "relative error over max(|a|, |b|)": (variant(("(a64.abs() + b64.abs())", "torch.maximum(a64.abs(), b64.abs())")),
                                          "relative_error", "divides by max(|a|, |b|)"),
    "relative error returns a tensor": (variant(("    return float(((a64 - b64).abs() / denominator).max())",
                                                 "    return ((a64 - b64).abs() / denominator).max()")),
                                        "relative_error", "must return a Python float"),
    "relative error in float32": (variant(("    a64, b64 = (t.detach().to(\"cpu\", torch.float64) for t in (a, b))",
                                           "    a64, b64 = a.float(), b.float()")),
                                  "relative_error", "differs from max"),
}


# Caught by the hidden tests only: their inputs include what the visible check does not show.
HIDDEN_ONLY = {"perturbs a reshaped copy"}  # x non-contiguous: x.reshape(-1) is then a copy


def _failures(props: list[Property], run) -> list[str]:
    return [message for prop in props for passed, message in [evaluate(prop, run)] if not passed]


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_fails_visible_and_hidden_with_its_diagnosis(name: str, install) -> None:
    source, exercise, words = MISTAKES[name]
    run = install(source)
    visible, hidden = _failures(visible_properties(exercise), run), _failures(hidden_properties(exercise), run)
    if name not in HIDDEN_ONLY:
        assert any(words in m for m in visible), f"{name}: visible check says {visible}"
    assert any(words in m for m in hidden), f"{name}: hidden tests say {hidden}"
    for other in CHECKS:  # a mistake in one exercise costs no other exercise anything (but those built on it)
        if other != exercise and exercise not in BUILT_ON.get(other, set()):
            assert _failures(visible_properties(other), run) == [], f"{name} broke {other}"


def test_the_stub_fails_every_property_as_not_implemented(install) -> None:
    run = install(STUB)
    for exercise in CHECKS:
        for prop in all_properties(exercise):
            passed, message = evaluate(prop, run)
            assert not passed and "not implemented yet" in message, (prop.title, message)


def test_calling_torch_autograd_inside_value_is_refused(install) -> None:
    source = variant(("        self.grad = 1.0\n        for node", "        import torch\n"
                      "        t = torch.ones((), requires_grad=True)\n        (t * 2).backward()\n"
                      "        self.grad = 1.0\n        for node"))
    run = install(source)
    failures = _failures(value_check(), run)
    assert failures and all("torch.Tensor.backward" in m for m in failures)
    assert all("torch.Tensor.backward" in m for m in _failures(visible_properties("MLP"), run))


def test_value_agrees_with_torch_on_every_hidden_expression_to_1e_6(install) -> None:
    """The 'done when' of the issue: value and every gradient of composed expressions, nodes reused."""
    run = install(REFERENCE)
    graphs = [t for t in load_suite() if t.name.startswith("autograd.value_graph")]
    assert len(graphs) >= 4
    for test in graphs:
        assert evaluate(test.build(), run) == (True, ""), test.name


# ----------------------------------------------------------------------------- Neuron, Layer, MLP

SOLUTION = (PROJECT_ROOT / "solutions" / "autograd.py").read_text(encoding="utf-8")


def net_variant(*changes: tuple[str, str]) -> str:
    """The reference with the solution regions of the named methods replaced: ``("Class.method", body)``."""
    source = SOLUTION
    for qualified, body in changes:
        cls, method = qualified.split(".")
        start = source.index(f"class {cls}(")
        head, tail = source[:start], source[start:]
        marker = f"    def {method}("
        at = tail.index(marker)
        region_start = tail.index("        ### BEGIN SOLUTION\n", at)
        region_end = tail.index("        ### END SOLUTION\n", at) + len("        ### END SOLUTION\n")
        indented = "".join("        " + line + "\n" if line else "\n" for line in body.strip("\n").split("\n"))
        tail = tail[:region_start] + "        ### BEGIN SOLUTION\n" + indented + "        ### END SOLUTION\n" \
            + tail[region_end:]
        source = head + tail
    return strip_markers(source)


NET_CORRECT = {
    "the bias added last, after a sum from 0": net_variant(
        ("Neuron.__call__", "act = sum(wi * xi for wi, xi in zip(self.w, x)) + self.b\n"
                            "return act.relu() if self.nonlin else act")),
    "an explicit loop, bias first in parameters()": net_variant(
        ("Neuron.__call__", "act = self.b\nfor wi, xi in zip(self.w, x):\n    act = act + wi * xi\n"
                            "if self.nonlin:\n    act = act.relu()\nreturn act"),
        ("Neuron.parameters", "return [self.b] + list(self.w)")),
    "parameters() collected with extend, layers in reverse order, returned as a tuple": net_variant(
        ("Layer.parameters", "params = []\nfor n in self.neurons:\n    params.extend(n.parameters())\nreturn params"),
        ("MLP.parameters", "return tuple(p for layer in reversed(self.layers) for p in layer.parameters())")),
    "MLP built from zipped sizes and run with functools.reduce": net_variant(
        ("MLP.__init__", "sizes = [nin, *nouts]\nlast = len(nouts) - 1\n"
                         "self.layers = [Layer(a, b, nonlin=k < last, generator=generator)\n"
                         "               for k, (a, b) in enumerate(zip(sizes, sizes[1:]))]"),
        ("MLP.__call__", "import functools\n\nreturn functools.reduce(lambda h, layer: layer(h), self.layers, x)")),
    "Layer returning its neurons' outputs through a list comprehension and an explicit test": net_variant(
        ("Layer.__call__", "outs = [n(x) for n in self.neurons]\nif len(self.neurons) == 1:\n    return outs[0]\n"
                           "return outs")),
}

NET_MISTAKES: dict[str, tuple[str, str, str]] = {  # name -> (source, exercise, words the diagnosis must contain)
    "neuron without its bias": (net_variant(("Neuron.__call__", "act = sum(wi * xi for wi, xi in zip(self.w, x))\n"
                                                                "return act.relu() if self.nonlin else act")),
                                "Neuron", "the bias b is missing"),
    "neuron with tanh, as in the lecture": (net_variant(("Neuron.__call__",
                                                         "act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)\n"
                                                         "return act.tanh() if self.nonlin else act")),
                                            "Neuron", "looks like tanh"),
    "neuron that always applies the ReLU": (net_variant(("Neuron.__call__",
                                                         "return sum((wi * xi for wi, xi in zip(self.w, x)), "
                                                         "self.b).relu()")),
                                            "Neuron", "although nonlin is False"),
    "neuron that never applies the ReLU": (net_variant(("Neuron.__call__",
                                                        "return sum((wi * xi for wi, xi in zip(self.w, x)), self.b)")),
                                           "Neuron", "no ReLU was applied"),
    "neuron computing from .data": (net_variant(("Neuron.__call__",
                                                 "act = sum((wi.data * xi for wi, xi in zip(self.w, x)), self.b)\n"
                                                 "return act.relu() if self.nonlin else act")),
                                    "Neuron", "gradients after backward() are not"),
    "neuron parameters without the bias": (net_variant(("Neuron.parameters", "return list(self.w)")),
                                           "Neuron", "leaves out the biases"),
    "neuron parameters as copies": (net_variant(("Neuron.parameters",
                                                 "return [Value(w.data) for w in self.w] + [Value(self.b.data)]")),
                                    "Neuron", "a copy such as Value(w.data)"),
    "layer parameters nested": (net_variant(("Layer.parameters", "return [n.parameters() for n in self.neurons]")),
                                "Layer", "lists inside its list"),
    "layer always returning a list": (net_variant(("Layer.__call__", "return [n(x) for n in self.neurons]")),
                                      "Layer", "a list of one Value"),
    "layer ignoring the generator": (net_variant(("Layer.__init__",
                                                  "self.neurons = [Neuron(nin, nonlin=nonlin) for _ in range(nout)]")),
                                     "Layer", "do not come from the generator given"),
    "layer ignoring nonlin": (net_variant(("Layer.__init__",
                                           "self.neurons = [Neuron(nin, generator=generator) for _ in range(nout)]")),
                              "Layer", "must pass nonlin=False"),
    "MLP with a ReLU in its last layer": (net_variant(("MLP.__init__",
                                                       "sizes = [nin, *nouts]\nself.layers = [Layer(sizes[i], "
                                                       "sizes[i + 1], generator=generator)\n"
                                                       "               for i in range(len(nouts))]")),
                                          "MLP", "must be linear"),
    "MLP missing its last layer": (net_variant(("MLP.__init__",
                                                "sizes = [nin, *nouts]\nself.layers = [Layer(sizes[i], sizes[i + 1], "
                                                "nonlin=i != len(nouts) - 2, generator=generator)\n"
                                                "               for i in range(len(nouts) - 1)]")),
                                   "MLP", "layers in self.layers, one per entry of nouts"),
    "MLP parameters of the last layer only": (net_variant(("MLP.parameters", "return self.layers[-1].parameters()")),
                                              "MLP", "leaves out every parameter of layer(s) [1, 2]"),
    "MLP parameters listing the first layer twice": (net_variant(
        ("MLP.parameters", "return [p for layer in self.layers for p in layer.parameters()] "
                           "+ self.layers[0].parameters()")), "MLP", "more than once"),
    "MLP feeding every layer the input": (net_variant(("MLP.__call__",
                                                       "out = x\nfor layer in self.layers:\n    out = layer(x)\n"
                                                       "return out")),
                                          "MLP", "this neuron takes"),
}


@pytest.mark.parametrize("name", NET_CORRECT)
def test_correct_networks_pass_every_visible_and_hidden_property(name: str, install) -> None:
    run = install(NET_CORRECT[name])
    for exercise in NETS:
        for prop in all_properties(exercise):
            assert evaluate(prop, run) == (True, ""), f"{name}: {prop.exercise}: {prop.title}"


@pytest.mark.parametrize("name", NET_MISTAKES)
def test_each_network_mistake_fails_visible_and_hidden_with_its_diagnosis(name: str, install) -> None:
    source, exercise, words = NET_MISTAKES[name]
    run = install(source)
    visible, hidden = _failures(visible_properties(exercise), run), _failures(hidden_properties(exercise), run)
    assert any(words in m for m in visible), f"{name}: visible check says {visible}"
    assert any(words in m for m in hidden), f"{name}: hidden tests say {hidden}"
    for other in ("Value", "numerical_gradient", "relative_error"):
        assert _failures(visible_properties(other), run) == [], f"{name} broke {other}"


def test_training_passes_correct_networks_and_catches_parameters_that_miss_the_network(install) -> None:
    """The training properties (seconds each): the reference and a correct variant learn, visibly and hidden;
    parameters() returning copies leaves the loss where it was, and says why."""
    for source in (REFERENCE, NET_CORRECT["parameters() collected with extend, layers in reverse order, returned "
                                          "as a tuple"]):
        run = install(source)
        for prop in [p for p in all_properties("MLP", training=True) if TRAINS in p.title]:
            assert evaluate(prop, run) == (True, ""), prop.title
    run = install(NET_MISTAKES["neuron parameters as copies"][0])
    passed, message = evaluate(net_trains((4,), n=8, seed=3, steps=3), run)
    assert not passed and "never reached the network" in message


def test_the_training_property_holds_for_correct_networks_from_many_starts(install) -> None:
    """The loss falls by a quarter in the visible and hidden training properties whatever the weights a
    correct network starts from: here torch's global generator replaces the seeded one, for several seeds."""
    source = net_variant(("Layer.__init__", "self.neurons = [Neuron(nin, nonlin=nonlin) for _ in range(nout)]"))
    run = install(source)
    for seed in range(3):
        torch.manual_seed(100 + seed)
        assert evaluate(net_trains((8,), n=16, seed=12), run) == (True, ""), seed


def test_describe_net_reports_a_missing_structure_instead_of_raising() -> None:
    class Lonely:
        def parameters(self) -> list:
            return []

    report = describe_net(Lonely(), [])
    assert report["error"] and "w" in report["error"]
