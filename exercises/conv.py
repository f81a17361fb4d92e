# Your exercises: replace each `raise NotImplementedError(...)` with your code, save, and run the
# notebook's check cell. Keep the names and signatures: the checks and the grader call them.
# (Course maintainers: this file is generated from solutions/conv.py by `python -m grading stubs`;
# edit that file, not this one.)
# ruff: noqa: F401  (imports the reference uses stay, for you to use too)
"""Convolution and max pooling from scratch, then fast, then as a layer that trains (chapter 3).

Images are ``N×C×H×W`` and filters ``F×C×KH×KW``. "Convolution" here means what deep-learning
libraries compute, cross-correlation (the kernel is not flipped), exactly as
``torch.nn.functional.conv2d``:

    out[n, f, i, j] = b[f] + Σ_{c, p, q} xpad[n, c, i·stride + p, j·stride + q] · w[f, c, p, q]

where ``xpad`` is ``x`` with ``padding`` zeros on each of its four sides. Layers follow the
forward/backward-with-cache pattern of chapter 2. Do not call torch's convolution, unfold/fold or
pooling operations here, nor ``torch.autograd`` in a backward: computing them is the point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from exercises.kit.validate import (
    require_conv_inputs,
    require_float_tensor,
    require_int_at_least,
    require_int_pair,
    require_window_fits,
)

# ----------------------------------------------------------------------------- sizes


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """The output length of a convolution (or pooling) along one axis.

    ``floor((size + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1``: the padded input
    has ``size + 2·padding`` positions, a dilated kernel spans ``dilation·(kernel_size − 1) + 1`` of
    them, and the window moves ``stride`` positions at a time.

    Args:
        size: input length (``H`` or ``W``), an int ``>= 1``.
        kernel_size: kernel length, an int ``>= 1``.
        stride: step between windows, an int ``>= 1``.
        padding: zeros added on each side, an int ``>= 0``.
        dilation: spacing between kernel taps, an int ``>= 1``.

    Returns:
        The output length, a Python ``int``. Raises ``ValueError`` when it would be below 1 (the
        kernel does not fit in the padded input).

    Explained in course/03_convolution.ipynb, section "Output size: stride, padding, dilation".
    """
    require_int_at_least("size", size, 1)
    require_int_at_least("kernel_size", kernel_size, 1)
    require_int_at_least("stride", stride, 1)
    require_int_at_least("padding", padding, 0)
    require_int_at_least("dilation", dilation, 1)
    raise NotImplementedError(
        "conv_output_size is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Output size: stride, padding, dilation\".")


# ----------------------------------------------------------------------------- naive forward


def conv2d_forward_naive(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int = 1, padding: int = 0
) -> tuple[torch.Tensor, Any]:
    """Cross-correlation with Python loops, the definition written out: slow, and obviously right.

    ``out[n, f, i, j] = b[f] + Σ_{c,p,q} xpad[n, c, i·stride + p, j·stride + q] · w[f, c, p, q]``.

    Args:
        x: input ``N×C×H×W``, float32 or float64.
        w: filters ``F×C×KH×KW``, same dtype and device.
        b: biases ``F``.
        stride: step between windows (an int ``>= 1``); padding: zeros on each side (an int ``>= 0``).

    Returns:
        ``(out, cache)`` with ``out`` of shape ``N×F×OH×OW`` (``OH = conv_output_size(H, KH,
        stride, padding)``, the same for ``OW``), in ``x``'s dtype and on its device. Equal to
        ``torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)``. Loops are allowed.

    Explained in course/03_convolution.ipynb, section "Naive convolution with loops".
    """
    require_conv_inputs(x, w, b)
    require_int_at_least("stride", stride, 1)
    require_int_at_least("padding", padding, 0)
    require_window_fits(tuple(x.shape[2:]), tuple(w.shape[2:]), (padding, padding))
    raise NotImplementedError(
        "conv2d_forward_naive is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Naive convolution with loops\".")


# ----------------------------------------------------------------------------- im2col and col2im


def im2col(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """Every window of ``x`` as a column: the layout of ``torch.nn.functional.unfold``.

    ``cols[n, (c·KH + p)·KW + q, i·OW + j] = xpad[n, c, i·SH + p, j·SW + q]``: the rows run over
    ``(c, p, q)`` with ``c`` slowest and ``q`` fastest, the columns over output positions row by row
    (``j`` fastest).

    Args:
        x: input ``N×C×H×W``, float32 or float64.
        kernel_size: ``(KH, KW)``, or one int for a square kernel.
        stride: ``(SH, SW)`` or one int; padding: ``(PH, PW)`` or one int, zeros on each side.

    Returns:
        ``cols`` of shape ``N × (C·KH·KW) × (OH·OW)``, in ``x``'s dtype and on its device. No Python
        loop over images or output positions (a loop over the ``KH·KW`` kernel offsets is fine).

    Explained in course/03_convolution.ipynb, section "im2col: the layout of unfold".
    """
    require_float_tensor("x", x)
    if x.ndim != 4:
        raise ValueError(f"x must have 4 dimensions, N×C×H×W; got shape {tuple(x.shape)}")
    KH, KW = require_int_pair("kernel_size", kernel_size, 1)
    SH, SW = require_int_pair("stride", stride, 1)
    PH, PW = require_int_pair("padding", padding, 0)
    require_window_fits(tuple(x.shape[2:]), (KH, KW), (PH, PW))
    raise NotImplementedError(
        "im2col is not implemented yet: see course/03_convolution.ipynb, "
        "section \"im2col: the layout of unfold\".")


def col2im(
    cols: torch.Tensor,
    input_shape: tuple[int, int, int, int] | torch.Size,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """The adjoint of ``im2col``: put every column back where its window came from, **adding** where
    windows overlap, and drop the padding. The layout of ``torch.nn.functional.fold``.

    ``dx[n, c, h, w] = Σ cols[n, (c·KH + p)·KW + q, i·OW + j]`` over every ``(p, q, i, j)`` with
    ``i·SH + p − PH = h`` and ``j·SW + q − PW = w``.

    Args:
        cols: ``N × (C·KH·KW) × (OH·OW)``, float32 or float64 (for example ``∂L/∂cols``).
        input_shape: ``(N, C, H, W)``, the shape of the image ``im2col`` was given.
        kernel_size, stride, padding: as for ``im2col``.

    Returns:
        ``N×C×H×W`` in ``cols``' dtype and on its device.

    Explained in course/03_convolution.ipynb, section "The backward pass, derived".
    """
    require_float_tensor("cols", cols)
    if len(input_shape) != 4 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_shape):
        raise ValueError(f"input_shape must be (N, C, H, W), four ints >= 1; got {tuple(input_shape)!r}")
    N, C, H, W = (int(s) for s in input_shape)
    KH, KW = require_int_pair("kernel_size", kernel_size, 1)
    SH, SW = require_int_pair("stride", stride, 1)
    PH, PW = require_int_pair("padding", padding, 0)
    require_window_fits((H, W), (KH, KW), (PH, PW))
    if cols.ndim != 3 or tuple(cols.shape[:2]) != (N, C * KH * KW):
        raise ValueError(f"cols must have shape N × (C·KH·KW) × (OH·OW) with N = {N} and C·KH·KW = {C * KH * KW} "
                         f"for an input of shape {(N, C, H, W)}; got {tuple(cols.shape)}")
    raise NotImplementedError(
        "col2im is not implemented yet: see course/03_convolution.ipynb, "
        "section \"The backward pass, derived\".")


# ----------------------------------------------------------------------------- fast forward and backward


def conv2d_forward(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int = 1, padding: int = 0
) -> tuple[torch.Tensor, Any]:
    """Cross-correlation as one matrix product: ``out = w_flat @ im2col(x) + b``.

    With ``cols = im2col(x, (KH, KW), stride, padding)`` (``N × C·KH·KW × OH·OW``) and
    ``w_flat = w.reshape(F, C·KH·KW)``, ``out[n] = w_flat @ cols[n] + b[:, None]``, reshaped to
    ``F×OH×OW``.

    Args:
        x: input ``N×C×H×W``, float32 or float64; w: filters ``F×C×KH×KW``; b: biases ``F``.
        stride: an int ``>= 1``; padding: an int ``>= 0``, zeros on each side.

    Returns:
        ``(out, cache)``: ``out`` is ``N×F×OH×OW``, equal to ``conv2d_forward_naive``'s and to
        ``torch.nn.functional.conv2d``'s, with no Python loop over images, filters or output
        positions; ``cache`` holds what ``conv2d_backward`` needs.

    Explained in course/03_convolution.ipynb, section "Convolution as one matrix product".
    """
    require_conv_inputs(x, w, b)
    require_int_at_least("stride", stride, 1)
    require_int_at_least("padding", padding, 0)
    require_window_fits(tuple(x.shape[2:]), tuple(w.shape[2:]), (padding, padding))
    raise NotImplementedError(
        "conv2d_forward is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Convolution as one matrix product\".")


def conv2d_backward(dout: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the loss with respect to ``x``, ``w`` and ``b`` of ``conv2d_forward``.

    With ``g = dout.reshape(N, F, OH·OW)`` and the forward's ``cols`` and ``w_flat``:
    ``db = Σ_{n,i,j} dout[n, :, i, j]``; ``dw = Σ_n g[n] @ cols[n]ᵀ`` reshaped to ``F×C×KH×KW``;
    ``dcols[n] = w_flatᵀ @ g[n]``, and ``dx = col2im(dcols)``, which adds up the contributions
    of overlapping windows.

    Args:
        dout: upstream gradient ``N×F×OH×OW``, the shape of the forward's output.
        cache: the second value ``conv2d_forward`` returned.

    Returns:
        ``(dx, dw, db)`` with the shapes of ``x`` (``N×C×H×W``), ``w`` (``F×C×KH×KW``) and ``b``
        (``F``), in ``dout``'s dtype. No ``torch.autograd``; no Python loop over images, filters or
        output positions.

    Explained in course/03_convolution.ipynb, section "The backward pass, derived".
    """
    require_float_tensor("dout", dout)
    if dout.ndim != 4:
        raise ValueError(f"dout must have 4 dimensions, N×F×OH×OW; got shape {tuple(dout.shape)}")
    raise NotImplementedError(
        "conv2d_backward is not implemented yet: see course/03_convolution.ipynb, "
        "section \"The backward pass, derived\".")


# ----------------------------------------------------------------------------- the backward pass as convolutions


def _require_gradient_inputs(dout: torch.Tensor, other: torch.Tensor, other_name: str, stride: int,
                             padding: int) -> None:
    require_float_tensor("dout", dout)
    require_float_tensor(other_name, other)
    for name, value in (("dout", dout), (other_name, other)):
        if value.ndim != 4:
            raise ValueError(f"{name} must have 4 dimensions; got shape {tuple(value.shape)}")
    if dout.dtype != other.dtype or dout.device != other.device:
        raise ValueError(f"dout must have the dtype and device of {other_name} ({other.dtype} on {other.device}); "
                         f"got {dout.dtype} on {dout.device}")
    require_int_at_least("stride", stride, 1)
    require_int_at_least("padding", padding, 0)


def _require_shape4(name: str, shape: object) -> tuple[int, int, int, int]:
    if (not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape)):
        raise ValueError(f"{name} must be four ints >= 1; got {shape!r}")
    return int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3])


