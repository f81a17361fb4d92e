"""Drills: practise until fluent. Short items, generated fresh from a seed, answered in seconds and checked at once.

Each drill makes a new item every time (a conv layer's output size, a gradient through a two-node graph, an SGD
step with momentum...): never a fixed list to memorize. In a notebook::

    d = drill("conv_output_size")   # shows a fresh item; the clock starts now
    d.answer(13)                    # checked at once; a wrong answer shows the worked solution

From a terminal: ``python -m exercises drill conv_output_size -n 5`` (``python -m exercises drill`` lists them).

The answer is checked against an independent computation made at that moment (PyTorch's own modules, functions,
autograd and optimizers; plain counting for precision and recall), never against a stored answer. The worked
solution shows the steps by hand. Every answer is recorded in your progress file (``exercises.kit.progress``):
a drill is **mastered** after ``FLUENT_STREAK`` (5) right answers in a row, each within ``FLUENT_SECONDS`` (30 s)
of the item being shown. ``drills()`` lists the drills with your fluency in each.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from exercises.kit.progress import FLUENT_SECONDS, FLUENT_STREAK, drill_progress, record_drill

Clock = Callable[[], float]
Value = tuple[float, ...]


@dataclass
class Item:
    """One practice item: the question, what form the answer takes, the independent check and the worked solution.

    ``oracle()`` computes the answer with PyTorch (or by counting) when the answer is checked; ``by_hand()``
    returns the worked solution's lines and the value they arrive at (the tests prove both agree)."""

    question: str
    form: str  # "an integer", "a tuple (N, C, H, W)", "a number (two decimals are enough)"
    oracle: Callable[[], Value]
    by_hand: Callable[[], tuple[list[str], Value]]
    integers: bool = True  # integers must be exact; other numbers within ``tolerance``, or 0.1 %
    tolerance: float = 0.0051  # "two decimals are enough"


@dataclass(frozen=True)
class Drill:
    """A kind of practice item: its name, chapter, what it practises, and the generator of its items."""

    name: str
    chapter: int
    title: str
    make: Callable[[random.Random], Item]


DRILLS: dict[str, Drill] = {}


def _drill(name: str, chapter: int, title: str) -> Callable[[Callable[[random.Random], Item]], Callable]:
    def register(make: Callable[[random.Random], Item]) -> Callable[[random.Random], Item]:
        DRILLS[name] = Drill(name, chapter, title, make)
        return make

    return register


