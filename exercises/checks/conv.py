"""Properties of the convolution exercises in ``exercises.conv`` (chapter 3), and their visible checks.

Every judge compares with ``torch.nn.functional`` (``conv2d``, ``unfold``, ``fold``, ``max_pool2d`` and
autograd through them), computed in float64 in the checking process; none looks at the reference
solution. "Vectorized" is measured, not read from the source: the exercise runs on inputs whose number
of images, filters or output positions grows twentyfold or more, and the torch calls and Python
lines it executes are counted (``Program.measure``). A Python loop over any of them multiplies those
counts; any vectorized strategy (slicing per kernel offset, ``as_strided``, index tensors, ``einsum``)
keeps them flat. Counts, unlike timings, do not depend on the machine's load.

Judges given ``show_inputs=False`` (the grader's hidden tests) never put input values in a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from exercises.checks import (
    Mistake,
    Property,
    count_mismatches,
    expect_pair,
    expect_tensor,
    expect_unchanged,
    register,
)
from exercises.checks.program import Program, Ref

# Operations the chapter's exercises compute by hand. Conv2d's own properties forbid only these; every
# other exercise also forbids autograd.
CONV_OPS = (
    "torch.nn.functional.conv1d", "torch.nn.functional.conv2d", "torch.nn.functional.conv3d",
    "torch.nn.functional.conv_transpose2d", "torch.conv2d", "torch.conv_transpose2d", "torch.convolution",
    "torch._convolution", "torch.nn.grad.conv2d_input", "torch.nn.grad.conv2d_weight",
    "torch.nn.functional.unfold", "torch.nn.functional.fold", "torch.Tensor.unfold",
    "torch.nn.functional.max_pool2d", "torch.nn.functional.max_pool2d_with_indices", "torch.max_pool2d",
    "torch.nn.functional.avg_pool2d", "torch.nn.functional.adaptive_max_pool2d",
    "torch.nn.functional.adaptive_avg_pool2d", "torch.nn.functional.lp_pool2d", "torch.nn.functional.max_unpool2d",
)
AUTOGRAD = ("torch.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward", "torch.func.vjp",
            "torch.func.grad")
# The same operations by their last name, however they are reached (torch._C._nn.im2col, torch.ops.aten...):
# a measured call must not call any of these.
_FORBIDDEN_NAMES = frozenset((
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "convolution", "_convolution",
    "mkldnn_convolution", "thnn_conv2d", "_slow_conv2d_forward", "slow_conv_dilated2d", "cudnn_convolution",
    "miopen_convolution", "convolution_backward", "conv2d_input", "conv2d_weight", "im2col", "col2im", "unfold",
    "fold", "max_pool2d", "max_pool2d_with_indices", "_max_pool2d", "avg_pool2d", "adaptive_max_pool2d",
    "adaptive_avg_pool2d", "lp_pool2d", "max_unpool2d",
))
GROWTH_LIMIT = 20  # extra torch calls or lines tolerated when a dimension grows by 38 (a loop adds >= 38)


def _program(autograd: bool = True) -> Program:
    """A program that fails if the exercise calls torch's own convolution, pooling (or autograd)."""
    return Program().forbid(*CONV_OPS, *(AUTOGRAD if autograd else ()))


def _shape(t: torch.Tensor | tuple[int, ...]) -> str:
    return "×".join(map(str, t.shape if isinstance(t, torch.Tensor) else t))


def _describe(x: torch.Tensor) -> str:
    return f"{_shape(x)} {str(x.dtype).removeprefix('torch.')}"


def _tolerance(dtype: torch.dtype, scale: float) -> tuple[float, float]:
    """``(atol, rtol)``: float32 sums of products carry rounding of about 1e-6 of their size."""
    scale = max(1.0, scale)
    return (1e-4 * scale, 1e-4) if dtype != torch.float64 else (1e-9 * scale, 1e-7)


def _mismatches(got: torch.Tensor, expected: torch.Tensor) -> int:
    atol, rtol = _tolerance(got.dtype, float(expected.abs().max()) if expected.numel() else 1.0)
    return count_mismatches(got, expected, atol=atol, rtol=rtol)


def _matches(got: torch.Tensor, candidate: torch.Tensor) -> bool:
    return tuple(got.shape) == tuple(candidate.shape) and _mismatches(got, candidate.to(got.dtype)) == 0