def _require_output_shape(dout: torch.Tensor, n: int, f: int, h: int, w: int, kh: int, kw: int, stride: int,
                          padding: int) -> None:
    require_window_fits((h, w), (kh, kw), (padding, padding))
    want = (n, f, conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding))
    if tuple(dout.shape) != want:
        raise ValueError(f"dout must have the shape of the convolution's output, N×F×OH×OW = {want}; "
                         f"got {tuple(dout.shape)}")


def _dilate(dout: torch.Tensor, stride: int) -> torch.Tensor:
    """``dout`` with ``stride − 1`` zeros between neighbouring entries along each spatial axis."""
    n, f, oh, ow = dout.shape
    spread = dout.new_zeros(n, f, (oh - 1) * stride + 1, (ow - 1) * stride + 1)
    spread[:, :, ::stride, ::stride] = dout
    return spread


def conv2d_input_grad(input_shape: tuple[int, int, int, int] | torch.Size, w: torch.Tensor, dout: torch.Tensor,
                      stride: int = 1, padding: int = 0) -> torch.Tensor:
    """``dx`` of a convolution, computed as a convolution: the **transposed convolution** of ``dout`` with ``w``.

    Each input pixel received ``w[f, c, p, q]`` times every output whose window covered it, so::

        dx = full correlation of dilate(dout, stride) with w flipped (w[:, :, ::−1, ::−1]) and its
             channels swapped (C×F×KH×KW), then cropped by ``padding`` on each side

    where ``dilate`` puts ``stride − 1`` zeros between the entries of ``dout``, "full" pads it with ``KH − 1``
    (``KW − 1``) zeros on each side, and rows or columns of the padded input that no window reached (when
    ``stride`` does not divide ``H + 2·padding − KH``) get zero gradient. Use your ``conv2d_forward`` for the
    correlation. The same as ``torch.nn.grad.conv2d_input(input_shape, w, dout, stride, padding)`` and
    ``conv2d_backward``'s ``dx``.

    Args:
        input_shape: ``(N, C, H, W)``, the shape of the forward's ``x`` (several sizes give the same output size
            when ``stride > 1``, so it must be given).
        w: the filters ``F×C×KH×KW``; dout: ``N×F×OH×OW``, the upstream gradient, of ``w``'s dtype.
        stride: an int ``>= 1``; padding: an int ``>= 0``, as in the forward.

    Returns:
        ``dx`` of shape ``input_shape``, in ``dout``'s dtype.

    Explained in course/03_convolution.ipynb, section "The backward pass as convolutions".
    """
    _require_gradient_inputs(dout, w, "w", stride, padding)
    N, C, H, W = _require_shape4("input_shape", input_shape)
    if w.shape[1] != C:
        raise ValueError(f"w must have C = {C} input channels for an input of shape {(N, C, H, W)}; "
                         f"got {tuple(w.shape)}")
    _require_output_shape(dout, N, w.shape[0], H, W, w.shape[2], w.shape[3], stride, padding)
    raise NotImplementedError(
        "conv2d_input_grad is not implemented yet: see course/03_convolution.ipynb, "
        "section \"The backward pass as convolutions\".")