def _fmt(x: float) -> str:
    """A number as a person would write it: ``3``, ``-0.4``, ``0.667``."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _par(x: float) -> str:
    """A number as an operand: negative ones in parentheses, ``3 · (-2)``."""
    return f"({_fmt(x)})" if x < 0 else _fmt(x)


def _ints(t: Iterable[Any]) -> Value:
    return tuple(float(v) for v in t)


# ----------------------------------------------------------------------------- chapter 0: welcome


@_drill("relu_backward", 0, "ReLU's backward pass: which upstream gradients get through")
def _relu_backward(rng: random.Random) -> Item:
    n = rng.randint(3, 6)
    x = [rng.choice([-3, -2, -1, 0, 1, 2, 3]) for _ in range(n)]
    dout = [rng.choice([-4, -3, -2, -1, 1, 2, 3, 4]) for _ in range(n)]

    def oracle() -> Value:  # autograd through PyTorch's own relu
        leaf = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        torch.relu(leaf).backward(torch.tensor(dout, dtype=torch.float64))
        return _ints(leaf.grad.tolist())

    def by_hand() -> tuple[list[str], Value]:
        dx = [d if v > 0 else 0 for v, d in zip(x, dout, strict=True)]
        return ["relu(x) = max(0, x) has slope 1 where x > 0 and 0 where x < 0; at x = 0 PyTorch (and this course) "
                "take it as 0",
                "so dx = dout where x > 0, else 0: " + ", ".join(
                    f"x = {v}: {d if v > 0 else 0}" for v, d in zip(x, dout, strict=True)),
                f"dx = ({', '.join(map(str, dx))})"], _ints(dx)

    return Item(f"out = relu(x) with x = {tuple(x)}, and the gradient arriving from above is dout = {tuple(dout)}. "
                "What is dx = ∂L/∂x?", f"a tuple of {n} numbers", oracle, by_hand)


# ----------------------------------------------------------------------------- chapter 1: data


@_drill("normalize", 1, "normalize a pixel: scale to [0, 1], subtract the mean, divide by the std")
def _normalize(rng: random.Random) -> Item:
    v = rng.choice([0, 51, 102, 153, 204, 255])  # multiples of 255/5: the scaled value has one decimal
    mean = rng.choice([0.1, 0.2, 0.3, 0.4, 0.5])
    std = rng.choice([0.2, 0.25, 0.5])

    def oracle() -> Value:  # batch norm in evaluation mode with these running statistics is exactly (x − m)/s
        x = torch.tensor([[v]], dtype=torch.uint8).to(torch.float64) / 255
        out = F.batch_norm(x, torch.tensor([mean], dtype=torch.float64), torch.tensor([std**2], dtype=torch.float64),
                           training=False, eps=0.0)
        return (float(out),)

    def by_hand() -> tuple[list[str], Value]:
        x = v / 255
        out = (x - mean) / std
        return [f"scale: x = {v} / 255 = {_fmt(x)}",
                f"normalize: (x − mean) / std = ({_fmt(x)} − {_fmt(mean)}) / {_fmt(std)} = {_fmt(x - mean)} / "
                f"{_fmt(std)} = {_fmt(out)}"], (out,)

    return Item(f"A uint8 pixel of value {v} is scaled to [0, 1] (divided by 255), then normalized with mean "
                f"{_fmt(mean)} and std {_fmt(std)}. What is the value the network sees?",
                "a number (two decimals are enough)", oracle, by_hand, integers=False)


@_drill("one_hot", 1, "one-hot labels: the shape, and where the 1 is")
def _one_hot(rng: random.Random) -> Item:
    classes = rng.choice([3, 4, 5, 10])
    n = rng.randint(3, 8)
    labels = [rng.randrange(classes) for _ in range(n)]
    row = rng.randrange(n)

    def oracle() -> Value:
        encoded = F.one_hot(torch.tensor(labels), classes)
        return _ints((*encoded.shape, int(encoded[row].argmax())))

    def by_hand() -> tuple[list[str], Value]:
        return [f"one row per label ({n}), one column per class ({classes}): shape ({n}, {classes})",
                f"row {row} encodes label labels[{row}] = {labels[row]}: its 1 is in column {labels[row]} "
                "(the columns count from 0)"], _ints((n, classes, labels[row]))

    return Item(f"labels = {labels} are one-hot encoded with {classes} classes. What is the shape of the result, "
                f"and in which column is the 1 of row {row} (counting from 0)?",
                "a tuple (rows, columns, column of the 1)", oracle, by_hand)


@_drill("minibatches", 1, "mini-batches per epoch, and the size of the last one")
def _minibatches(rng: random.Random) -> Item:
    batch = rng.choice([16, 32, 50, 64, 100, 128])
    n = batch * rng.randint(2, 12) + rng.choice([0, rng.randint(1, batch - 1)])
    drop_last = rng.random() < 0.4

    def oracle() -> Value:
        batches = list(torch.utils.data.BatchSampler(range(n), batch_size=batch, drop_last=drop_last))
        return _ints((len(batches), len(batches[-1])))

    def by_hand() -> tuple[list[str], Value]:
        full, rest = divmod(n, batch)
        lines = [f"{n} = {full} × {batch} + {rest}: {full} full batches and {rest} sample(s) left over"]
        if rest and not drop_last:
            lines.append(f"the {rest} left over make one more, smaller batch: {full + 1} batches, the last of {rest}")
            return lines, _ints((full + 1, rest))
        if rest:
            lines.append(f"drop_last drops the {rest} left over: {full} batches, the last (like every one) of {batch}")
        else:
            lines.append(f"nothing left over: {full} batches, the last (like every one) of {batch}")
        return lines, _ints((full, batch))

    return Item(f"An epoch goes through {n} samples in mini-batches of {batch}, "
                f"{'dropping' if drop_last else 'keeping'} a last incomplete batch. How many mini-batches, "
                "and how many samples in the last one?", "a tuple (batches, size of the last)", oracle, by_hand)


# ----------------------------------------------------------------------------- chapter 2: backpropagation

_BINARY = {"+": lambda x, y: x + y, "−": lambda x, y: x - y, "·": lambda x, y: x * y}


@_drill("chain_rule", 2, "a gradient by hand through a two-node graph")
def _chain_rule(rng: random.Random) -> Item:
    while True:
        a, b, c = (rng.choice([-4, -3, -2, -1, 1, 2, 3, 4]) for _ in range(3))
        op1 = rng.choice(list(_BINARY))
        op2 = rng.choice([*_BINARY, "²", "relu"])
        e = _BINARY[op1](a, b)
        if op2 != "relu" or e != 0:  # no question at relu's kink
            break
    unary = op2 in ("²", "relu")
    names = ["a", "b"] if unary else ["a", "b", "c"]
    wrt = rng.choice(names)
    expression = {"²": "L = e²", "relu": "L = relu(e) = max(e, 0)"}.get(op2, f"L = e {op2} c")
    values = f"a = {a}, b = {b}" + ("" if unary else f", c = {c}")

    def oracle() -> Value:
        leaves = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=True)
                  for k, v in zip("abc", (a, b, c), strict=True)}
        node = _BINARY[op1](leaves["a"], leaves["b"])
        out = node**2 if op2 == "²" else torch.relu(node) if op2 == "relu" else _BINARY[op2](node, leaves["c"])
        out.backward()
        return (float(leaves[wrt].grad),)

    def by_hand() -> tuple[list[str], Value]:
        out_value = e * e if op2 == "²" else max(e, 0) if op2 == "relu" else _BINARY[op2](e, c)
        lines = [f"forward: e = a {op1} b = {_par(a)} {op1} {_par(b)} = {e}; {expression.split(' = ')[0]} = "
                 f"{_fmt(out_value)}"]
        if op2 == "²":
            dl_de, why = 2 * e, f"∂L/∂e = 2e = {2 * e}"
        elif op2 == "relu":
            dl_de, why = float(e > 0), f"∂L/∂e = 1 where e > 0, else 0: {int(e > 0)}"
        elif op2 == "·":
            dl_de, why = c, f"∂L/∂e = c = {c}"
        else:
            dl_de, why = 1, "∂L/∂e = 1"
        if wrt == "c":
            dl_dc = {"+": 1, "−": -1, "·": e}[op2]
            lines.append(f"c feeds L directly: ∂L/∂c = {'e = ' + str(e) if op2 == '·' else dl_dc}")
            return lines, (float(dl_dc),)
        lines.append(f"the node L: {why}")
        other = b if wrt == "a" else a
        local = {"+": 1, "−": 1 if wrt == "a" else -1, "·": other}[op1]
        local_why = {"+": "1", "−": "1" if wrt == "a" else "−1", "·": f"{'b' if wrt == 'a' else 'a'} = {other}"}[op1]
        lines.append(f"the node e: ∂e/∂{wrt} = {local_why}")
        grad = dl_de * local
        lines.append(f"chain rule: ∂L/∂{wrt} = ∂L/∂e · ∂e/∂{wrt} = {_par(dl_de)} · {_par(local)} = {_fmt(grad)}")
        return lines, (float(grad),)

    return Item(f"e = a {op1} b and {expression}, with {values}. What is ∂L/∂{wrt}?", "a number", oracle, by_hand)


@_drill("linear_shapes", 2, "shapes in a linear layer's backward pass")
def _linear_shapes(rng: random.Random) -> Item:
    n, d, m = rng.choice([8, 16, 32, 64]), rng.choice([10, 20, 50, 100, 784]), rng.choice([3, 10, 64, 128])
    wanted = rng.choice(["out", "dx", "dW", "db"])

    def oracle() -> Value:
        x = torch.zeros(n, d, requires_grad=True)
        w = torch.zeros(d, m, requires_grad=True)
        b = torch.zeros(m, requires_grad=True)
        out = x @ w + b
        out.sum().backward()
        return _ints({"out": out, "dx": x.grad, "dW": w.grad, "db": b.grad}[wanted].shape)

    def by_hand() -> tuple[list[str], Value]:
        shapes = {"out": (n, m), "dx": (n, d), "dW": (d, m), "db": (m,)}
        why = {"out": f"x @ W is ({n}, {d}) @ ({d}, {m}) = ({n}, {m}); b is broadcast over the rows",
               "dx": f"dx = dout @ W.T: ({n}, {m}) @ ({m}, {d}) = ({n}, {d}), the shape of x",
               "dW": f"dW = x.T @ dout: ({d}, {n}) @ ({n}, {m}) = ({d}, {m}), the shape of W",
               "db": f"db = dout.sum(dim=0): the {n} rows summed, ({m},), the shape of b"}[wanted]
        return ["a gradient has the shape of what it is the gradient of", why], _ints(shapes[wanted])

    what = wanted if wanted == "out" else f"{wanted} (the gradient of the loss with respect to {wanted[1:]})"
    return Item(f"out = x @ W + b with x of shape ({n}, {d}), W ({d}, {m}) and b ({m},). What is the shape of {what}?",
                "a tuple of sizes", oracle, by_hand)


# ----------------------------------------------------------------------------- chapter 3: convolution


def _conv_size(h: int, k: int, s: int, p: int, dil: int = 1) -> tuple[int, str]:
    out = (h + 2 * p - dil * (k - 1) - 1) // s + 1
    span = f"{dil}·({k} − 1) + 1" if dil != 1 else f"{k}"
    return out, f"⌊({h} + 2·{p} − {span}) / {s}⌋ + 1 = ⌊{h + 2 * p - dil * (k - 1) - 1} / {s}⌋ + 1 = {out}"


@_drill("conv_output_size", 3, "a convolution's output size from kernel, stride, padding and dilation")
def _conv_output_size(rng: random.Random) -> Item:
    while True:
        h, k = rng.choice([7, 8, 13, 14, 15, 28, 31, 32, 64]), rng.choice([1, 3, 3, 5, 7])
        s, p, dil = rng.choice([1, 1, 2, 2, 3]), rng.choice([0, 1, 2, 3]), rng.choice([1, 1, 1, 2])
        if h + 2 * p >= dil * (k - 1) + 1:
            break

    def oracle() -> Value:
        out = F.conv2d(torch.zeros(1, 1, h, h), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=dil)
        return (float(out.shape[-1]),)

    def by_hand() -> tuple[list[str], Value]:
        out, steps = _conv_size(h, k, s, p, dil)
        rule = "⌊(H + 2P − D·(K − 1) − 1) / S⌋ + 1" if dil != 1 else "⌊(H + 2P − K) / S⌋ + 1"
        return [f"output size = {rule}", f"= {steps}"], (float(out),)

    dilation = f", dilation {dil}" if dil != 1 else ""
    return Item(f"A convolution with a {k}×{k} kernel, stride {s}, padding {p}{dilation} reads a {h}×{h} input. "
                "What is the output's height?", "an integer", oracle, by_hand)


@_drill("conv_shapes", 3, "the output shape of a conv/pool stack")
def _conv_shapes(rng: random.Random) -> Item:
    while True:
        n, c, h = rng.choice([1, 4, 8, 16]), rng.choice([1, 3]), rng.choice([28, 32])
        layers: list[tuple] = []
        size, channels, fits = h, c, True
        for _ in range(rng.randint(2, 3)):
            if rng.random() < 0.6 or not layers or layers[-1][0] == "pool":
                f, k = rng.choice([4, 8, 16, 32]), rng.choice([3, 5])
                s, p = rng.choice([1, 1, 2]), rng.choice([0, 1, k // 2])
                layers.append(("conv", channels, f, k, s, p))
            else:
                k = rng.choice([2, 3])
                f, s, p = channels, rng.choice([2, k]), 0
                layers.append(("pool", k, s))
            fits = fits and size + 2 * p >= k
            channels, size = f, _conv_size(size, k, s, p)[0]
        if fits:
            break

    def describe(layer: tuple) -> str:
        if layer[0] == "conv":
            _, cin, f, k, s, p = layer
            return f"Conv2d({cin}, {f}, kernel_size={k}, stride={s}, padding={p})"
        return f"MaxPool2d(kernel_size={layer[1]}, stride={layer[2]})"

    def oracle() -> Value:
        modules = [nn.Conv2d(*layer[1:]) if layer[0] == "conv" else nn.MaxPool2d(layer[1], layer[2])
                   for layer in layers]
        with torch.no_grad():
            return _ints(nn.Sequential(*modules)(torch.zeros(n, c, h, h)).shape)

    def by_hand() -> tuple[list[str], Value]:
        size, channels = h, c
        lines = [f"input: ({n}, {c}, {h}, {h}); the batch size never changes, the height and width change alike"]
        for layer in layers:
            if layer[0] == "conv":
                _, _, channels, k, s, p = layer
                size, steps = _conv_size(size, k, s, p)
                lines.append(f"{describe(layer)}: {channels} channels, size {steps}")
            else:
                size, steps = _conv_size(size, layer[1], layer[2], 0)
                lines.append(f"{describe(layer)}: channels unchanged, size {steps}")
        return lines, _ints((n, channels, size, size))

    stack = " → ".join(describe(layer) for layer in layers)
    return Item(f"A batch of shape ({n}, {c}, {h}, {h}) goes through {stack}. What is the output's shape?",
                "a tuple (N, C, H, W)", oracle, by_hand)


@_drill("param_count", 3, "the number of parameters of conv, batch-norm and linear layers")
def _param_count(rng: random.Random) -> Item:
    if rng.random() < 0.6:
        cin, cout, k = rng.choice([1, 3, 16, 32]), rng.choice([8, 16, 32, 64]), rng.choice([1, 3, 5])
        bias = rng.random() < 0.7
        layers = [("conv", cin, cout, k, bias)]
        if rng.random() < 0.5:
            layers.append(("bn", cout))
    else:
        d, m = rng.choice([10, 64, 128, 784]), rng.choice([10, 32, 100, 256])
        layers = [("linear", d, m)]
        if rng.random() < 0.5:
            layers.append(("linear", m, rng.choice([2, 10])))

    def module(layer: tuple) -> nn.Module:
        if layer[0] == "conv":
            return nn.Conv2d(layer[1], layer[2], layer[3], bias=layer[4])
        return nn.BatchNorm2d(layer[1]) if layer[0] == "bn" else nn.Linear(layer[1], layer[2])

    def describe(layer: tuple) -> str:
        if layer[0] == "conv":
            return f"Conv2d({layer[1]}, {layer[2]}, kernel_size={layer[3]}{'' if layer[4] else ', bias=False'})"
        return f"BatchNorm2d({layer[1]})" if layer[0] == "bn" else f"Linear({layer[1]}, {layer[2]})"

    def oracle() -> Value:
        return (float(sum(p.numel() for p in nn.Sequential(*map(module, layers)).parameters())),)

    def by_hand() -> tuple[list[str], Value]:
        lines, counts = [], []
        for layer in layers:
            if layer[0] == "conv":
                _, cin, cout, k, bias = layer
                count = cout * cin * k * k + (cout if bias else 0)
                lines.append(f"{describe(layer)}: weights {cout}·{cin}·{k}·{k} = {cout * cin * k * k}"
                             + (f", plus {cout} biases = {count}" if bias else " (no bias)"))
            elif layer[0] == "bn":
                count = 2 * layer[1]
                lines.append(f"{describe(layer)}: a scale and a shift per channel, 2·{layer[1]} = {count} "
                             "(its running mean and variance are buffers, not parameters)")
            else:
                _, d, m = layer
                count = d * m + m
                lines.append(f"{describe(layer)}: weights {d}·{m} = {d * m}, plus {m} biases = {count}")
            counts.append(count)
        if len(layers) > 1:
            lines.append("total: " + " + ".join(map(str, counts)) + f" = {sum(counts)}")
        return lines, (float(sum(counts)),)

    return Item(f"How many parameters (requires_grad tensors' elements) does {' → '.join(map(describe, layers))} "
                "have?", "an integer", oracle, by_hand)


# ----------------------------------------------------------------------------- chapter 4: training


@_drill("sgd_momentum", 4, "an SGD step by hand: weight decay, momentum, Nesterov")
def _sgd_momentum(rng: random.Random) -> Item:
    p0 = rng.choice([-2.0, -1.0, 0.5, 1.0, 2.0, 3.0])
    lr = rng.choice([0.1, 0.5])
    variant = rng.choice(["weight decay", "momentum", "momentum", "nesterov"])
    grads = [float(rng.choice([-3, -2, -1, 1, 2, 3])) for _ in range(1 if variant == "weight decay" else 2)]
    momentum = 0.0 if variant == "weight decay" else rng.choice([0.5, 0.9])
    wd = rng.choice([0.1, 0.5]) if variant == "weight decay" else 0.0

    def oracle() -> Value:
        p = torch.tensor([p0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([p], lr=lr, momentum=momentum, weight_decay=wd, nesterov=variant == "nesterov")
        for g in grads:
            p.grad = torch.tensor([g], dtype=torch.float64)
            opt.step()
        return (float(p.detach()),)

    def by_hand() -> tuple[list[str], Value]:
        p, lines = p0, []
        if variant == "weight decay":
            g = grads[0] + wd * p
            lines.append(f"weight decay adds λ·p to the gradient: g = {_fmt(grads[0])} + {_fmt(wd)}·{_fmt(p)} = "
                         f"{_fmt(g)}")
            p -= lr * g
            lines.append(f"p ← p − η·g = {_fmt(p0)} − {_fmt(lr)}·{_fmt(g)} = {_fmt(p)}")
            return lines, (p,)
        buf = 0.0
        for step, g in enumerate(grads, 1):
            if step == 1:
                buf = g
                lines.append(f"step 1: the first step sets the momentum buffer to the gradient, b = {_fmt(g)}")
            else:
                new = momentum * buf + g
                lines.append(f"step {step}: b ← μ·b + g = {_fmt(momentum)}·{_fmt(buf)} + {_fmt(g)} = {_fmt(new)}")
                buf = new
            direction = g + momentum * buf if variant == "nesterov" else buf
            if variant == "nesterov":
                lines.append(f"   Nesterov steps along g + μ·b = {_fmt(g)} + {_fmt(momentum)}·{_fmt(buf)} = "
                             f"{_fmt(direction)}")
            new_p = p - lr * direction
            lines.append(f"   p ← p − η·{'(g + μ·b)' if variant == 'nesterov' else 'b'} = {_fmt(p)} − "
                         f"{_fmt(lr)}·{_fmt(direction)} = {_fmt(new_p)}")
            p = new_p
        return lines, (p,)

    if variant == "weight decay":
        setting = f"SGD(lr={_fmt(lr)}, weight_decay={_fmt(wd)})"
        story = f"one step with gradient {_fmt(grads[0])}"
    else:
        nesterov = ", nesterov=True" if variant == "nesterov" else ""
        setting = f"SGD(lr={_fmt(lr)}, momentum={_fmt(momentum)}{nesterov})"
        story = f"two steps, with gradients {_fmt(grads[0])} then {_fmt(grads[1])}"
    return Item(f"A parameter p = {_fmt(p0)} is updated by torch.optim.{setting}: {story}. What is p after?",
                "a number (two decimals are enough)", oracle, by_hand, integers=False)


@_drill("adam_first_step", 4, "Adam's first step: why its size is about the learning rate, whatever the gradient")
def _adam_first_step(rng: random.Random) -> Item:
    p0 = rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0])
    lr = rng.choice([0.001, 0.01, 0.1])
    g = rng.choice([-1, 1]) * rng.choice([0.001, 0.5, 3.0, 40.0, 1000.0])

    def oracle() -> Value:
        p = torch.tensor([p0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([p], lr=lr)
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        return (float(p.detach()),)

    def by_hand() -> tuple[list[str], Value]:
        m_hat, v_hat = g, g * g
        step = lr * m_hat / (math.sqrt(v_hat) + 1e-8)
        return [f"m = (1 − β₁)·g and v = (1 − β₂)·g²; the bias corrections divide them by (1 − β₁) and (1 − β₂): "
                f"m̂ = g = {_fmt(g)}, v̂ = g²",
                f"step = η·m̂ / (√v̂ + ε) = η·g / (|g| + ε) ≈ η·sign(g) = {_fmt(math.copysign(lr, g))}",
                f"p ← {_fmt(p0)} − {_fmt(math.copysign(lr, g))} = {_fmt(p0 - step)}"], (p0 - step,)

    return Item(f"A parameter p = {_fmt(p0)} with gradient {_fmt(g)} takes the first step of torch.optim.Adam(lr="
                f"{_fmt(lr)}) (default betas and eps). What is p after?", "a number (three decimals are enough)",
                oracle, by_hand, integers=False, tolerance=0.00051)


# ----------------------------------------------------------------------------- chapter 5: evaluation


@_drill("precision_recall", 5, "precision and recall of a class, from a confusion matrix")
def _precision_recall(rng: random.Random) -> Item:
    while True:
        c = rng.choice([2, 3, 3])
        cm = [[rng.randint(0, 12) if i != j else rng.randint(3, 30) for j in range(c)] for i in range(c)]
        k = rng.randrange(c)
        if sum(cm[i][k] for i in range(c)) and sum(cm[k]):
            break

    def oracle() -> Value:  # count over the individual predictions, not with the matrix's margins
        pairs = torch.tensor([(i, j) for i in range(c) for j in range(c) for _ in range(cm[i][j])])
        true, pred = pairs[:, 0], pairs[:, 1]
        tp = int(((pred == k) & (true == k)).sum())
        return (tp / int((pred == k).sum()), tp / int((true == k).sum()))

    def by_hand() -> tuple[list[str], Value]:
        tp = cm[k][k]
        column = sum(cm[i][k] for i in range(c))
        row = sum(cm[k])
        return [f"tp = cm[{k}][{k}] = {tp}",
                f"precision = tp / (column {k}'s sum: everything predicted as {k}) = {tp} / {column} = "
                f"{_fmt(tp / column)}",
                f"recall = tp / (row {k}'s sum: everything that is {k}) = {tp} / {row} = {_fmt(tp / row)}"], \
            (tp / column, tp / row)

    grid = "\n".join("    " + "  ".join(f"{v:3d}" for v in r) for r in cm)
    return Item(f"A confusion matrix (rows: true class, columns: predicted class, classes 0 to {c - 1}):\n{grid}\n"
                f"What are the precision and the recall of class {k}?", "a tuple (precision, recall), two decimals "
                "are enough (2/3 is fine too)", oracle, by_hand, integers=False)


# ----------------------------------------------------------------------------- answering


_NUMBER = re.compile(r"[-+−]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:/\d+)?")


def parse_answer(value: Any) -> list[float] | None:
    """The numbers in an answer: a number, a tuple or list (or ``torch.Size``, a tensor), or text such as
    ``"(8, 16, 14, 14)"``, ``"8x16x14x14"``, ``"2/3, 0.5"``. ``None`` for no answer at all."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return [float(Fraction(t.replace("−", "-"))) for t in _NUMBER.findall(value)]
    if isinstance(value, torch.Tensor):
        return [float(v) for v in value.detach().flatten().tolist()]
    if isinstance(value, (bool,)):
        raise TypeError("an answer is a number or several, not True/False")
    if isinstance(value, (int, float, Fraction)):
        return [float(value)]
    if isinstance(value, Sequence):
        return [v for part in value for v in (parse_answer(part) or [])]
    raise TypeError(f"an answer is a number or a tuple of numbers, not a {type(value).__name__}")