def _where_wrong(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    atol, rtol = _tolerance(got.dtype, float(expected.abs().max()) if expected.numel() else 1.0)
    return ~torch.isclose(got.double(), expected.double(), rtol=rtol, atol=atol)


def _largest_difference(got: torch.Tensor, expected: torch.Tensor) -> str:
    return f"{float((got.double() - expected.double()).abs().max()):.3g}"


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# ----------------------------------------------------------------------------- output sizes

_SIZE_MISTAKES: tuple[tuple[str, Callable[[int, int, int, int, int], int]], ...] = (
    ("the stride is ignored: the window moves `stride` positions at a time, so divide by the stride",
     lambda n, k, s, p, d: n + 2 * p - d * (k - 1)),
    ("the padding is ignored: the padded input has size + 2·padding positions",
     lambda n, k, s, p, d: (n - d * (k - 1) - 1) // s + 1),
    ("padding is counted on one side only: zeros go on both sides, so add 2·padding",
     lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1),
    ("the dilation is ignored: a dilated kernel spans dilation·(kernel_size − 1) + 1 positions",
     lambda n, k, s, p, d: (n + 2 * p - k) // s + 1),
    ("the dilation is applied to the whole kernel: it spans dilation·(kernel_size − 1) + 1 positions, "
     "not dilation·kernel_size",
     lambda n, k, s, p, d: (n + 2 * p - d * k) // s + 1),
    ("the + 1 is missing: the first window sits at position 0, then one more for every `stride` positions left",
     lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s),
    ("the − 1 inside the floor is missing: the window's span is dilation·(kernel_size − 1) + 1",
     lambda n, k, s, p, d: (n + 2 * p - d * (k - 1)) // s + 1),
    ("it rounds up: the last window must fit entirely, so round down (floor, Python's //)",
     lambda n, k, s, p, d: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1),
    ("it is off by one",
     lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s + 2),
)


def _true_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _size_diagnosis(got: tuple[int, ...], geometry: list[tuple[int, int, int, int, int]]) -> str:
    """Why sizes ``got`` (one per axis of ``geometry``: (size, kernel, stride, padding, dilation)) are wrong."""
    expected = tuple(_true_size(*g) for g in geometry)
    likely = [why for why, wrong in _SIZE_MISTAKES
              if tuple(wrong(*g) for g in geometry) == tuple(got)]
    formula = "floor((size + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1"
    if likely:
        return f"likely, {' — or '.join(likely)}. The size is {formula}."
    return f"the size along each axis is {formula}." if got != expected else ""


def _size_cases_program(function: str, cases: list[tuple[int, int, int, int, int]], expect_error: bool) -> Program:
    p = _program()
    refs = {}
    for i, (n, k, s, pad, d) in enumerate(cases):
        call = p.raises if expect_error else p.call
        refs[f"case{i}"] = call(f"conv.{function}", n, k, stride=s, padding=pad, dilation=d)
    return p.fetch(**refs)


def output_size_values(cases: list[tuple[int, int, int, int, int]], show_inputs: bool = True) -> Property:
    """``conv_output_size(size, kernel_size, stride=, padding=, dilation=)`` is the floor formula, an ``int``."""

    def judge(got: dict[str, Any]) -> None:
        for i, case in enumerate(cases):
            value, expected = got[f"case{i}"], _true_size(*case)
            call = "conv_output_size(size={}, kernel_size={}, stride={}, padding={}, dilation={})".format(*case)
            where = call if show_inputs else "conv_output_size"
            if isinstance(value, float) and value == expected:
                raise Mistake(f"{where} returned the float {value!r}; return an int (use // for the floor).")
            if type(value) is not int:
                raise Mistake(f"{where} returned a {type(value).__name__}; it must return a Python int.")
            if value != expected:
                why = _size_diagnosis((value,), [case])
                shown = f" returned {value}; expected {expected}:" if show_inputs else " gave a wrong size:"
                raise Mistake(f"{where}{shown} {why}")

    title = "is floor((size + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1"
    return Property("conv_output_size", f"{title} ({len(cases)} cases)",
                    _size_cases_program("conv_output_size", cases, False), judge)


def output_size_raises(cases: list[tuple[int, int, int, int, int]], show_inputs: bool = True) -> Property:
    """``ValueError`` when the formula gives less than 1 (the kernel does not fit)."""

    def judge(got: dict[str, Any]) -> None:
        for i, case in enumerate(cases):
            outcome = got[f"case{i}"]
            call = "conv_output_size(size={}, kernel_size={}, stride={}, padding={}, dilation={})".format(*case)
            where = call if show_inputs else "conv_output_size"
            if not isinstance(outcome, dict) or outcome.get("raised") == "ValueError":
                continue
            if outcome.get("raised") == "NotImplementedError":
                raise Mistake("conv_output_size is not implemented yet (it still raises NotImplementedError).")
            if outcome.get("raised"):
                raise Mistake(f"{where} raised {outcome['raised']}; it must raise ValueError when the kernel "
                              "does not fit.")
            n, k, s, p, d = case
            span = n + 2 * p - d * (k - 1) - 1
            if span < 0 and int(span / s) + 1 >= 1:
                raise Mistake(f"{where} returned a size instead of raising ValueError. The formula floors a negative "
                              "number here: int() and round() go toward zero, Python's // rounds down (floor).")
            raise Mistake(f"{where} returned instead of raising ValueError: when the formula gives less than 1 the "
                          "kernel does not fit, and the function must say so with a ValueError.")

    return Property("conv_output_size", f"raises ValueError when the output would be empty ({len(cases)} cases)",
                    _size_cases_program("conv_output_size", cases, True), judge)


# ----------------------------------------------------------------------------- forward values


def _conv_reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: int,
                    padding: int) -> torch.Tensor:
    return F.conv2d(x.double(), w.double(), None if b is None else b.double(), stride=stride, padding=padding)


def _judge_conv_output(out: Any, name: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                       stride: int, padding: int) -> None:
    """``out`` must equal ``F.conv2d(x, w, b, stride, padding)``; otherwise say what it looks like."""
    expected = _conv_reference(x, w, b, stride, padding).to(x.dtype)
    if not isinstance(out, torch.Tensor):
        raise Mistake(f"{name} must be a torch.Tensor; got {type(out).__name__}.")
    if out.ndim == 4 and tuple(out.shape[:2]) == tuple(expected.shape[:2]) and out.shape != expected.shape:
        geometry = [(x.shape[2], w.shape[2], stride, padding, 1), (x.shape[3], w.shape[3], stride, padding, 1)]
        raise Mistake(f"{name} has shape {_shape(out)}; expected N×F×OH×OW = {_shape(expected)}: "
                      + _size_diagnosis(tuple(out.shape[2:]), geometry))
    expect_tensor(out, name, expected)
    if _mismatches(out, expected) == 0:
        return
    wrong = [
        (_conv_reference(x, w.flip(2, 3), b, stride, padding),
         "it matches a convolution with the kernel flipped (true convolution): deep learning's 'convolution' is "
         "cross-correlation, out[i, j] = Σ x[i·stride + p, j·stride + q] · w[p, q], with no flip."),
        (_conv_reference(x, w.transpose(2, 3), b, stride, padding) if w.shape[2] == w.shape[3] else None,
         "it matches the kernel transposed (w[..., q, p]): kernel rows go with image rows, w[f, c, p, q] "
         "multiplies xpad[n, c, i·stride + p, j·stride + q]."),
        (_conv_reference(x, w, None, stride, padding),
         "it matches the result without the bias: add b[f] to every output of filter f."),
        (_conv_reference(F.pad(x, (0, 2 * padding, 0, 2 * padding)), w, b, stride, 0) if padding else None,
         "it matches padding 2·padding zeros on the bottom and right only: "
         "put `padding` zeros on each of the four sides."),
        (_conv_reference(F.pad(x, (2 * padding, 0, 2 * padding, 0)), w, b, stride, 0) if padding else None,
         "it matches padding 2·padding zeros on the top and left only: put `padding` zeros on each of the four sides."),
    ]
    for candidate, why in wrong:
        if candidate is not None and _matches(out, candidate):
            raise Mistake(f"{name} is wrong: {why}")
    raise Mistake(f"{name} differs from torch.nn.functional.conv2d at {_mismatches(out, expected)} of "
                  f"{expected.numel()} elements (largest difference {_largest_difference(out, expected)}).")


def _conv_forward_program(function: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                          stride: int, padding: int) -> Program:
    p = _program()
    xr, wr, br = p.put(x.clone()), p.put(w.clone()), p.put(b.clone())
    result = p.call(f"conv.{function}", xr, wr, br, stride=stride, padding=padding)
    return p.fetch(result=result, x_after=xr, w_after=wr, b_after=br)


def _conv_title(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int) -> str:
    return f"x {_describe(x)}, w {_shape(w)}, stride {stride}, padding {padding}"


def conv_forward_values(function: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                        stride: int = 1, padding: int = 0) -> Property:
    """``function`` (``conv2d_forward`` or ``conv2d_forward_naive``) equals ``F.conv2d`` and returns a pair."""

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], function)
        _judge_conv_output(out, f"{function}'s out", x, w, b, stride, padding)

    return Property(function, f"equals torch.nn.functional.conv2d: {_conv_title(x, w, stride, padding)}",
                    _conv_forward_program(function, x, w, b, stride, padding), judge)


def conv_forward_keeps_inputs(function: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                              stride: int = 1, padding: int = 0) -> Property:
    def judge(got: dict[str, Any]) -> None:
        for name, before in (("x", x), ("w", w), ("b", b)):
            expect_unchanged(got[f"{name}_after"], before, name, function)

    return Property(function, "leaves x, w and b unchanged", _conv_forward_program(function, x, w, b, stride, padding),
                    judge)


def _bad_input_property(exercise: str, calls: list[tuple[str, list[Any], dict[str, Any]]], what: list[str],
                        good: list[Any]) -> Property:
    """Each of ``calls`` raises ``ValueError``, and ``exercise(*good)`` returns (so that the given input
    checks of an unimplemented stub earn nothing)."""
    p = _program()
    p.call(f"conv.{exercise}", *good)
    refs = {f"case{i}": p.raises(f"conv.{target}", *args, **kwargs) for i, (target, args, kwargs) in enumerate(calls)}
    p.fetch(**refs)

    def judge(got: dict[str, Any]) -> None:
        for i in range(len(calls)):
            outcome = got[f"case{i}"]
            if outcome.get("raised") == "ValueError":
                continue
            if outcome.get("raised") == "NotImplementedError":
                raise Mistake(f"{exercise} is not implemented yet (it still raises NotImplementedError).")
            did = f"raised {outcome['raised']}" if outcome.get("raised") else "returned normally"
            raise Mistake(f"{exercise} {did} on bad input ({what[i]}); it must raise ValueError saying what was "
                          "expected (keep the given input checks at the top of the function).")

    return Property(exercise, "raises ValueError on bad input, returns on good input", p, judge)


def conv_forward_bad_input(function: str) -> Property:
    x, w, b = torch.zeros(2, 3, 5, 5), torch.zeros(4, 3, 3, 3), torch.zeros(4)
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        (function, [x[0], w, b], {}), (function, [x, w[:, :2], b], {}), (function, [x, w, b[:3]], {}),
        (function, [x[:, :, :2, :2], w, b], {"padding": 0})]
    what = ["x of 3 dimensions", "w with the wrong number of channels", "b of the wrong length",
            "a kernel larger than the input"]
    return _bad_input_property(function, calls, what, [x, w, b])


# ----------------------------------------------------------------------------- im2col


def _unfold_layouts(expected: torch.Tensor, x: torch.Tensor, kernel: tuple[int, int],
                    out_hw: tuple[int, int]) -> list[tuple[torch.Tensor, str]]:
    """Realistic wrong layouts of ``unfold``'s result, each with its diagnosis."""
    N, C = x.shape[:2]
    KH, KW = kernel
    OH, OW = out_hw
    six = expected.reshape(N, C, KH, KW, OH, OW)
    return [
        (six.permute(0, 2, 3, 1, 4, 5).reshape(N, C * KH * KW, OH * OW),
         "the rows are ordered (p, q, c), channel fastest; unfold orders them (c, p, q): row (c·KH + p)·KW + q, "
         "channel slowest, kernel column fastest."),
        (six.permute(0, 1, 3, 2, 4, 5).reshape(N, C * KH * KW, OH * OW),
         "the rows are ordered (c, q, p), kernel row fastest; unfold orders them (c, p, q): kernel column fastest."),
        (six.permute(0, 1, 2, 3, 5, 4).reshape(N, C * KH * KW, OH * OW),
         "the columns go through the output positions column by column; unfold goes row by row: column i·OW + j, "
         "j fastest."),
    ]


def _judge_im2col(cols: Any, x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                  padding: tuple[int, int]) -> None:
    expected = F.unfold(x.double(), kernel, stride=stride, padding=padding).to(x.dtype)
    N, C = x.shape[:2]
    KH, KW = kernel
    geometry = [(x.shape[2], KH, stride[0], padding[0], 1), (x.shape[3], KW, stride[1], padding[1], 1)]
    out_hw = (_true_size(*geometry[0]), _true_size(*geometry[1]))
    L, R = out_hw[0] * out_hw[1], C * KH * KW
    if not isinstance(cols, torch.Tensor):
        raise Mistake(f"im2col must return a torch.Tensor; got {type(cols).__name__}.")
    shape = tuple(cols.shape)
    if shape != tuple(expected.shape):
        if shape == (N, L, R):
            raise Mistake(f"im2col returned {_shape(cols)}, the transpose of unfold's layout N × (C·KH·KW) × (OH·OW) "
                          f"= {_shape(expected)}: one column per output position, one row per (c, p, q).")
        if shape == (N, C, KH, KW, *out_hw) or shape == (N, C, KH, KW, L):
            raise Mistake(f"im2col returned {_shape(cols)}: reshape it to N × (C·KH·KW) × (OH·OW) "
                          f"= {_shape(expected)}.")
        if shape == (R, N * L):
            raise Mistake(f"im2col returned one matrix for the whole batch, {_shape(cols)}; keep the batch first: "
                          f"N × (C·KH·KW) × (OH·OW) = {_shape(expected)}.")
        if len(shape) == 3 and shape[:2] == (N, R):
            likely = [why for why, wrong in _SIZE_MISTAKES
                      if wrong(*geometry[0]) * wrong(*geometry[1]) == shape[2]]
            hint = f" Likely, {' — or '.join(likely)}." if likely else ""
            raise Mistake(f"im2col returned {shape[2]} columns; expected OH·OW = {out_hw[0]}·{out_hw[1]} = {L} "
                          f"output positions.{hint}")
        raise Mistake(f"im2col returned shape {_shape(cols)}; expected N × (C·KH·KW) × (OH·OW) = {_shape(expected)}.")
    expect_tensor(cols, "im2col's result", expected)
    if _mismatches(cols, expected) == 0:
        return
    for candidate, why in _unfold_layouts(expected, x, kernel, out_hw):
        if not torch.equal(candidate, expected) and _matches(cols, candidate):
            raise Mistake(f"im2col holds the right values in another layout than unfold: {why}")
    if any(padding):
        ph, pw = padding
        for pad, side in (((0, 2 * pw, 0, 2 * ph), "bottom and right"), ((2 * pw, 0, 2 * ph, 0), "top and left")):
            shifted = F.unfold(F.pad(x.double(), pad), kernel, stride=stride)
            if tuple(shifted.shape) == shape and _matches(cols, shifted):
                raise Mistake(f"im2col pads 2·padding zeros on the {side} only: put `padding` zeros on each side.")
    if torch.equal(cols.double().sort(dim=1).values, expected.double().sort(dim=1).values):
        raise Mistake("each column of im2col holds the right values in the wrong order: unfold orders a window's "
                      "entries (c, p, q), channel slowest and kernel column fastest.")
    raise Mistake(f"im2col differs from torch.nn.functional.unfold at {_mismatches(cols, expected)} of "
                  f"{expected.numel()} elements.")


def _im2col_program(x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any) -> Program:
    p = _program()
    xr = p.put(x.clone())
    return p.fetch(cols=p.call("conv.im2col", xr, kernel_size, stride=stride, padding=padding), x_after=xr)


def im2col_values(x: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                  padding: int | tuple[int, int] = 0) -> Property:
    """``im2col`` equals ``F.unfold`` exactly, layout included."""
    kernel, s, pad = _pair(kernel_size), _pair(stride), _pair(padding)

    def judge(got: dict[str, Any]) -> None:
        _judge_im2col(got["cols"], x, kernel, s, pad)

    title = (f"equals torch.nn.functional.unfold: x {_describe(x)}, kernel {kernel_size}, stride {stride}, "
             f"padding {padding}")
    return Property("im2col", title, _im2col_program(x, kernel_size, stride, padding), judge)


def im2col_keeps_input(x: torch.Tensor, kernel_size: Any, stride: Any = 1, padding: Any = 0) -> Property:
    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["x_after"], x, "x", "im2col")

    return Property("im2col", "leaves x unchanged", _im2col_program(x, kernel_size, stride, padding), judge)