def conv2d_weight_grad(x: torch.Tensor, weight_shape: tuple[int, int, int, int] | torch.Size, dout: torch.Tensor,
                       stride: int = 1, padding: int = 0) -> torch.Tensor:
    """``dw`` of a convolution, computed as a convolution: the correlation of ``x`` with ``dout``.

    ``dw[f, c, p, q] = Σ_{n, i, j} dout[n, f, i, j] · xpad[n, c, i·stride + p, j·stride + q]``: a correlation
    of the padded input with ``dout``, dilated by ``stride``, as the kernel, in which the images play the part
    of the channels (``x`` seen as ``C×N×H×W``, ``dout`` as ``F×N×OH×OW``). Its result is ``C×F×…``: keep its
    first ``KH×KW`` positions (more appear when ``stride`` does not divide ``H + 2·padding − KH``) and swap the
    first two axes. Use your ``conv2d_forward`` for the correlation. The same as
    ``torch.nn.grad.conv2d_weight(x, weight_shape, dout, stride, padding)`` and ``conv2d_backward``'s ``dw``.

    Args:
        x: the forward's input ``N×C×H×W``; weight_shape: ``(F, C, KH, KW)``; dout: ``N×F×OH×OW``, of ``x``'s dtype.
        stride: an int ``>= 1``; padding: an int ``>= 0``, as in the forward.

    Returns:
        ``dw`` of shape ``weight_shape``, in ``dout``'s dtype.

    Explained in course/03_convolution.ipynb, section "The backward pass as convolutions".
    """
    _require_gradient_inputs(dout, x, "x", stride, padding)
    num_filters, C, KH, KW = _require_shape4("weight_shape", weight_shape)
    if x.shape[1] != C:
        raise ValueError(f"weight_shape must have C = {x.shape[1]} input channels, those of x; got {weight_shape}")
    _require_output_shape(dout, x.shape[0], num_filters, x.shape[2], x.shape[3], KH, KW, stride, padding)
    raise NotImplementedError(
        "conv2d_weight_grad is not implemented yet: see course/03_convolution.ipynb, "
        "section \"The backward pass as convolutions\".")