def matches(given: Sequence[float], expected: Sequence[float], integers: bool, tolerance: float = 0.0051) -> bool:
    """Whether ``given`` is the answer: integers exactly; other numbers within ``tolerance`` (0.0051: two decimals
    are enough) or 0.1 %."""
    if len(given) != len(expected):
        return False
    if integers:
        return all(g == e for g, e in zip(given, expected, strict=True))
    return all(math.isclose(g, e, rel_tol=1e-3, abs_tol=tolerance) for g, e in zip(given, expected, strict=True))


@dataclass
class Verdict:
    """How an answer went: right or wrong, the seconds it took, the answer, and the worked solution."""

    correct: bool
    seconds: float
    expected: Value
    solution: list[str]

    @property
    def fluent(self) -> bool:
        return self.correct and self.seconds <= FLUENT_SECONDS


def _show(value: Value, integers: bool) -> str:
    shown = [_fmt(v) if integers or float(v).is_integer() else f"{v:.3f}".rstrip("0") for v in value]
    return shown[0] if len(shown) == 1 else "(" + ", ".join(shown) + ")"


class DrillItem:
    """A drill's item, shown when it is made: ``answer(...)`` checks an answer (once) and records it."""

    def __init__(self, spec: Drill, seed: int, clock: Clock | None = None, record: bool = True) -> None:
        self.drill, self.seed, self.record = spec, seed, record
        self.item = spec.make(random.Random(f"{spec.name}:{seed}"))
        self._clock = clock or time.monotonic
        self.shown_at = self._clock()
        self.result: Verdict | None = None
        self.how = ".answer(...)"  # how to answer, as the messages say it (the terminal reads a line instead)

    @property
    def question(self) -> str:
        return self.item.question

    def text(self) -> str:
        """The item as shown: which drill, the question, and the form of the answer."""
        return (f"Drill \"{self.drill.name}\" (chapter {self.drill.chapter}: {self.drill.title}), item {self.seed}\n"
                f"  {self.item.question}\n"
                f"  Answer with {self.how}: {self.item.form}. (Fluent: {FLUENT_STREAK} right in a row, "
                f"each within {FLUENT_SECONDS:.0f} s.)")

    def answer(self, value: Any) -> None:
        """Check ``value`` against an independent computation, print the verdict (with the worked solution when it
        is wrong) and record it with its time since the item was shown. ``None`` (no answer yet) records nothing."""
        if self.result is not None:
            print(f"This item is answered ({'right' if self.result.correct else 'wrong'}). For a new one, run "
                  f"drill(\"{self.drill.name}\") again.")
            return
        try:
            given = parse_answer(value)
        except TypeError as exc:
            print(f"Not an answer: {exc}. Expected {self.item.form}; nothing recorded, try again.")
            return
        if given is None:
            print(f"No answer yet: give yours with {self.how} ({self.item.form}). Nothing recorded.")
            return
        seconds = self._clock() - self.shown_at
        expected = self.item.oracle()
        if len(given) != len(expected):
            print(f"Expected {len(expected)} number{'s' * (len(expected) != 1)} ({self.item.form}), got "
                  f"{len(given)}: nothing recorded, try again.")
            return
        correct = matches(given, expected, self.item.integers, self.item.tolerance)
        self.result = Verdict(correct, seconds, expected, self.item.by_hand()[0])
        if self.record:
            record_drill(self.drill.name, self.drill.chapter, self.seed, correct, seconds)
        print(self.feedback())

    def feedback(self) -> str:
        """The verdict as text: ✓ with the time and the streak, or ✗ with the right answer and the worked solution."""
        r = self.result
        if r is None:
            return "Not answered yet."
        timing = f"{r.seconds:.0f} s" + ("" if r.seconds <= FLUENT_SECONDS else
                                        f": right, but over {FLUENT_SECONDS:.0f} s, so not yet fluent")
        if r.correct:
            text = f"✓ Right ({timing})."
        else:
            text = (f"✗ Not quite: the answer is {_show(r.expected, self.item.integers)}. Worked solution:\n"
                    + "\n".join(f"    {line}" for line in r.solution))
        if self.record:
            row = drill_progress([(self.drill.name, self.drill.chapter)])[0]
            text += (f"\n  drill(\"{self.drill.name}\"): {row.streak} right in a row, each within "
                     f"{FLUENT_SECONDS:.0f} s"
                     + (": mastered!" if row.mastered else f" (mastered at {FLUENT_STREAK})")
                     + ". Run it again for a new item.")
        return text

    def __repr__(self) -> str:
        state = "unanswered" if self.result is None else ("right" if self.result.correct else "wrong")
        return f"<drill {self.drill.name!r}, item {self.seed}: {state}>"