def im2col_bad_input() -> Property:
    x = torch.zeros(2, 3, 5, 5)
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("im2col", [x[0], (3, 3)], {}), ("im2col", [x, (7, 3)], {}), ("im2col", [x, (3, 3)], {"stride": 0})]
    return _bad_input_property("im2col", calls, ["x of 3 dimensions", "a kernel taller than the input", "stride 0"],
                               [x, (3, 3)])


# ----------------------------------------------------------------------------- col2im


def _coverage(input_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int]) -> torch.Tensor:
    """How many windows hold each pixel: ``fold(unfold(ones))``."""
    ones = torch.ones(input_shape, dtype=torch.float64)
    return F.fold(F.unfold(ones, kernel, stride=stride, padding=padding), input_shape[2:], kernel,
                  stride=stride, padding=padding)


def _scatter_diagnosis(name: str, got: torch.Tensor, expected: torch.Tensor, coverage: torch.Tensor,
                       stride: tuple[int, int], stride_one_ok: bool | None) -> str:
    """Why a scatter-back (col2im, dx, maxpool dx) is wrong, from where it is wrong."""
    wrong = _where_wrong(got, expected)
    if bool((wrong & (coverage > 1)).any()) and not bool((wrong & (coverage <= 1)).any()):
        return (f"{name} is wrong exactly where windows overlap (pixels that lie in several windows) and right "
                "everywhere else: overlapping windows overwrite each other. A pixel's gradient is the SUM of the "
                "contributions of every window containing it: accumulate (+=, index_add_, scatter_add_), never assign.")
    if stride_one_ok and max(stride) > 1:
        return (f"{name} is right with stride 1 but wrong with stride {stride}: the stride is ignored when scattering "
                "back. Column (i, j) came from the window at rows i·stride + p and columns j·stride + q; "
                "it must go back there.")
    return (f"{name} differs from the expected values at {int(wrong.sum())} of {expected.numel()} elements "
            f"(largest difference {_largest_difference(got, expected)}).")


def _col2im_program(cases: list[tuple[torch.Tensor, tuple[int, ...], Any, Any, Any]]) -> Program:
    p = _program()
    refs: dict[str, Ref] = {}
    for i, (cols, shape, k, s, pad) in enumerate(cases):
        cr = p.put(cols.clone())
        refs[f"dx{i}"] = p.call("conv.col2im", cr, tuple(shape), k, stride=s, padding=pad)
        refs[f"cols_after{i}"] = cr
    return p.fetch(**refs)


def col2im_values(cases: list[tuple[torch.Tensor, tuple[int, ...], Any, Any, Any]]) -> Property:
    """``col2im(cols, input_shape, kernel_size, stride, padding)`` equals ``F.fold`` for every case."""

    def judge(got: dict[str, Any]) -> None:
        ok: dict[int, bool] = {}
        results = []
        for i, (cols, shape, k, s, pad) in enumerate(cases):
            kernel, stride, padding = _pair(k), _pair(s), _pair(pad)
            expected = F.fold(cols.double(), shape[2:], kernel, stride=stride, padding=padding).to(cols.dtype)
            dx = got[f"dx{i}"]
            if isinstance(dx, torch.Tensor) and dx.ndim == 4 and tuple(dx.shape[2:]) == (
                    shape[2] + 2 * padding[0], shape[3] + 2 * padding[1]) and any(padding):
                raise Mistake(f"col2im returned {_shape(dx)}, the padded size: crop the padding off (it is not part "
                              f"of the image), to get N×C×H×W = {_shape(shape)}.")
            dx = expect_tensor(dx, "col2im's result", expected)
            ok[i] = _mismatches(dx, expected) == 0
            results.append((dx, expected, kernel, stride, padding, shape))
        for i, (dx, expected, kernel, stride, padding, shape) in enumerate(results):
            if ok[i]:
                continue
            stride_one_ok = any(ok[j] for j, c in enumerate(cases) if _pair(c[3]) == (1, 1))
            raise Mistake(_scatter_diagnosis("col2im's result", dx, expected, _coverage(shape, kernel, stride, padding),
                                             stride, stride_one_ok))

    shown = "; ".join(f"{_shape(s)} from kernel {k}, stride {st}, padding {pd}" for _, s, k, st, pd in cases)
    return Property("col2im", f"equals torch.nn.functional.fold (sums overlaps): {shown}", _col2im_program(cases),
                    judge)


def col2im_keeps_input(cases: list[tuple[torch.Tensor, tuple[int, ...], Any, Any, Any]]) -> Property:
    def judge(got: dict[str, Any]) -> None:
        for i, case in enumerate(cases):
            expect_unchanged(got[f"cols_after{i}"], case[0], "cols", "col2im")

    return Property("col2im", "leaves cols unchanged", _col2im_program(cases), judge)


# ----------------------------------------------------------------------------- backward


BackwardCase = tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int, torch.Tensor]  # x, w, b, stride, padding, dout