# ----------------------------------------------------------------------------- max pooling


def maxpool2d_forward(
    x: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int]
) -> tuple[torch.Tensor, Any]:
    """Max pooling: the largest value of each ``KH×KW`` window, windows ``stride`` apart, no padding.

    ``out[n, c, i, j] = max_{p,q} x[n, c, i·SH + p, j·SW + q]``, with ``OH = floor((H − KH) / SH) + 1``
    (likewise ``OW``). Windows may overlap (``stride < kernel_size``).

    Args:
        x: input ``N×C×H×W``, float32 or float64.
        kernel_size: ``(KH, KW)`` or one int; stride: ``(SH, SW)`` or one int.

    Returns:
        ``(out, cache)`` with ``out`` of shape ``N×C×OH×OW``, equal to
        ``torch.nn.functional.max_pool2d(x, kernel_size, stride)``.

    Explained in course/03_convolution.ipynb, section "Max pooling and how it routes gradients".
    """
    require_float_tensor("x", x)
    if x.ndim != 4:
        raise ValueError(f"x must have 4 dimensions, N×C×H×W; got shape {tuple(x.shape)}")
    KH, KW = require_int_pair("kernel_size", kernel_size, 1)
    SH, SW = require_int_pair("stride", stride, 1)
    require_window_fits(tuple(x.shape[2:]), (KH, KW), (0, 0), what="the pooling window")
    raise NotImplementedError(
        "maxpool2d_forward is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Max pooling and how it routes gradients\".")