def drill(name: str | None = None, *, chapter: int | None = None, seed: int | None = None,
          clock: Clock | None = None, record: bool = True, show: bool = True) -> DrillItem:
    """A fresh item of the drill ``name`` (see ``drills()``), shown at once; answer it with ``.answer(...)``.

    Without ``name``, a drill of ``chapter`` (or of any chapter) that you have not mastered yet. ``seed`` makes
    the item reproducible (by default every call draws a new one); ``clock`` (seconds, ``time.monotonic`` by
    default) times the answer from now; ``record=False`` keeps the answer out of your progress.
    """
    if name is None:
        choices = [d for d in DRILLS.values() if chapter is None or d.chapter == chapter]
        if not choices:
            raise ValueError(f"no drill for chapter {chapter}; chapters with drills: "
                             f"{sorted({d.chapter for d in DRILLS.values()})}")
        fluency = {r.drill: r for r in drill_progress([(d.name, d.chapter) for d in choices])}
        choices = [d for d in choices if not fluency[d.name].mastered] or choices
        name = random.Random(seed).choice(choices).name
    if name not in DRILLS:
        raise ValueError(f"no drill named {name!r}; the drills are: {', '.join(DRILLS)}")
    seed = random.SystemRandom().randrange(1, 1_000_000) if seed is None else int(seed)
    item = DrillItem(DRILLS[name], seed, clock, record)
    if show:
        print(item.text())
    return item