def _conv_grads(case: BackwardCase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, w, b, stride, padding, dout = case
    # detach().clone(): a float64 input's .double() is the input itself, which must not collect .grad
    # (a property judged twice would see it doubled)
    xs, ws, bs = (t.detach().double().clone().requires_grad_() for t in (x, w, b))
    F.conv2d(xs, ws, bs, stride=stride, padding=padding).backward(dout.double())
    return tuple(t.grad.to(x.dtype) for t in (xs, ws, bs))  # type: ignore[return-value]


def _backward_program(cases: list[BackwardCase]) -> Program:
    p = _program()
    refs: dict[str, Ref] = {}
    for i, (x, w, b, stride, padding, dout) in enumerate(cases):
        xr, dr = p.put(x.clone()), p.put(dout.clone())
        forward = p.call("conv.conv2d_forward", xr, p.put(w.clone()), p.put(b.clone()), stride=stride, padding=padding)
        refs[f"grads{i}"] = p.call("conv.conv2d_backward", dr, p.item(forward, 1))
        refs[f"x_after{i}"], refs[f"dout_after{i}"] = xr, dr
    return p.fetch(**refs)


def _judge_db(db: Any, dout: torch.Tensor, expected: torch.Tensor) -> None:
    N, Fn = dout.shape[:2]
    if isinstance(db, torch.Tensor) and tuple(db.shape) != (Fn,):
        shape = tuple(db.shape)
        hints = {(Fn, *dout.shape[2:]): "summed over N only", (N, Fn): "summed over OH and OW but not over N",
                 (N,): "summed over filters and positions: that is one number per image", (): "summed everything",
                 (1, Fn, 1, 1): "kept the summed dimensions"}
        hint = hints.get(shape, "summed over the wrong axes")
        raise Mistake(f"db has shape {_shape(db) or '()'}; it must be F = ({Fn},): it {hint}. "
                      "db[f] = Σ over n, i, j of dout[n, f, i, j], i.e. dout.sum(dim=(0, 2, 3)).")
    db = expect_tensor(db, "db", expected)
    if _mismatches(db, expected) == 0:
        return
    if _matches(db, dout.double().mean(dim=(0, 2, 3))):
        raise Mistake("db is the mean of dout over N, OH and OW; it must be the sum: each output adds b[f] once.")
    raise Mistake(f"db differs from dout.sum(dim=(0, 2, 3)) at {_mismatches(db, expected)} of {db.numel()} elements: "
                  "the bias gradient sums dout over images and positions (axes 0, 2, 3).")


def conv_backward_values(cases: list[BackwardCase]) -> Property:
    """``conv2d_backward`` gives autograd's dx, dw, db (through ``F.conv2d``) for every case."""

    def judge(got: dict[str, Any]) -> None:
        expected = [_conv_grads(c) for c in cases]
        dx_ok: dict[int, bool] = {}
        fetched = []
        for i, case in enumerate(cases):
            grads = got[f"grads{i}"]
            if not isinstance(grads, (tuple, list)) or len(grads) != 3:
                raise Mistake("conv2d_backward must return three gradients (dx, dw, db); it returned "
                              f"{type(grads).__name__}"
                              + (f" of length {len(grads)}" if isinstance(grads, (tuple, list)) else "") + ".")
            dx, dw, db = grads
            ex, ew, eb = expected[i]
            x, w, _, stride, padding, dout = case
            if isinstance(dx, torch.Tensor) and tuple(dx.shape) == tuple(ew.shape) != tuple(ex.shape):
                raise Mistake("conv2d_backward returned dw first: return (dx, dw, db), in the order the forward "
                              "took x, w, b.")
            _judge_db(db, dout, eb)
            dw = expect_tensor(dw, "dw", ew)
            if _mismatches(dw, ew):
                if _matches(dw, ew.flip(2, 3)):
                    raise Mistake("dw is flipped (w[..., KH−1−p, KW−1−q]): the forward is a cross-correlation, and "
                                  "dw[f, c, p, q] = Σ dout[n, f, i, j] · xpad[n, c, i·stride + p, j·stride + q].")
                raise Mistake(f"dw differs from autograd's at {_mismatches(dw, ew)} of {ew.numel()} elements "
                              f"(largest difference {_largest_difference(dw, ew)}): dw = Σ_n dout[n] @ cols[n]ᵀ, "
                              "reshaped to F×C×KH×KW.")
            if isinstance(dx, torch.Tensor) and dx.ndim == 4 and padding and tuple(dx.shape[2:]) == (
                    x.shape[2] + 2 * padding, x.shape[3] + 2 * padding):
                raise Mistake(f"dx has the padded shape {_shape(dx)}: crop the padding off to get x's shape "
                              f"{_shape(x)}.")
            dx = expect_tensor(dx, "dx", ex)
            dx_ok[i] = _mismatches(dx, ex) == 0
            fetched.append(dx)
        for i, case in enumerate(cases):
            if dx_ok[i]:
                continue
            x, w, _, stride, padding, _ = case
            coverage = _coverage(tuple(x.shape), tuple(w.shape[2:]), (stride, stride), (padding, padding))
            stride_one_ok = any(dx_ok[j] for j, c in enumerate(cases) if c[3] == 1)
            raise Mistake(_scatter_diagnosis("dx", fetched[i], expected[i][0], coverage, (stride, stride),
                                             stride_one_ok))

    shown = "; ".join(_conv_title(c[0], c[1], c[3], c[4]) for c in cases)
    return Property("conv2d_backward", f"dx, dw, db equal autograd's through F.conv2d: {shown}",
                    _backward_program(cases), judge)


def conv_backward_keeps_inputs(cases: list[BackwardCase]) -> Property:
    def judge(got: dict[str, Any]) -> None:
        for i, case in enumerate(cases):
            expect_unchanged(got[f"x_after{i}"], case[0], "x", "conv2d_forward/conv2d_backward")
            expect_unchanged(got[f"dout_after{i}"], case[5], "dout", "conv2d_backward")

    return Property("conv2d_backward", "leaves x and dout unchanged", _backward_program(cases), judge)


# ----------------------------------------------------------------------------- the backward pass as convolutions


def _grad_program(function: str, cases: list[BackwardCase]) -> Program:
    """``conv2d_input_grad(x.shape, w, dout, ...)`` or ``conv2d_weight_grad(x, w.shape, dout, ...)`` per case."""
    p = _program()
    refs: dict[str, Ref] = {}
    for i, (x, w, _, stride, padding, dout) in enumerate(cases):
        dr = p.put(dout.clone())
        if function == "conv2d_input_grad":
            other = p.put(w.clone())
            refs[f"grad{i}"] = p.call("conv.conv2d_input_grad", tuple(x.shape), other, dr, stride=stride,
                                      padding=padding)
        else:
            other = p.put(x.clone())
            refs[f"grad{i}"] = p.call("conv.conv2d_weight_grad", other, tuple(w.shape), dr, stride=stride,
                                      padding=padding)
        refs[f"other_after{i}"], refs[f"dout_after{i}"] = other, dr
    return p.fetch(**refs)


def _leftover(size: int, kernel: int, stride: int, padding: int) -> int:
    """Rows (or columns) of the padded input past the last window: ``(size + 2·padding − kernel) mod stride``."""
    return (size + 2 * padding - kernel) % stride


def _judge_input_grad(dx: Any, case: BackwardCase) -> bool:
    """Raise on a wrong shape; ``True`` when ``dx`` equals autograd's, ``False`` when only its values are wrong."""
    x, w, b, stride, padding, dout = case
    expected = _conv_grads(case)[0]
    if isinstance(dx, torch.Tensor) and dx.ndim == 4 and tuple(dx.shape) != tuple(x.shape):
        got_hw, want_hw = tuple(dx.shape[2:]), tuple(x.shape[2:])
        short = (want_hw[0] - got_hw[0], want_hw[1] - got_hw[1])
        left = (_leftover(x.shape[2], w.shape[2], stride, padding), _leftover(x.shape[3], w.shape[3], stride, padding))
        if padding and got_hw == (want_hw[0] + 2 * padding, want_hw[1] + 2 * padding):
            raise Mistake(f"conv2d_input_grad returned the padded shape {_shape(dx)}: crop `padding` rows and columns "
                          f"off each side to get input_shape {_shape(x)}.")
        if any(left) and short == left:
            raise Mistake(f"conv2d_input_grad returned {_shape(dx)}, {short[0]} row(s) and {short[1]} column(s) "
                          f"short of input_shape {_shape(x)}: with stride {stride} the last windows do not reach the "
                          "last rows or columns of the padded input. They get zero gradient, but they are there: "
                          "pad the full correlation's input with that many extra zeros at the bottom and right.")
        if dx.shape[1] != x.shape[1]:
            raise Mistake(f"conv2d_input_grad returned {dx.shape[1]} channels; x has {x.shape[1]}: the transposed "
                          "convolution's kernel is w with its first two axes swapped, C×F×KH×KW.")
        raise Mistake(f"conv2d_input_grad returned shape {_shape(dx)}; it must be input_shape, {_shape(x)}. Dilate "
                      "dout by the stride, pad it fully (KH − 1, KW − 1), correlate, crop the padding.")
    dx = expect_tensor(dx, "conv2d_input_grad's result", expected)
    if _mismatches(dx, expected) == 0:
        return True
    flipped = _conv_grads((x, w.flip(2, 3), b, stride, padding, dout))[0]
    if _matches(dx, flipped):
        raise Mistake("conv2d_input_grad is the gradient for the kernel flipped: the transposed convolution "
                      "correlates dout with w flipped in both spatial axes, w.flip(2, 3) (each output used "
                      "w[f, c, p, q] at offset (p, q); going back, the offsets run the other way).")
    if w.shape[0] == w.shape[1]:
        swapped = _conv_grads((x, w.transpose(0, 1).contiguous(), b, stride, padding, dout))[0]
        if _matches(dx, swapped):
            raise Mistake("conv2d_input_grad uses w's channels the wrong way round: the kernel of the transposed "
                          "convolution maps F channels (dout) to C channels (dx), w.transpose(0, 1), C×F×KH×KW.")
    return False


def conv_input_grad_values(cases: list[BackwardCase]) -> Property:
    """``conv2d_input_grad`` equals autograd's ``dx`` through ``F.conv2d`` for every case; no input is modified."""

    def judge(got: dict[str, Any]) -> None:
        ok = {i: _judge_input_grad(got[f"grad{i}"], case) for i, case in enumerate(cases)}
        for i, case in enumerate(cases):
            if ok[i]:
                expect_unchanged(got[f"other_after{i}"], case[1], "w", "conv2d_input_grad")
                expect_unchanged(got[f"dout_after{i}"], case[5], "dout", "conv2d_input_grad")
                continue
            stride = case[3]
            if stride > 1 and any(ok[j] for j, c in enumerate(cases) if c[3] == 1):
                raise Mistake(f"conv2d_input_grad is right with stride 1 but wrong with stride {stride}: dilate dout "
                              "first, stride − 1 zeros between neighbouring entries, so that each output sits at the "
                              "input position its window started from; then correlate with stride 1.")
            expected = _conv_grads(case)[0]
            raise Mistake(f"conv2d_input_grad differs from autograd's dx at {_mismatches(got[f'grad{i}'], expected)} "
                          f"of {expected.numel()} elements ({_conv_title(case[0], case[1], stride, case[4])}).")

    shown = "; ".join(_conv_title(c[0], c[1], c[3], c[4]) for c in cases)
    return Property("conv2d_input_grad", f"equals autograd's dx through F.conv2d: {shown}",
                    _grad_program("conv2d_input_grad", cases), judge)


def _judge_weight_grad(dw: Any, case: BackwardCase) -> bool:
    x, w, b, stride, padding, dout = case
    expected = _conv_grads(case)[1]
    Fn, C, KH, KW = w.shape
    if isinstance(dw, torch.Tensor) and dw.ndim == 4 and tuple(dw.shape) != tuple(w.shape):
        if tuple(dw.shape[:2]) == (C, Fn) and C != Fn:
            raise Mistake(f"conv2d_weight_grad returned {_shape(dw)}, C×F×…: the correlation gives the channels of x "
                          "first; swap the first two axes back, .transpose(0, 1), to get F×C×KH×KW.")
        if tuple(dw.shape[:2]) in ((Fn, C), (C, Fn)) and padding and (dw.shape[2] < KH or dw.shape[3] < KW):
            raise Mistake(f"conv2d_weight_grad returned {_shape(dw)}, smaller than the kernel {KH}×{KW}: the "
                          f"padding is missing. Correlate the padded x, with {padding} zeros on each side.")
        if tuple(dw.shape[:2]) in ((Fn, C), (C, Fn)) and dw.shape[2] >= KH and dw.shape[3] >= KW:
            raise Mistake(f"conv2d_weight_grad returned {_shape(dw)}, larger than the kernel {KH}×{KW}: when the "
                          "stride does not divide H + 2·padding − KH the correlation has extra positions no weight "
                          "was used at. Keep the first KH×KW.")
        raise Mistake(f"conv2d_weight_grad returned shape {_shape(dw)}; it must be weight_shape, {_shape(w)}. "
                      "Correlate the padded x (seen as C×N×H×W) with dout dilated by the stride (as F×N×…).")
    dw = expect_tensor(dw, "conv2d_weight_grad's result", expected)
    if _mismatches(dw, expected) == 0:
        return True
    if _matches(dw, expected.flip(2, 3)):
        raise Mistake("conv2d_weight_grad is flipped (w[..., KH−1−p, KW−1−q]): dw[f, c, p, q] = Σ dout[n, f, i, j] · "
                      "xpad[n, c, i·stride + p, j·stride + q], a correlation, with no flip.")
    return False


def conv_weight_grad_values(cases: list[BackwardCase]) -> Property:
    """``conv2d_weight_grad`` equals autograd's ``dw`` through ``F.conv2d`` for every case; no input is modified."""

    def judge(got: dict[str, Any]) -> None:
        ok = {i: _judge_weight_grad(got[f"grad{i}"], case) for i, case in enumerate(cases)}
        for i, case in enumerate(cases):
            if ok[i]:
                expect_unchanged(got[f"other_after{i}"], case[0], "x", "conv2d_weight_grad")
                expect_unchanged(got[f"dout_after{i}"], case[5], "dout", "conv2d_weight_grad")
                continue
            stride, padding = case[3], case[4]
            if stride > 1 and any(ok[j] for j, c in enumerate(cases) if c[3] == 1):
                raise Mistake(f"conv2d_weight_grad is right with stride 1 but wrong with stride {stride}: the kernel "
                              "of the correlation is dout dilated by the stride (stride − 1 zeros between entries), so "
                              "that dout[n, f, i, j] meets xpad[n, c, i·stride + p, j·stride + q].")
            if padding and any(ok[j] for j, c in enumerate(cases) if c[4] == 0):
                raise Mistake(f"conv2d_weight_grad is right without padding but wrong with padding {padding}: "
                              "correlate the padded x, with `padding` zeros on each side.")
            expected = _conv_grads(case)[1]
            raise Mistake(f"conv2d_weight_grad differs from autograd's dw at {_mismatches(got[f'grad{i}'], expected)} "
                          f"of {expected.numel()} elements ({_conv_title(case[0], case[1], stride, padding)}).")

    shown = "; ".join(_conv_title(c[0], c[1], c[3], c[4]) for c in cases)
    return Property("conv2d_weight_grad", f"equals autograd's dw through F.conv2d: {shown}",
                    _grad_program("conv2d_weight_grad", cases), judge)


def conv_grad_bad_input(function: str) -> Property:
    x, w, dout = torch.zeros(2, 3, 5, 5), torch.zeros(4, 3, 3, 3), torch.zeros(2, 4, 3, 3)
    if function == "conv2d_input_grad":
        good: list[Any] = [tuple(x.shape), w, dout]
        calls: list[tuple[str, list[Any], dict[str, Any]]] = [
            (function, [(2, 3, 5), w, dout], {}), (function, [(2, 2, 5, 5), w, dout], {}),
            (function, [tuple(x.shape), w, dout[:, :, :2]], {})]
        what = ["input_shape of three numbers", "input_shape with the wrong number of channels",
                "dout of the wrong size"]
    else:
        good = [x, tuple(w.shape), dout]
        calls = [(function, [x[0], tuple(w.shape), dout], {}), (function, [x, (4, 2, 3, 3), dout], {}),
                 (function, [x, tuple(w.shape), dout[:, :3]], {})]
        what = ["x of 3 dimensions", "weight_shape with the wrong number of channels", "dout with the wrong filters"]
    return _bad_input_property(function, calls, what, good)


# ----------------------------------------------------------------------------- vectorized, by counting


def _conv_inputs(n: int, c: int, size: int, f: int, k: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, size, size, generator=gen), torch.randn(f, c, k, k, generator=gen),
            torch.randn(f, generator=gen))