def maxpool2d_backward(dout: torch.Tensor, cache: Any) -> torch.Tensor:
    """Gradient of max pooling: each window's ``dout`` goes, whole, to the position of its maximum.

    ``dx[n, c, h, w] = Σ dout[n, c, i, j]`` over the windows ``(i, j)`` whose chosen maximum is at
    ``(h, w)``; everything else is 0. Where a window has several equal maxima, its whole gradient
    goes to one of them (any one), never to all of them or split among them. Overlapping windows
    that pick the same position add up.

    Args:
        dout: upstream gradient ``N×C×OH×OW``; cache: the second value ``maxpool2d_forward`` returned.

    Returns:
        ``dx`` with the shape of the forward's input ``x``, in ``dout``'s dtype.

    Explained in course/03_convolution.ipynb, section "Max pooling and how it routes gradients".
    """
    require_float_tensor("dout", dout)
    if dout.ndim != 4:
        raise ValueError(f"dout must have 4 dimensions, N×C×OH×OW; got shape {tuple(dout.shape)}")
    raise NotImplementedError(
        "maxpool2d_backward is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Max pooling and how it routes gradients\".")


# ----------------------------------------------------------------------------- a layer that trains


class Conv2dFunction(torch.autograd.Function):
    """Autograd's view of your convolution: ``forward`` runs ``conv2d_forward``, ``backward`` runs
    ``conv2d_backward``. Use it as ``Conv2dFunction.apply(x, weight, bias, stride, padding)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                stride: int, padding: int) -> torch.Tensor:
        """Run ``conv2d_forward(x, weight, bias, stride, padding)``; keep its cache on ``ctx``.

        Autograd calls this with gradient tracking off, and records one node whose ``backward``
        below it will call. Returns ``out``, ``N×F×OH×OW``.

        Explained in course/03_convolution.ipynb, section "A Conv2d that trains: a custom autograd.Function".
        """
        raise NotImplementedError(
            "forward is not implemented yet: see course/03_convolution.ipynb, "
            "section \"A Conv2d that trains: a custom autograd.Function\".")

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Run ``conv2d_backward(dout, cache)``: one gradient per input of ``forward``, in order
        (``dx, dweight, dbias``, then ``None`` for ``stride`` and ``padding``, which are not tensors).

        Explained in course/03_convolution.ipynb, section "A Conv2d that trains: a custom autograd.Function".
        """
        raise NotImplementedError(
            "backward is not implemented yet: see course/03_convolution.ipynb, "
            "section \"A Conv2d that trains: a custom autograd.Function\".")