class DrillList(list):
    """The drills, as a list of ``Drill``; shown as a table with your fluency in each."""

    def __repr__(self) -> str:
        rows = {r.drill: r for r in drill_progress([(d.name, d.chapter) for d in self])}
        lines = []
        for d in self:
            r = rows[d.name]
            status = ("★ mastered" if r.mastered else f"{r.streak} in a row" if r.answers else "not tried")
            lines.append(f"  chapter {d.chapter}  drill(\"{d.name}\"){' ' * (20 - len(d.name))}{status:<12} {d.title}")
        return "\n".join(lines)


def drill_catalogue() -> list[tuple[str, int]]:
    """Each drill's name and chapter, in the course's order (what the progress view lists)."""
    return [(d.name, d.chapter) for d in DRILLS.values()]


def drills(chapter: int | None = None) -> DrillList:
    """The drills (of ``chapter``, or all), in the course's order, each with your fluency when shown."""
    return DrillList(d for d in DRILLS.values() if chapter is None or d.chapter == chapter)


def run_in_terminal(names: Sequence[str], count: int = 5, seed: int | None = None,
                    read: Callable[[str], str] = input, clock: Clock | None = None) -> int:
    """Drill from a terminal: ``count`` items of the drills ``names`` in turn, each answered on a line (``q`` or
    the end of input stops). Returns how many were answered right."""
    rng = random.Random(seed)
    right = 0
    for i in range(count):
        item = drill(names[i % len(names)], seed=rng.randrange(1, 1_000_000) if seed is not None else None,
                     clock=clock, show=False)
        item.how = "a line of text"
        print(f"\n[{i + 1}/{count}] " + item.text())
        while item.result is None:
            try:
                line = read("> ")
            except EOFError:
                line = "q"
            if line.strip().lower() in ("q", "quit", "exit"):
                print(f"\nStopped: {right} right this time.")
                return right
            item.answer(line)
        right += item.result.correct
    print(f"\n{right} of {count} right. `python -m exercises progress` shows your fluency in every drill.")
    return right