# (label, images, filters, input size): 3×3 kernel, stride 1, padding 1, so 3×3 → 40×40 output positions.
_SCALING = (("base", 2, 2, 3), ("images", 40, 2, 3), ("filters", 2, 40, 3), ("positions", 2, 2, 40))
_GROWS = {"images": ("the number of images N", "2 to 40", "a Python loop over images: process the whole batch at once"),
          "filters": ("the number of filters F", "2 to 40",
                      "a Python loop over filters: one matrix product handles every filter at once"),
          "positions": ("the number of output positions", "3×3 to 40×40",
                        "a Python loop over output positions (or rows): gather every window at once, for example "
                        "one strided slice per kernel offset (a loop over the KH·KW offsets is fine), index tensors, "
                        "or as_strided")}


def _vectorized_program(exercise: str, seed: int) -> Program:
    p = _program()
    refs: dict[str, Ref] = {}
    for label, n, f, size in _SCALING:
        if exercise == "im2col" and label == "filters":
            continue
        x, w, b = _conv_inputs(n, 2, size, f, 3, seed)
        if exercise == "im2col":
            refs[label] = p.measure("conv.im2col", p.put(x), (3, 3), stride=1, padding=1)
        elif exercise == "conv2d_forward":
            refs[label] = p.measure("conv.conv2d_forward", p.put(x), p.put(w), p.put(b), stride=1, padding=1)
        else:
            forward = p.call("conv.conv2d_forward", p.put(x), p.put(w), p.put(b), stride=1, padding=1)
            dout = torch.randn(n, f, size, size, generator=torch.Generator().manual_seed(seed + 1))
            refs[label] = p.measure("conv.conv2d_backward", p.put(dout), p.item(forward, 1))
    return p.fetch(**refs)


def vectorized(exercise: str, seed: int = 0) -> Property:
    """``exercise`` (``im2col``, ``conv2d_forward`` or ``conv2d_backward``) does the same number of torch
    operations and Python lines whether there are 2 or 40 images, 2 or 40 filters, 9 or 1600 positions."""

    def judge(got: dict[str, Any]) -> None:
        for label in got:
            used = [name for name in got[label]["op_names"] if _FORBIDDEN_NAMES.intersection(name.split(".")[-2:])]
            if used:
                raise Mistake(f"{exercise} called {used[0]}, which this exercise must not use: compute it from "
                              "basic tensor operations.")
        base = got["base"]
        for label in got:
            if label == "base":
                continue
            what, sizes, likely = _GROWS[label]
            ops, lines = got[label]["ops"] - base["ops"], got[label]["lines"] - base["lines"]
            if ops > GROWTH_LIMIT or lines > GROWTH_LIMIT:
                raise Mistake(
                    f"{exercise} is not vectorized: when {what} grows from {sizes}, it runs {ops:+d} torch operations "
                    f"({base['ops']} → {got[label]['ops']}) and {lines:+d} Python lines ({base['lines']} → "
                    f"{got[label]['lines']}), where vectorized code runs the same number. Likely {likely}.")

    over = "images or output positions" if exercise == "im2col" else "images, filters or output positions"
    return Property(exercise, f"vectorized: no Python loop over {over} (work counted at two sizes)",
                    _vectorized_program(exercise, seed), judge)


# ----------------------------------------------------------------------------- max pooling


def _pool_program(x: torch.Tensor, kernel_size: Any, stride: Any, dout: torch.Tensor | None) -> Program:
    p = _program()
    xr = p.put(x.clone())
    forward = p.call("conv.maxpool2d_forward", xr, kernel_size, stride)
    refs = {"forward": forward, "x_after": xr}
    if dout is not None:
        dr = p.put(dout.clone())
        refs["dx"] = p.call("conv.maxpool2d_backward", dr, p.item(forward, 1))
        refs["dout_after"] = dr
    return p.fetch(**refs)


def _pool_title(x: torch.Tensor, kernel_size: Any, stride: Any) -> str:
    return f"x {_describe(x)}, kernel {kernel_size}, stride {stride}"


def maxpool_forward_values(x: torch.Tensor, kernel_size: int | tuple[int, int],
                           stride: int | tuple[int, int]) -> Property:
    """``maxpool2d_forward`` equals ``F.max_pool2d`` and returns a pair."""

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["forward"], "maxpool2d_forward")
        expected = F.max_pool2d(x.double(), kernel_size, stride).to(x.dtype)
        if isinstance(out, torch.Tensor) and out.ndim == 4 and tuple(out.shape[:2]) == tuple(expected.shape[:2]) \
                and out.shape != expected.shape:
            (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride)
            geometry = [(x.shape[2], kh, sh, 0, 1), (x.shape[3], kw, sw, 0, 1)]
            raise Mistake(f"maxpool2d_forward's out has shape {_shape(out)}; expected {_shape(expected)}: "
                          + _size_diagnosis(tuple(out.shape[2:]), geometry))
        out = expect_tensor(out, "maxpool2d_forward's out", expected)
        if _mismatches(out, expected) == 0:
            return
        if _matches(out, F.avg_pool2d(x.double(), kernel_size, stride)):
            raise Mistake("maxpool2d_forward averages each window; it must take the maximum.")
        if _matches(out, -F.max_pool2d(-x.double(), kernel_size, stride)):
            raise Mistake("maxpool2d_forward takes each window's minimum; it must take the maximum.")
        raise Mistake(f"maxpool2d_forward's out differs from torch.nn.functional.max_pool2d at "
                      f"{_mismatches(out, expected)} of {expected.numel()} elements.")

    return Property("maxpool2d_forward",
                    f"equals torch.nn.functional.max_pool2d: {_pool_title(x, kernel_size, stride)}",
                    _pool_program(x, kernel_size, stride, None), judge)


def maxpool_backward_values(x: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                            dout: torch.Tensor) -> Property:
    """Without ties, ``dx`` is autograd's gradient through ``F.max_pool2d`` (overlapping windows add up)."""
    windows = F.unfold(x.double().flatten(0, 1).unsqueeze(1), kernel_size, stride=stride)
    top2 = windows.topk(2, dim=1).values if windows.shape[1] > 1 else None
    if top2 is not None and bool((top2[:, 0] == top2[:, 1]).any()):
        raise ValueError("maxpool_backward_values needs an input without ties inside a window")

    def judge(got: dict[str, Any]) -> None:
        xs = x.detach().double().clone().requires_grad_()  # never x itself: its .grad would pile up
        F.max_pool2d(xs, kernel_size, stride).backward(dout.double())
        expected = xs.grad.to(x.dtype)
        dx = expect_tensor(got["dx"], "maxpool2d_backward's dx", expected)
        if _mismatches(dx, expected) == 0:
            return
        kernel, s = _pair(kernel_size), _pair(stride)
        N, C, L = x.shape[0], x.shape[1], dout.shape[2] * dout.shape[3]
        spread = dout.double().reshape(N * C, 1, L).expand(N * C, kernel[0] * kernel[1], L)
        every = F.fold(spread, x.shape[2:], kernel, stride=s).reshape(x.shape)
        if _matches(dx, every):
            raise Mistake("maxpool2d_backward sends each window's gradient to every position of the window; only "
                          "the position of the maximum receives it (the others did not affect the output).")
        coverage = _coverage((1, 1, *x.shape[2:]), kernel, s, (0, 0)).expand_as(x)
        raise Mistake(_scatter_diagnosis("maxpool2d_backward's dx", dx, expected, coverage, s, None))

    title = f"dx routes dout to each window's maximum: {_pool_title(x, kernel_size, stride)}"
    return Property("maxpool2d_backward", title, _pool_program(x, kernel_size, stride, dout), judge)


def maxpool_backward_ties(x: torch.Tensor, kernel_size: int, dout: torch.Tensor) -> Property:
    """Non-overlapping windows (``stride == kernel_size``) with tied maxima: each window's whole ``dout``
    goes to exactly one of its maxima, any one."""
    k = kernel_size

    def judge(got: dict[str, Any]) -> None:
        dx = expect_tensor(got["dx"], "maxpool2d_backward's dx", x)
        N, C = x.shape[:2]
        OH, OW = x.shape[2] // k, x.shape[3] // k
        outside = dx.clone()
        outside[:, :, : OH * k, : OW * k] = 0
        if bool((outside != 0).any()):
            raise Mistake("maxpool2d_backward puts gradient on pixels that no window covers "
                          "(past the last full window).")

        def per_window(t: torch.Tensor) -> torch.Tensor:  # N×C×OH×OW×(k·k)
            return t[:, :, : OH * k, : OW * k].double().reshape(N, C, OH, k, OW, k).permute(0, 1, 2, 4, 3, 5).flatten(4)

        xw, dxw = per_window(x), per_window(dx)
        is_max = xw == xw.amax(dim=4, keepdim=True)
        ties = is_max.sum(dim=4)
        g = dout.double()
        atol, rtol = _tolerance(x.dtype, float(g.abs().max()))
        if bool(((dxw != 0) & ~is_max).any()):
            raise Mistake("maxpool2d_backward gives gradient to a position that is not its window's maximum.")
        sums = dxw.sum(dim=4)
        tied = ties > 1
        if bool(tied.any()):
            if torch.allclose(sums[tied], g[tied] * ties[tied], atol=atol, rtol=rtol):
                raise Mistake("maxpool2d_backward sends the gradient to every tied maximum of a window: a window with "
                              "several equal maxima gives its whole gradient to ONE of them (argmax picks one index).")
            if (torch.allclose(sums[tied], g[tied], atol=atol, rtol=rtol)
                    and bool(((dxw != 0).sum(dim=4)[tied] > 1).any())):
                raise Mistake("maxpool2d_backward splits a window's gradient among its tied maxima; the contract gives "
                              "the whole gradient to one of them (any one).")
        if not torch.allclose(sums, g, atol=atol, rtol=rtol):
            raise Mistake("the gradient a window receives (the sum of dx over it) differs from its dout: each window "
                          "passes its whole dout on, once.")
        if bool(((dxw != 0).sum(dim=4) > 1).any()):
            raise Mistake("maxpool2d_backward spreads a window's gradient over several positions; "
                          "it all goes to one maximum.")

    title = f"with tied maxima, each window's gradient goes whole to one of them: {_pool_title(x, k, k)}"
    return Property("maxpool2d_backward", title, _pool_program(x, k, k, dout), judge)