class Conv2d(nn.Module):
    """A 2-D convolution layer built on your ``conv2d_forward``/``conv2d_backward``.

    Parameters ``weight`` (``out_channels × in_channels × K × K``) and ``bias`` (``out_channels``),
    initialized like ``torch.nn.Conv2d``: uniform in ``[−1/√fan_in, 1/√fan_in]`` with
    ``fan_in = in_channels·K·K``. Input ``N×in_channels×H×W``, output ``N×out_channels×OH×OW``.
    A drop-in replacement for ``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 generator: torch.Generator | None = None) -> None:
        """Create ``weight`` and ``bias`` as ``nn.Parameter``s, drawn with ``generator`` if given.

        Explained in course/03_convolution.ipynb, section "A Conv2d that trains: a custom autograd.Function".
        """
        super().__init__()
        self.in_channels = require_int_at_least("in_channels", in_channels, 1)
        self.out_channels = require_int_at_least("out_channels", out_channels, 1)
        self.kernel_size = require_int_at_least("kernel_size", kernel_size, 1)
        self.stride = require_int_at_least("stride", stride, 1)
        self.padding = require_int_at_least("padding", padding, 0)
        raise NotImplementedError(
            "__init__ is not implemented yet: see course/03_convolution.ipynb, "
            "section \"A Conv2d that trains: a custom autograd.Function\".")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×in_channels×H×W`` → ``N×out_channels×OH×OW`` through ``Conv2dFunction``.

        Explained in course/03_convolution.ipynb, section "A Conv2d that trains: a custom autograd.Function".
        """
        require_float_tensor("x", x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be N×{self.in_channels}×H×W for this layer; got shape {tuple(x.shape)}")
        raise NotImplementedError(
            "forward is not implemented yet: see course/03_convolution.ipynb, "
            "section \"A Conv2d that trains: a custom autograd.Function\".")

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


# ----------------------------------------------------------------------------- receptive fields and costs


def receptive_field(layers: Sequence[tuple[int, int] | tuple[int, int, int]]) -> int:
    """How many input pixels, along one axis, one output of a stack of convolutions and poolings sees.

    ``layers`` lists ``(kernel_size, stride)`` or ``(kernel_size, stride, dilation)`` per layer, first layer
    first (a max pooling is ``(kernel_size, stride)`` too; padding does not change the answer). A layer
    widens the field by ``dilation·(kernel_size − 1)`` of *its* input's pixels, each of which is ``jump``
    pixels of the network's input apart, ``jump`` being the product of the strides of the layers before it::

        r = 1 + Σ_l dilation_l · (kernel_size_l − 1) · Π_{i<l} stride_i

    Args:
        layers: a sequence of tuples of ints ``>= 1``; empty for no layer (the field is then 1).

    Returns:
        ``r``, a Python ``int``.

    Explained in course/03_convolution.ipynb, section "Receptive fields".
    """
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ValueError(f"layers must be a list of (kernel_size, stride) or (kernel_size, stride, dilation) "
                         f"tuples; got {type(layers).__name__}")
    for layer in layers:
        if (not isinstance(layer, (tuple, list)) or len(layer) not in (2, 3)
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in layer)):
            raise ValueError(f"each layer must be (kernel_size, stride) or (kernel_size, stride, dilation), "
                             f"ints >= 1; got {layer!r}")
    raise NotImplementedError(
        "receptive_field is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Receptive fields\".")


def conv2d_num_parameters(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                          bias: bool = True) -> int:
    """The number of learned numbers in a convolution layer: ``F·C·KH·KW`` weights, plus ``F`` biases when
    ``bias`` is true. The same as ``sum(p.numel() for p in nn.Conv2d(C, F, kernel_size, bias=bias).parameters())``.

    Args:
        in_channels: ``C``; out_channels: ``F``; kernel_size: ``K`` or ``(KH, KW)``, ints ``>= 1``.
        bias: whether the layer has biases.

    Returns:
        A Python ``int``.

    Explained in course/03_convolution.ipynb, section "Counting parameters and FLOPs".
    """
    require_int_at_least("in_channels", in_channels, 1)
    require_int_at_least("out_channels", out_channels, 1)
    KH, KW = require_int_pair("kernel_size", kernel_size, 1)
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False, got {bias!r}")
    raise NotImplementedError(
        "conv2d_num_parameters is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Counting parameters and FLOPs\".")


def conv2d_flops(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 input_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0) -> int:
    """The floating-point operations of a convolution's forward pass for **one** image.

    Every output ``(f, i, j)`` is a sum of ``C·KH·KW`` products: that many multiply–accumulates, each counted
    as 2 FLOPs (a multiplication and an addition), and ``F·OH·OW`` outputs, so
    ``2·C·KH·KW·F·OH·OW`` with ``OH``, ``OW`` from ``conv_output_size``. The bias is not counted. The same
    as ``torch.utils.flop_counter.FlopCounterMode`` counts for ``F.conv2d`` on a batch of one. (Some tools,
    fvcore among them, report multiply–accumulates and call them FLOPs: half this number.)

    Args:
        in_channels: ``C``; out_channels: ``F``; kernel_size: ``K`` or ``(KH, KW)``.
        input_size: ``H`` (square) or ``(H, W)``; stride, padding: an int or a pair, as in ``conv_output_size``.

    Returns:
        A Python ``int``.

    Explained in course/03_convolution.ipynb, section "Counting parameters and FLOPs".
    """
    require_int_at_least("in_channels", in_channels, 1)
    require_int_at_least("out_channels", out_channels, 1)
    KH, KW = require_int_pair("kernel_size", kernel_size, 1)
    H, W = require_int_pair("input_size", input_size, 1)
    SH, SW = require_int_pair("stride", stride, 1)
    PH, PW = require_int_pair("padding", padding, 0)
    require_window_fits((H, W), (KH, KW), (PH, PW))
    raise NotImplementedError(
        "conv2d_flops is not implemented yet: see course/03_convolution.ipynb, "
        "section \"Counting parameters and FLOPs\".")
