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
    ### BEGIN SOLUTION
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"a kernel of {kernel_size} (dilation {dilation}) does not fit in an input of {size} "
            f"with padding {padding}: the output size would be {out}"
        )
    return out
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    num_filters, _, KH, KW = w.shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    xpad = F.pad(x, (padding, padding, padding, padding))
    out = x.new_zeros(N, num_filters, OH, OW)
    for n in range(N):
        for f in range(num_filters):
            for i in range(OH):
                for j in range(OW):
                    window = xpad[n, :, i * stride : i * stride + KH, j * stride : j * stride + KW]
                    out[n, f, i, j] = (window * w[f]).sum() + b[f]
    cache = (x, w, b, stride, padding)
    return out, cache
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)
    xpad = F.pad(x, (PW, PW, PH, PH))
    cols = x.new_empty(N, C, KH, KW, OH, OW)
    for p in range(KH):  # one strided slice per kernel offset: every window's (p, q) entry at once
        for q in range(KW):
            cols[:, :, p, q] = xpad[:, :, p : p + SH * (OH - 1) + 1 : SH, q : q + SW * (OW - 1) + 1 : SW]
    return cols.reshape(N, C * KH * KW, OH * OW)
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    OH, OW = conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)
    if cols.shape[2] != OH * OW:
        raise ValueError(f"cols must have OH·OW = {OH * OW} columns for this input; got {cols.shape[2]}")
    cols = cols.reshape(N, C, KH, KW, OH, OW)
    dxpad = cols.new_zeros(N, C, H + 2 * PH, W + 2 * PW)
    for p in range(KH):  # += , not = : a pixel inside several windows receives from each of them
        for q in range(KW):
            dxpad[:, :, p : p + SH * (OH - 1) + 1 : SH, q : q + SW * (OW - 1) + 1 : SW] += cols[:, :, p, q]
    return dxpad[:, :, PH : PH + H, PW : PW + W]
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    N, _, H, W = x.shape
    num_filters, _, KH, KW = w.shape
    OH, OW = conv_output_size(H, KH, stride, padding), conv_output_size(W, KW, stride, padding)
    cols = im2col(x, (KH, KW), stride, padding)  # N × CKK × L
    out = w.reshape(num_filters, -1) @ cols  # N × F × L: one matrix product per image, in one call
    out += b.reshape(1, num_filters, 1)  # in place: out is ours, a fresh tensor
    cache = (tuple(x.shape), cols, w, stride, padding)
    return out.reshape(N, num_filters, OH, OW), cache
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    x_shape, cols, w, stride, padding = cache
    N, num_filters, L = cols.shape[0], w.shape[0], cols.shape[2]
    if dout.shape[0] != N or dout.shape[1] != num_filters or dout.shape[2] * dout.shape[3] != L:
        raise ValueError(f"dout must have the shape of the forward's output; got {tuple(dout.shape)}")
    g = dout.reshape(N, num_filters, L)
    db = dout.sum(dim=(0, 2, 3))
    dw = (g @ cols.transpose(1, 2)).sum(dim=0).reshape(w.shape)
    dcols = w.reshape(num_filters, -1).t() @ g  # N × CKK × L
    dx = col2im(dcols, x_shape, tuple(w.shape[2:]), stride, padding)
    return dx, dw, db
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, KH, SH), conv_output_size(W, KW, SW)
    cols = im2col(x.reshape(N * C, 1, H, W), (KH, KW), (SH, SW))  # N·C × KH·KW × L
    out, argmax = cols.max(dim=1)  # one index per window: ties go to a single position
    cache = (tuple(x.shape), argmax, (KH, KW), (SH, SW))
    return out.reshape(N, C, OH, OW), cache
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    x_shape, argmax, kernel, stride = cache
    N, C, H, W = x_shape
    if dout.shape[0] * dout.shape[1] != argmax.shape[0] or dout.shape[2] * dout.shape[3] != argmax.shape[1]:
        raise ValueError(f"dout must have the shape of the forward's output; got {tuple(dout.shape)}")
    g = dout.reshape(N * C, 1, -1)
    dcols = g.new_zeros(N * C, kernel[0] * kernel[1], g.shape[2])
    dcols.scatter_(1, argmax.unsqueeze(1), g)  # each window's gradient to its one maximum
    return col2im(dcols, (N * C, 1, H, W), kernel, stride).reshape(N, C, H, W)
    ### END SOLUTION


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
        ### BEGIN SOLUTION
        out, cache = conv2d_forward(x, weight, bias, stride, padding)
        ctx.cache = cache
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Run ``conv2d_backward(dout, cache)``: one gradient per input of ``forward``, in order
        (``dx, dweight, dbias``, then ``None`` for ``stride`` and ``padding``, which are not tensors).

        Explained in course/03_convolution.ipynb, section "A Conv2d that trains: a custom autograd.Function".
        """
        ### BEGIN SOLUTION
        dx, dw, db = conv2d_backward(dout, ctx.cache)
        return dx, dw, db, None, None
        ### END SOLUTION


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
        ### BEGIN SOLUTION
        bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        weight = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(weight.uniform_(-bound, bound, generator=generator))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound, generator=generator))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×in_channels×H×W`` → ``N×out_channels×OH×OW`` through ``Conv2dFunction``.

        Explained in course/03_convolution.ipynb, section "A Conv2d that trains: a custom autograd.Function".
        """
        require_float_tensor("x", x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be N×{self.in_channels}×H×W for this layer; got shape {tuple(x.shape)}")
        ### BEGIN SOLUTION
        return Conv2dFunction.apply(x, self.weight, self.bias, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