def maxpool_keeps_inputs(x: torch.Tensor, kernel_size: Any, stride: Any, dout: torch.Tensor) -> Property:
    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["x_after"], x, "x", "maxpool2d_forward/maxpool2d_backward")
        expect_unchanged(got["dout_after"], dout, "dout", "maxpool2d_backward")

    return Property("maxpool2d_backward", "leaves x and dout unchanged", _pool_program(x, kernel_size, stride, dout),
                    judge)


# ----------------------------------------------------------------------------- the Conv2d module


def _module_program(C: int, Fn: int, K: int, stride: int, padding: int,
                    autograd_ok: bool = True) -> tuple[Program, Ref]:
    p = Program().forbid(*CONV_OPS, *(() if autograd_ok else ("torch.autograd.grad",)))
    p.call("torch.manual_seed", 0)
    return p, p.call("conv.Conv2d", C, Fn, K, stride=stride, padding=padding)


def conv_module_parameters(C: int, Fn: int, K: int) -> Property:
    """``Conv2d`` registers exactly ``weight`` (F×C×K×K) and ``bias`` (F) as parameters, initialized at
    ``nn.Conv2d``'s scale."""
    p, module = _module_program(C, Fn, K, 1, 0)
    p.fetch(params=p.call("builtins.list", p.method(module, "named_parameters")))

    def judge(got: dict[str, Any]) -> None:
        params = {name: value.detach() if isinstance(value, torch.Tensor) else value for name, value in got["params"]}
        shapes = {"weight": (Fn, C, K, K), "bias": (Fn,)}
        if set(params) != set(shapes):
            raise Mistake(f"Conv2d's parameters are {sorted(params) or 'none'}; it must register exactly `weight` and "
                          "`bias` as nn.Parameter attributes (self.weight = nn.Parameter(...)), so that optimizers "
                          "and .to()/.double() see them.")
        for name, shape in shapes.items():
            if tuple(params[name].shape) != shape:
                raise Mistake(f"Conv2d's {name} has shape {_shape(params[name])}; it must be {_shape(shape)}.")
            if not bool(torch.isfinite(params[name]).all()):
                raise Mistake(f"Conv2d's {name} holds non-finite values: initialize it (torch.empty is uninitialized).")
        bound = (C * K * K) ** -0.5
        std = float(params["weight"].double().std())
        if float(params["weight"].abs().max()) == 0:
            raise Mistake("Conv2d's weight is all zeros: every filter would learn the same thing. Draw it at random, "
                          "uniform in [−1/√fan_in, 1/√fan_in] with fan_in = C·K·K.")
        # Generous below (CS231n's 0.01·randn start is slow, not wrong); above 3× activations grow layer
        # by layer.
        if not 0.02 * bound <= std <= 3 * bound:
            raise Mistake(f"Conv2d's weight has standard deviation {std:.3g}, far from the 1/√fan_in scale "
                          f"({bound:.3g} for fan_in = C·K·K = {C * K * K}) of nn.Conv2d's init (standard deviation "
                          "1/√(3·fan_in)) and of He's (√(2/fan_in)): far smaller weights make the activations vanish "
                          "layer after layer, far larger ones make them blow up. Draw it uniform in "
                          "[−1/√fan_in, 1/√fan_in], as nn.Conv2d does.")

    return Property("Conv2d", f"has parameters weight {Fn}×{C}×{K}×{K} and bias {Fn}, at nn.Conv2d's scale", p, judge)


def conv_module_forward(C: int, Fn: int, K: int, stride: int, padding: int, x: torch.Tensor) -> Property:
    """The module's output equals ``F.conv2d`` with its own weight and bias."""
    p, module = _module_program(C, Fn, K, stride, padding)
    p.fetch(out=p.method(module, "__call__", p.put(x.clone())), weight=p.attr(module, "weight"),
            bias=p.attr(module, "bias"))

    def judge(got: dict[str, Any]) -> None:
        weight, bias = got["weight"], got["bias"]
        if not isinstance(weight, torch.Tensor) or not isinstance(bias, torch.Tensor):
            raise Mistake("Conv2d must have tensor attributes `weight` and `bias`.")
        weight, bias = weight.detach().to(x.dtype), bias.detach().to(x.dtype)
        out = got["out"].detach() if isinstance(got["out"], torch.Tensor) else got["out"]
        _judge_conv_output(out, "Conv2d's output", x, weight, bias, stride, padding)

    return Property("Conv2d", f"forward equals F.conv2d with its weight and bias: x {_describe(x)}, stride {stride}, "
                              f"padding {padding}", p, judge)


def conv_module_gradients(C: int, Fn: int, K: int, stride: int, padding: int, x: torch.Tensor,
                          g: torch.Tensor) -> Property:
    """``loss = (module(x) · g).sum()``; ``backward()`` runs through a custom ``autograd.Function`` and
    gives autograd's gradients for ``x``, ``weight`` and ``bias``."""
    p, module = _module_program(C, Fn, K, stride, padding, autograd_ok=False)
    if x.dtype == torch.float64:
        p.method(module, "double")
    # A fresh leaf on every run (cloned inside the program): the put tensor itself would collect .grad
    # across runs of the same program in one process.
    xr = p.method(p.method(p.put(x.clone()), "clone"), "requires_grad_")
    out = p.method(module, "__call__", xr)
    p.method(p.method(p.call("operator.mul", out, p.put(g.clone())), "sum"), "backward")
    weight, bias = p.attr(module, "weight"), p.attr(module, "bias")
    p.fetch(dx=p.attr(xr, "grad"), dw=p.attr(weight, "grad"), db=p.attr(bias, "grad"), weight=weight, bias=bias)

    def judge(got: dict[str, Any]) -> None:
        weight, bias = got["weight"], got["bias"]
        if not isinstance(weight, torch.Tensor) or not isinstance(bias, torch.Tensor):
            raise Mistake("Conv2d must have tensor attributes `weight` and `bias`.")
        xs, ws, bs = (t.detach().double().requires_grad_() for t in (x, weight, bias))
        F.conv2d(xs, ws, bs, stride=stride, padding=padding).backward(g.double())
        for name, value, want in (("x.grad", got["dx"], xs.grad), ("weight.grad", got["dw"], ws.grad),
                                  ("bias.grad", got["db"], bs.grad)):
            if value is None:
                raise Mistake(f"after backward(), {name} is None: Conv2dFunction.backward must return one gradient per "
                              "input of forward, in order (dx, dweight, dbias, None, None).")
            if isinstance(value, torch.Tensor) and tuple(value.shape) != tuple(want.shape):
                raise Mistake(f"{name} has shape {_shape(value)}; expected {_shape(want)}: the backward must return "
                              "(dx, dweight, dbias, None, None), in the order forward took its inputs.")
            value = expect_tensor(value, name, want.to(x.dtype))
            if _mismatches(value, want.to(x.dtype)):
                raise Mistake(f"{name} differs from autograd's through F.conv2d at "
                              f"{_mismatches(value, want.to(x.dtype))} "
                              f"of {want.numel()} elements. If check(\"conv_backward\") fails too, fix conv2d_backward "
                              "first; otherwise check that the Function's backward hands its dout and the forward's "
                              "cache to conv2d_backward.")

    return Property("Conv2d", "backward through a custom autograd.Function gives autograd's gradients: "
                              f"x {_describe(x)}, stride {stride}, padding {padding}", p, judge)


def conv_module_uses_function(C: int, Fn: int, K: int, x: torch.Tensor) -> Property:
    """The output's ``grad_fn`` is the node of a custom ``torch.autograd.Function``, so that ``backward``
    runs the learner's ``conv2d_backward`` rather than autograd through the forward's operations."""
    p, module = _module_program(C, Fn, K, 1, 1)
    out = p.method(module, "__call__", p.method(p.put(x.clone()), "requires_grad_"))
    grad_fn = p.attr(out, "grad_fn")
    p.fetch(custom=p.call("builtins.hasattr", grad_fn, "_forward_cls"),
            grad_fn=p.attr(p.call("builtins.type", grad_fn), "__name__"))

    def judge(got: dict[str, Any]) -> None:
        if got["grad_fn"] == "NoneType":
            raise Mistake("Conv2d's output does not require grad although its input does: it is cut off from autograd "
                          "(no detach(), torch.no_grad() or tensors rebuilt from .data in forward).")
        if not got["custom"]:
            raise Mistake(f"Conv2d's output has grad_fn {got['grad_fn']}: autograd differentiated the operations of "
                          "your forward itself, and your conv2d_backward never ran. Call a torch.autograd.Function "
                          "subclass (Conv2dFunction.apply(x, weight, bias, stride, padding)) whose backward calls "
                          "conv2d_backward.")

    return Property("Conv2d", "runs through a custom torch.autograd.Function", p, judge)


def conv_module_gradcheck(C: int, Fn: int, K: int, stride: int, padding: int, x: torch.Tensor) -> Property:
    """``torch.autograd.gradcheck(module.double(), (x,))`` passes in float64."""
    p, module = _module_program(C, Fn, K, stride, padding)
    p.method(module, "double")
    xr = p.method(p.put(x.double().clone()), "requires_grad_")
    p.fetch(outcome=p.raises("torch.autograd.gradcheck", module, (xr,), eps=1e-6, atol=1e-6, rtol=1e-4))

    def judge(got: dict[str, Any]) -> None:
        outcome = got["outcome"]
        if outcome.get("raised") == "NotImplementedError":
            raise Mistake("Conv2d is not implemented yet (its forward or backward still raises NotImplementedError).")
        if outcome.get("raised"):
            first = outcome["message"].strip().splitlines()[0] if outcome["message"].strip() else ""
            raise Mistake(f"torch.autograd.gradcheck failed ({outcome['raised']}: {first[:200]}): in float64 your "
                          "backward's gradient with respect to x disagrees with finite differences of your forward.")

    return Property("Conv2d",
                    f"passes torch.autograd.gradcheck in float64: x {_shape(x)}, stride {stride}, padding {padding}",
                    p, judge)


def conv_module_trains(seed: int, steps: int = 30) -> Property:
    """Two ``Conv2d`` layers inside an ``nn.Sequential`` learn: Adam drives the loss on a small fixed batch
    down by at least half, and both layers' weights move."""
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(12, 1, 8, 8, generator=gen), torch.randint(0, 3, (12,), generator=gen)
    p = Program().forbid(*CONV_OPS)
    p.call("torch.manual_seed", seed)
    conv1 = p.call("conv.Conv2d", 1, 4, 3, stride=1, padding=1)
    conv2 = p.call("conv.Conv2d", 4, 6, 3, stride=2, padding=1)
    before = [p.method(p.method(p.attr(c, "weight"), "detach"), "clone") for c in (conv1, conv2)]
    model = p.call("torch.nn.Sequential", conv1, p.call("torch.nn.ReLU"), conv2, p.call("torch.nn.ReLU"),
                   p.call("torch.nn.Flatten"), p.call("torch.nn.Linear", 6 * 4 * 4, 3))
    opt = p.call("torch.optim.Adam", p.method(model, "parameters"), lr=0.02)
    xr, yr = p.put(x), p.put(y)
    losses = []
    for _ in range(steps):
        p.method(opt, "zero_grad")
        loss = p.call("torch.nn.functional.cross_entropy", p.method(model, "__call__", xr), yr)
        p.method(loss, "backward")
        p.method(opt, "step")
        losses.append(p.method(loss, "item"))
    p.fetch(losses=p.call("builtins.list", losses), before1=before[0], before2=before[1],
            after1=p.attr(conv1, "weight"), after2=p.attr(conv2, "weight"))

    def judge(got: dict[str, Any]) -> None:
        losses = got["losses"]
        if not all(isinstance(v, float) and v == v for v in losses):
            raise Mistake("the training loss became NaN or was not a number: check the gradients' values and shapes.")
        for i in (1, 2):
            if torch.equal(got[f"before{i}"], got[f"after{i}"]):
                raise Mistake(f"the weight of Conv2d layer {i} did not change while training: it receives no gradient. "
                              "Register it as an nn.Parameter and return dweight from the Function's backward.")
        if not losses[-1] <= 0.5 * losses[0]:
            raise Mistake(f"a small CNN built with your Conv2d did not learn a fixed batch: the loss went from "
                          f"{losses[0]:.3f} to {losses[-1]:.3f} in {steps} Adam steps (expected at least halved).")

    return Property("Conv2d", f"trains inside nn.Sequential: the loss halves in {steps} Adam steps", p, judge)


# ----------------------------------------------------------------------------- receptive fields


def field_by_autograd(layers: list[tuple[int, ...]]) -> int:
    """The receptive field measured, not computed: the span of input pixels that receive a gradient from the
    first output of a stack of one-channel convolutions with positive weights (``(kernel, stride[, dilation])``
    per layer), along one axis."""
    geometry = [(layer[0], layer[1], layer[2] if len(layer) > 2 else 1) for layer in layers]
    size, step = 1, 1
    for k, s, d in geometry:
        size += d * k * step + s * step  # generous: every layer keeps at least one output
        step *= s
    x = torch.ones(1, 1, size, 1, dtype=torch.float64, requires_grad=True)
    h = x
    for k, s, d in geometry:
        h = F.conv2d(h, torch.ones(1, 1, k, 1, dtype=torch.float64), stride=(s, 1), dilation=(d, 1))
    (grad,) = torch.autograd.grad(h[0, 0, 0, 0], x)
    touched = grad[0, 0, :, 0].nonzero().flatten()
    return int(touched.max() - touched.min()) + 1


def _field_candidates(layers: list[tuple[int, ...]]) -> list[tuple[str, int]]:
    def field(term: Callable[[int, int, int, int, int], int], start: int = 1) -> int:
        total, jump = start, 1
        for layer in layers:
            k, s = layer[0], layer[1]
            d = layer[2] if len(layer) == 3 else 1
            total += term(k, s, d, jump, jump * s)
            jump *= s
        return total

    return [
        ("it ignores the strides: a layer after a stride-s layer sees pixels that are s apart in the input, so "
         "its (kernel_size − 1) counts jump input pixels each, jump being the product of the earlier strides",
         field(lambda k, s, d, jump, after: d * (k - 1))),
        ("it multiplies by the layer's own stride too: a layer's kernel spans pixels of *its* input, jump apart, "
         "jump being the product of the strides of the layers before it (not including its own)",
         field(lambda k, s, d, jump, after: d * (k - 1) * after)),
        ("it ignores the dilation: a dilated kernel spans dilation·(kernel_size − 1) + 1 pixels",
         field(lambda k, s, d, jump, after: (k - 1) * jump)),
        ("it counts a dilated kernel as dilation·kernel_size wide; it spans dilation·(kernel_size − 1) + 1",
         field(lambda k, s, d, jump, after: (d * k - 1) * jump)),
        ("it is off by one: one output of a single k-wide kernel sees k pixels, so start from 1 and add "
         "dilation·(kernel_size − 1)·jump per layer",
         field(lambda k, s, d, jump, after: d * (k - 1) * jump, start=0)),
        ("it adds whole kernel widths: consecutive windows overlap, so each layer adds (kernel_size − 1)·jump, "
         "not kernel_size·jump",
         field(lambda k, s, d, jump, after: d * k * jump, start=0)),
    ]


def receptive_field_values(stacks: list[list[tuple[int, ...]]], show_inputs: bool = True) -> Property:
    """``receptive_field(layers)`` is the span that autograd measures, an ``int``, for every stack."""
    p = _program()
    p.fetch(**{f"case{i}": p.call("conv.receptive_field", [tuple(layer) for layer in layers])
               for i, layers in enumerate(stacks)})

    def judge(got: dict[str, Any]) -> None:
        for i, layers in enumerate(stacks):
            value, expected = got[f"case{i}"], field_by_autograd(layers)
            where = f"receptive_field({layers})" if show_inputs else "receptive_field"
            if isinstance(value, float) and value == expected:
                raise Mistake(f"{where} returned the float {value!r}; return an int.")
            if type(value) is not int:
                raise Mistake(f"{where} returned a {type(value).__name__}; it must return a Python int.")
            if value == expected:
                continue
            likely = [why for why, wrong in _field_candidates(layers) if wrong == value and wrong != expected]
            shown = f" returned {value}; expected {expected}" if show_inputs else " gave a wrong size"
            formula = ": r = 1 + Σ_l dilation_l·(kernel_size_l − 1)·Π_{i<l} stride_i"
            hint = f": likely, {likely[0]}" if likely else formula
            raise Mistake(f"{where}{shown}{hint}.")

    return Property("receptive_field", f"equals the span autograd measures through the stack ({len(stacks)} stacks)",
                    p, judge)


def receptive_field_bad_input() -> Property:
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("receptive_field", [[(3, 0)]], {}), ("receptive_field", [[(3, 1, 1, 1)]], {}),
        ("receptive_field", [[(0, 1)]], {})]
    return _bad_input_property("receptive_field", calls, ["a stride of 0", "a layer of four numbers",
                                                          "a kernel of size 0"], [[(3, 1)]])


# ----------------------------------------------------------------------------- counting parameters and FLOPs


def parameters_by_torch(c: int, f: int, kernel: int | tuple[int, int], bias: bool) -> int:
    """``nn.Conv2d``'s own count, on the meta device (no memory is allocated)."""
    layer = torch.nn.Conv2d(c, f, kernel, bias=bias, device="meta")
    return sum(p.numel() for p in layer.parameters())


def flops_by_torch(c: int, f: int, kernel: Any, size: Any, stride: Any, padding: Any) -> int:
    """2 FLOPs for each of the ``C·KH·KW`` products of every output that ``F.conv2d`` computes on one image (the
    outputs counted by torch itself, on the meta device: no memory, no arithmetic). The same number as
    ``torch.utils.flop_counter.FlopCounterMode`` gives, which the tests confirm; the counter itself imports
    torch's compiler, seconds of start-up for a check."""
    (kh, kw), (h, w) = _pair(kernel), _pair(size)
    out = F.conv2d(torch.empty(1, c, h, w, device="meta"), torch.empty(f, c, kh, kw, device="meta"),
                   stride=_pair(stride), padding=_pair(padding))
    return 2 * out.numel() * c * kh * kw


def num_parameters_values(cases: list[tuple[int, int, Any, bool]], show_inputs: bool = True) -> Property:
    """``conv2d_num_parameters(C, F, kernel_size, bias=...)`` is ``nn.Conv2d``'s count, an ``int``."""
    p = _program()
    p.fetch(**{f"case{i}": p.call("conv.conv2d_num_parameters", c, f, k, bias=bias)
               for i, (c, f, k, bias) in enumerate(cases)})

    def judge(got: dict[str, Any]) -> None:
        for i, (c, f, k, bias) in enumerate(cases):
            value, expected = got[f"case{i}"], parameters_by_torch(c, f, k, bias)
            where = f"conv2d_num_parameters({c}, {f}, {k!r}, bias={bias})" if show_inputs else "conv2d_num_parameters"
            if type(value) is not int:
                raise Mistake(f"{where} returned a {type(value).__name__}; it must return a Python int.")
            if value == expected:
                continue
            kh, kw = _pair(k)
            candidates = [
                ("the biases are missing: a layer with bias=True has one per filter, F more", f * c * kh * kw),
                ("bias=False still counts the biases", f * c * kh * kw + f),
                ("the input channels are missing: each filter has a KH×KW kernel for every one of the C input "
                 "channels", f * kh * kw + (f if bias else 0)),
                ("the kernel is counted as K·K for a non-square kernel, or as K alone: it has KH·KW weights per "
                 "channel", f * c * kh * kh + (f if bias else 0)),
                ("there is one bias per filter, not one per filter and input channel", f * c * (kh * kw + 1)),
            ]
            likely = [why for why, wrong in candidates if wrong == value]
            raise Mistake(f"{where} " + (f"returned {value}; nn.Conv2d has {expected}" if show_inputs else
                                         "gave a wrong count")
                          + (f": {likely[0]}." if likely else ": F·C·KH·KW weights, plus F biases."))

    return Property("conv2d_num_parameters", f"equals nn.Conv2d's parameter count ({len(cases)} layers)", p, judge)


def flops_values(cases: list[tuple[int, int, Any, Any, Any, Any]], show_inputs: bool = True) -> Property:
    """``conv2d_flops(C, F, kernel_size, input_size, stride, padding)`` is what torch's FLOP counter counts."""
    p = _program()
    p.fetch(**{f"case{i}": p.call("conv.conv2d_flops", c, f, k, size, stride=s, padding=pad)
               for i, (c, f, k, size, s, pad) in enumerate(cases)})

    def judge(got: dict[str, Any]) -> None:
        for i, (c, f, k, size, s, pad) in enumerate(cases):
            value, expected = got[f"case{i}"], flops_by_torch(c, f, k, size, s, pad)
            where = (f"conv2d_flops({c}, {f}, {k!r}, {size!r}, stride={s!r}, padding={pad!r})" if show_inputs
                     else "conv2d_flops")
            if type(value) is not int:
                raise Mistake(f"{where} returned a {type(value).__name__}; it must return a Python int.")
            if value == expected:
                continue
            (kh, kw), (h, w), (sh, sw), (ph, pw) = _pair(k), _pair(size), _pair(s), _pair(pad)
            oh, ow = _true_size(h, kh, sh, ph), _true_size(w, kw, sw, pw)
            candidates = [
                ("it counts multiply–accumulates: each is 2 FLOPs, a multiplication and an addition", expected // 2),
                ("it uses the input's size: the layer computes F·OH·OW outputs, with OH, OW from conv_output_size "
                 "(stride and padding change them)", 2 * c * kh * kw * f * h * w),
                ("the input channels are missing: each output sums over all C input channels, C·KH·KW products",
                 2 * kh * kw * f * oh * ow),
                ("it adds the bias: the convention (torch's FLOP counter) leaves it out",
                 expected + f * oh * ow),
                ("the kernel is counted as K·K for a non-square kernel: it has KH·KW taps",
                 2 * c * kh * kh * f * oh * ow),
            ]
            likely = [why for why, wrong in candidates if wrong == value and wrong != expected]
            raise Mistake(f"{where} " + (f"returned {value}; torch's counter says {expected}" if show_inputs else
                                         "gave a wrong count")
                          + (f": {likely[0]}." if likely else ": 2·C·KH·KW·F·OH·OW."))

    return Property("conv2d_flops", f"equals torch's FLOP counter for one image ({len(cases)} layers)", p, judge)


# ----------------------------------------------------------------------------- inputs of the visible checks


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def tied_pool_input(n: int, c: int, h: int, w: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Small integers, so that many windows hold several equal maxima (a ReLU's zeros do this in practice)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-2, 2, (n, c, h, w), generator=gen).clamp(min=0).to(dtype)


def distinct_pool_input(n: int, c: int, h: int, w: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random permutation of distinct values: no ties anywhere."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randperm(n * c * h * w, generator=gen).reshape(n, c, h, w).to(torch.float64) / 7 - 3).to(dtype)


def conv_case(n: int, c: int, h: int, w: int, f: int, kh: int, kw: int, stride: int, padding: int, seed: int,
              dtype: torch.dtype = torch.float32) -> BackwardCase:
    """Inputs for a forward and backward: ``(x, w, b, stride, padding, dout)``."""
    x, wt, b = _randn(n, c, h, w, seed=seed, dtype=dtype), _randn(f, c, kh, kw, seed=seed + 1, dtype=dtype), \
        _randn(f, seed=seed + 2, dtype=dtype)
    oh, ow = _true_size(h, kh, stride, padding), _true_size(w, kw, stride, padding)
    return x, wt, b, stride, padding, _randn(n, f, oh, ow, seed=seed + 3, dtype=dtype)


@register("conv_output_size")
def conv_output_size_check() -> list[Property]:
    cases = [(28, 3, 1, 1, 1), (28, 2, 2, 0, 1), (14, 2, 2, 0, 1), (31, 3, 2, 1, 1), (32, 5, 1, 2, 1),
             (10, 3, 3, 0, 1), (7, 3, 1, 0, 2), (30, 4, 2, 1, 1)]
    return [output_size_values(cases), output_size_raises([(2, 3, 1, 0, 1), (2, 3, 2, 0, 1), (5, 3, 1, 0, 3)])]


@register("conv_naive")
def conv_naive_check() -> list[Property]:
    x, w, b, *_ = conv_case(2, 3, 6, 7, 4, 3, 3, 1, 2, seed=1)
    x2, w2, b2, *_ = conv_case(2, 2, 7, 5, 3, 3, 2, 2, 1, seed=5)
    return [conv_forward_values("conv2d_forward_naive", x, w, b, 1, 2),
            conv_forward_values("conv2d_forward_naive", x2, w2, b2, 2, 1),
            conv_forward_keeps_inputs("conv2d_forward_naive", x, w, b, 1, 2),
            conv_forward_bad_input("conv2d_forward_naive")]


@register("im2col")
def im2col_check() -> list[Property]:
    x = _randn(2, 3, 5, 6, seed=10)
    return [im2col_values(x, (3, 3)), im2col_values(_randn(2, 2, 7, 6, seed=11), (3, 2), stride=2, padding=1),
            im2col_keeps_input(x, (3, 3), 1, 1), vectorized("im2col"), im2col_bad_input()]


def _col2im_cases(seed: int, dtype: torch.dtype = torch.float32,
                  ) -> list[tuple[torch.Tensor, tuple[int, ...], Any, Any, Any]]:
    cases = []
    for i, (shape, k, s, pad) in enumerate((((2, 2, 5, 6), (3, 3), 1, 1), ((2, 2, 7, 7), (3, 3), 2, 1))):
        oh, ow = _true_size(shape[2], k[0], s, pad), _true_size(shape[3], k[1], s, pad)
        cases.append((_randn(shape[0], shape[1] * k[0] * k[1], oh * ow, seed=seed + i, dtype=dtype), shape, k, s, pad))
    return cases


@register("col2im")
def col2im_check() -> list[Property]:
    cases = _col2im_cases(20)
    return [col2im_values(cases), col2im_keeps_input(cases)]


@register("conv_forward")
def conv_forward_check() -> list[Property]:
    x, w, b, *_ = conv_case(3, 3, 8, 7, 4, 3, 3, 1, 1, seed=30)
    x2, w2, b2, *_ = conv_case(2, 2, 9, 9, 5, 5, 3, 2, 2, seed=34)
    return [conv_forward_values("conv2d_forward", x, w, b, 1, 1),
            conv_forward_values("conv2d_forward", x2, w2, b2, 2, 2),
            vectorized("conv2d_forward"), conv_forward_keeps_inputs("conv2d_forward", x, w, b, 1, 1),
            conv_forward_bad_input("conv2d_forward")]


@register("conv_backward")
def conv_backward_check() -> list[Property]:
    overlapping = conv_case(3, 2, 6, 5, 4, 3, 3, 1, 1, seed=40)
    strided = conv_case(2, 3, 7, 8, 4, 3, 2, 2, 1, seed=44)
    return [conv_backward_values([overlapping]), conv_backward_values([overlapping, strided]),
            vectorized("conv2d_backward"), conv_backward_keeps_inputs([overlapping])]


@register("conv_as_conv")
def conv_as_conv_check() -> list[Property]:
    plain = conv_case(2, 2, 6, 5, 4, 3, 3, 1, 1, seed=70)
    square = conv_case(2, 3, 6, 6, 3, 3, 3, 1, 0, seed=74)  # C == F: swapped channels keep the shapes
    strided = conv_case(2, 3, 8, 7, 3, 3, 3, 2, 0, seed=78)  # 8 − 3 = 5: the last row is past the last window
    wide = conv_case(2, 2, 9, 8, 2, 3, 2, 3, 2, seed=82)
    return [conv_input_grad_values([plain, square]), conv_input_grad_values([plain, strided, wide]),
            conv_grad_bad_input("conv2d_input_grad"),
            conv_weight_grad_values([plain, square]), conv_weight_grad_values([plain, strided, wide]),
            conv_grad_bad_input("conv2d_weight_grad")]


@register("maxpool")
def maxpool_check() -> list[Property]:
    x = distinct_pool_input(2, 3, 6, 7, seed=50)
    dout2 = _randn(2, 3, 3, 3, seed=51)
    x3 = distinct_pool_input(2, 2, 7, 7, seed=52)
    dout3 = _randn(2, 2, 3, 3, seed=53)
    tied = tied_pool_input(2, 2, 6, 6, seed=54)
    return [maxpool_forward_values(x, 2, 2), maxpool_forward_values(x3, 3, 2),
            maxpool_backward_values(x, 2, 2, dout2), maxpool_backward_values(x3, 3, 2, dout3),
            maxpool_backward_ties(tied, 2, _randn(2, 2, 3, 3, seed=55) + 3.0),
            maxpool_keeps_inputs(x, 2, 2, dout2)]


@register("conv_module")
def conv_module_check() -> list[Property]:
    x = _randn(2, 3, 7, 6, seed=60)
    x64 = _randn(2, 2, 5, 6, seed=61, dtype=torch.float64)
    return [conv_module_parameters(3, 4, 3), conv_module_forward(3, 4, 3, 2, 1, x),
            conv_module_uses_function(3, 4, 3, x),
            conv_module_gradients(3, 4, 3, 1, 1, x, _randn(2, 4, 7, 6, seed=62)),
            conv_module_gradcheck(2, 3, 3, 2, 1, x64), conv_module_trains(seed=63)]


@register("receptive_field")
def receptive_field_check() -> list[Property]:
    stacks = [[(3, 1)], [(3, 1), (3, 1)], [(3, 1), (2, 2), (3, 1), (2, 2)], [(5, 2), (3, 2), (3, 1)],
              [(3, 1, 2), (3, 1, 4)], []]
    return [receptive_field_values(stacks), receptive_field_bad_input()]


@register("conv_counting")
def conv_counting_check() -> list[Property]:
    return [num_parameters_values([(3, 16, 3, True), (16, 32, 3, False), (1, 8, (5, 3), True)]),
            flops_values([(3, 16, 3, 32, 1, 1), (16, 32, 3, 28, 2, 1), (1, 8, (5, 3), (28, 20), 1, 0)])]
