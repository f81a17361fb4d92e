"""The chapter 3 properties accept every correct implementation and name each realistic mistake.

Each variant is the reference solution with one change. Properties run in-process here, exactly as the
visible checks run them; test_conv_grading.py runs the hidden suite through the real grader.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import exercises
from exercises.checks import _REGISTRY, CheckFailed, _load_registry, check, evaluate
from exercises.checks.program import Program
from grading import PROJECT_ROOT
from grading.stubs import strip_markers
from tests.conftest import throwaway_packages, variant

REFERENCE = strip_markers((PROJECT_ROOT / "solutions" / "conv.py").read_text(encoding="utf-8"))
STUB = (PROJECT_ROOT / "exercises" / "conv.py").read_text(encoding="utf-8")
FUNCTIONAL = ["conv_output_size", "conv_naive", "im2col", "col2im", "conv_forward", "conv_backward", "maxpool"]
MODULE = ["conv_module"]


def conv(old: str, new: str) -> str:
    return variant(old, new, source=REFERENCE)


def conv_many(*changes: tuple[str, str]) -> str:
    source = REFERENCE
    for old, new in changes:
        source = variant(old, new, source=source)
    return source


# Lines of the reference that variants replace.
SIZE = "    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1\n"
NAIVE_OH = "    OH = conv_output_size(H, KH, stride, padding)\n    OW = conv_output_size(W, KW, stride, padding)\n"
NAIVE_PAD = "    xpad = F.pad(x, (padding, padding, padding, padding))\n    out = x.new_zeros"
NAIVE_SUM = "                    out[n, f, i, j] = (window * w[f]).sum() + b[f]\n"
IM2COL_BODY = """    xpad = F.pad(x, (PW, PW, PH, PH))
    cols = x.new_empty(N, C, KH, KW, OH, OW)
    for p in range(KH):  # one strided slice per kernel offset: every window's (p, q) entry at once
        for q in range(KW):
            cols[:, :, p, q] = xpad[:, :, p : p + SH * (OH - 1) + 1 : SH, q : q + SW * (OW - 1) + 1 : SW]
    return cols.reshape(N, C * KH * KW, OH * OW)
"""
IM2COL_PAD = "    xpad = F.pad(x, (PW, PW, PH, PH))\n    cols = x.new_empty"
COL2IM_SCATTER = ("            dxpad[:, :, p : p + SH * (OH - 1) + 1 : SH, q : q + SW * (OW - 1) + 1 : SW] "
                  "+= cols[:, :, p, q]\n")
COL2IM_BODY = """    cols = cols.reshape(N, C, KH, KW, OH, OW)
    dxpad = cols.new_zeros(N, C, H + 2 * PH, W + 2 * PW)
    for p in range(KH):  # += , not = : a pixel inside several windows receives from each of them
        for q in range(KW):
""" + COL2IM_SCATTER
FORWARD_MATMUL = ("    out = w.reshape(num_filters, -1) @ cols  # N × F × L: one matrix product per image, "
                  "in one call\n"
                  "    out += b.reshape(1, num_filters, 1)  # in place: out is ours, a fresh tensor\n")
BACKWARD_DB = "    db = dout.sum(dim=(0, 2, 3))\n"
BACKWARD_DW = "    dw = (g @ cols.transpose(1, 2)).sum(dim=0).reshape(w.shape)\n"
POOL_MAX = "    out, argmax = cols.max(dim=1)  # one index per window: ties go to a single position\n"
POOL_CACHE = "    cache = (tuple(x.shape), argmax, (KH, KW), (SH, SW))\n"
POOL_BACKWARD = """    g = dout.reshape(N * C, 1, -1)
    dcols = g.new_zeros(N * C, kernel[0] * kernel[1], g.shape[2])
    dcols.scatter_(1, argmax.unsqueeze(1), g)  # each window's gradient to its one maximum
"""
MASK_CACHE = ((POOL_CACHE, POOL_CACHE.replace("(SH, SW))", "(SH, SW), cols == out.unsqueeze(1))")),
              ("    x_shape, argmax, kernel, stride = cache\n", "    x_shape, argmax, kernel, stride, mask = cache\n"))
FUNCTION_FORWARD = ("        out, cache = conv2d_forward(x, weight, bias, stride, padding)\n        ctx.cache = cache\n"
                    "        return out\n")
FUNCTION_BACKWARD = "        dx, dw, db = conv2d_backward(dout, ctx.cache)\n        return dx, dw, db, None, None\n"
MODULE_WEIGHT = "        self.weight = nn.Parameter(weight.uniform_(-bound, bound, generator=generator))\n"
MODULE_FORWARD = "        return Conv2dFunction.apply(x, self.weight, self.bias, self.stride, self.padding)\n"

CORRECT = {  # name -> (source, checks to run)
    "reference": (REFERENCE, FUNCTIONAL + MODULE),
    "floor of a true division": (conv(SIZE, "    out = math.floor((size + 2 * padding - dilation * (kernel_size - 1)"
                                            " - 1) / stride) + 1\n"), ["conv_output_size"]),
    "naive: loop over positions, einsum inside": (conv(
        "    for n in range(N):\n        for f in range(num_filters):\n            for i in range(OH):\n"
        "                for j in range(OW):\n"
        "                    window = xpad[n, :, i * stride : i * stride + KH, j * stride : j * stride + KW]\n"
        + NAIVE_SUM,
        "    for i in range(OH):\n        for j in range(OW):\n"
        "            window = xpad[:, :, i * stride : i * stride + KH, j * stride : j * stride + KW]\n"
        "            out[:, :, i, j] = torch.einsum('nchw,fchw->nf', window, w) + b\n"), ["conv_naive"]),
    "im2col by as_strided": (conv(IM2COL_BODY, """    xpad = F.pad(x, (PW, PW, PH, PH)).contiguous()
    sn, sc, sh, sw = xpad.stride()
    windows = xpad.as_strided((N, C, KH, KW, OH, OW), (sn, sc, sh, sw, sh * SH, sw * SW))
    return windows.reshape(N, C * KH * KW, OH * OW)
"""), ["im2col", "conv_forward", "conv_backward", "maxpool"]),
    "im2col by index tensors": (conv(IM2COL_BODY, """    xpad = F.pad(x, (PW, PW, PH, PH))
    rows = torch.arange(KH, device=x.device)[:, None] + SH * torch.arange(OH, device=x.device)[None, :]
    columns = torch.arange(KW, device=x.device)[:, None] + SW * torch.arange(OW, device=x.device)[None, :]
    patches = xpad[:, :, rows[:, None, :, None], columns[None, :, None, :]]  # N×C×KH×KW×OH×OW
    return patches.reshape(N, C * KH * KW, OH * OW)
"""), ["im2col", "conv_forward", "conv_backward", "maxpool"]),
    "im2col looping over channels too": (conv(
        "            cols[:, :, p, q] = xpad[:, :, p : p + SH * (OH - 1) + 1 : SH, q : q + SW * (OW - 1) + 1 : SW]\n",
        "            for c in range(C):\n"
        "                cols[:, c, p, q] = xpad[:, c, p : p + SH * (OH - 1) + 1 : SH, "
        "q : q + SW * (OW - 1) + 1 : SW]\n"),
        ["im2col", "conv_forward"]),
    "col2im by index_add_": (conv(COL2IM_BODY, """    Hp, Wp = H + 2 * PH, W + 2 * PW
    rows = torch.arange(KH, device=cols.device)[:, None] + SH * torch.arange(OH, device=cols.device)[None, :]
    columns = torch.arange(KW, device=cols.device)[:, None] + SW * torch.arange(OW, device=cols.device)[None, :]
    flat = (rows[:, None, :, None] * Wp + columns[None, :, None, :]).reshape(-1)  # (p, q, i, j) -> pixel
    dxpad = cols.new_zeros(N, C, Hp * Wp)
    dxpad.index_add_(2, flat, cols.reshape(N, C, -1))
    dxpad = dxpad.reshape(N, C, Hp, Wp)
"""), ["col2im", "conv_backward", "maxpool"]),
    "forward by einsum": (conv(FORWARD_MATMUL, "    out = torch.einsum('fk,nkl->nfl', w.reshape(num_filters, -1), cols)"
                                               " + b[None, :, None]\n"), ["conv_forward", "conv_backward"]),
    "forward on windows without im2col": (conv(
        "    cols = im2col(x, (KH, KW), stride, padding)  # N × CKK × L\n" + FORWARD_MATMUL,
        "    xpad = F.pad(x, (padding,) * 4).contiguous()\n    sn, sc, sh, sw = xpad.stride()\n"
        "    win = xpad.as_strided((N, x.shape[1], OH, OW, KH, KW), (sn, sc, sh * stride, sw * stride, sh, sw))\n"
        "    out = torch.einsum('nchwpq,fcpq->nfhw', win, w).reshape(N, num_filters, -1) + b[None, :, None]\n"
        "    cols = win.permute(0, 1, 4, 5, 2, 3).reshape(N, -1, OH * OW)\n"), ["conv_forward", "conv_backward"]),
    "dw by tensordot, db by two sums": (conv(BACKWARD_DB + BACKWARD_DW,
                                             "    db = dout.sum(dim=0).sum(dim=(1, 2))\n"
                                             "    dw = torch.tensordot(g, cols, dims=([0, 2], [0, 2]))"
                                             ".reshape(w.shape)\n"),
                                        ["conv_backward"]),
    "max pool: last of the tied maxima": (conv(POOL_MAX, "    out, last = cols.flip(1).max(dim=1)\n"
                                                         "    argmax = cols.shape[1] - 1 - last\n"), ["maxpool"]),
    "max pool: loops, first maximum": (conv(POOL_MAX + POOL_CACHE, """    out = x.new_empty(N, C, OH, OW)
    argmax = torch.empty(N * C, OH * OW, dtype=torch.long)
    flat_x = x.reshape(N * C, H, W)
    for i in range(OH):
        for j in range(OW):
            window = flat_x[:, i * SH : i * SH + KH, j * SW : j * SW + KW].reshape(N * C, -1)
            best = window.argmax(dim=1)
            argmax[:, i * OW + j] = best
            out.view(N * C, -1)[:, i * OW + j] = window.gather(1, best[:, None])[:, 0]
    out = out.reshape(N * C, -1)
    cache = (tuple(x.shape), argmax, (KH, KW), (SH, SW))
"""), ["maxpool"]),
    "Conv2d saves tensors and recomputes the forward": (conv_many(
        (FUNCTION_FORWARD, FUNCTION_FORWARD.replace("        ctx.cache = cache\n",
                                                    "        ctx.save_for_backward(x, weight, "
                                                    "bias)\n        ctx.conf = (stride, padding)\n")),
        (FUNCTION_BACKWARD, "        _, cache = conv2d_forward(*ctx.saved_tensors, *ctx.conf)\n" + FUNCTION_BACKWARD
         .replace("ctx.cache", "cache"))), MODULE),
    "max pool: first of the tied maxima by a cumsum mask": (conv_many(
        (POOL_MAX, "    out = cols.amax(dim=1)\n    mask = cols == out[:, None, :]\n"
                   "    argmax = mask & (mask.cumsum(dim=1) == 1)\n"),
        (POOL_BACKWARD, "    g = dout.reshape(N * C, 1, -1)\n    dcols = argmax.to(dout.dtype) * g\n"),
        ("    if dout.shape[0] * dout.shape[1] != argmax.shape[0] "
         "or dout.shape[2] * dout.shape[3] != argmax.shape[1]:\n",
         "    if dout.shape[0] * dout.shape[1] != argmax.shape[0] "
         "or dout.shape[2] * dout.shape[3] != argmax.shape[2]:\n")),
        ["maxpool"]),
    "Conv2d with He-normal weights": (conv(MODULE_WEIGHT, "        self.weight = nn.Parameter("
                                                          "nn.init.kaiming_normal_(weight,"
                                                          " nonlinearity='relu', generator=generator))\n"), MODULE),
    "Conv2d with CS231n's 0.01·randn weights": (conv(MODULE_WEIGHT, "        self.weight = nn.Parameter(0.01 * weight"
                                                                    ".normal_(generator=generator))\n"), MODULE),
}

MISTAKES = {  # name -> (source, {failing exercise: words its diagnosis must contain}, checks to run)
    "size: no + 1": (conv(SIZE, SIZE.replace(" // stride + 1", " // stride")),
                     {"conv_output_size": "the + 1 is missing"}, ["conv_output_size"]),
    "size: int() truncates": (conv(SIZE, "    out = int((size + 2 * padding - dilation * (kernel_size - 1) - 1)"
                                         " / stride) + 1\n"),
                              {"conv_output_size": "int() and round() go toward zero"}, ["conv_output_size"]),
    "size: padding once": (conv(SIZE, SIZE.replace("2 * padding", "padding")),
                           {"conv_output_size": "one side only"}, ["conv_output_size"]),
    "size: dilation ignored": (conv(SIZE, SIZE.replace("dilation * (kernel_size - 1)", "(kernel_size - 1)")),
                               {"conv_output_size": "dilation is ignored"}, ["conv_output_size"]),
    "size: no error": (conv("    if out < 1:\n", "    if out < -100:\n"),
                       {"conv_output_size": "instead of raising ValueError"}, ["conv_output_size"]),
    "naive: own size formula, off by one": (conv(NAIVE_OH, "    OH = (H + 2 * padding - KH) // stride\n"
                                                           "    OW = (W + 2 * padding - KW) // stride\n"),
                                            {"conv2d_forward_naive": "the + 1 is missing"}, ["conv_naive"]),
    "naive: flipped kernel": (conv(NAIVE_SUM, NAIVE_SUM.replace("w[f]", "w[f].flip(1, 2)")),
                              {"conv2d_forward_naive": "kernel flipped"}, ["conv_naive"]),
    "naive: transposed kernel": (conv(NAIVE_SUM, NAIVE_SUM.replace("w[f]", "w[f].transpose(1, 2)")),
                                 {"conv2d_forward_naive": "kernel transposed"}, ["conv_naive"]),
    "naive: padding on one side": (conv(NAIVE_PAD, NAIVE_PAD.replace("(padding, padding, padding, padding)",
                                                                     "(0, 2 * padding, 0, 2 * padding)")),
                                   {"conv2d_forward_naive": "bottom and right only"}, ["conv_naive"]),
    "naive: no bias": (conv(NAIVE_SUM, NAIVE_SUM.replace(" + b[f]", "")), {"conv2d_forward_naive": "without the bias"},
                       ["conv_naive"]),
    "naive: in place": (conv(NAIVE_PAD, "    x.mul_(1.0).add_(1.0)\n" + NAIVE_PAD),
                        {"conv2d_forward_naive": "changed its input `x` in place"}, ["conv_naive"]),
    "im2col: rows ordered (p, q, c)": (conv(IM2COL_BODY, IM2COL_BODY.replace(
        "x.new_empty(N, C, KH, KW, OH, OW)", "x.new_empty(N, KH, KW, C, OH, OW)").replace("cols[:, :, p, q]",
                                                                                          "cols[:, p, q]")),
        {"im2col": "rows are ordered (p, q, c)"}, ["im2col"]),
    "im2col: transposed": (conv("    return cols.reshape(N, C * KH * KW, OH * OW)\n",
                                "    return cols.reshape(N, C * KH * KW, OH * OW).transpose(1, 2)\n"),
                           {"im2col": "the transpose of unfold's layout"}, ["im2col"]),
    "im2col: padding on one side": (conv(IM2COL_PAD, IM2COL_PAD.replace("(PW, PW, PH, PH)", "(0, 2 * PW, 0, 2 * PH)")),
                                    {"im2col": "bottom and right only"}, ["im2col"]),
    "im2col: loop over images": (conv(
        "            cols[:, :, p, q] = xpad[:, :, p : p + SH * (OH - 1) + 1 : SH, q : q + SW * (OW - 1) + 1 : SW]\n",
        "            for n in range(N):\n"
        "                cols[n, :, p, q] = xpad[n, :, p : p + SH * (OH - 1) + 1 : SH, "
        "q : q + SW * (OW - 1) + 1 : SW]\n"),
        {"im2col": "a Python loop over images"}, ["im2col"]),
    "im2col: index lists built by a Python loop over positions": (conv(
        IM2COL_BODY,
        "    xpad = F.pad(x, (PW, PW, PH, PH))\n"
        "    Wp = W + 2 * PW\n"
        "    index = [[(i * SH + p) * Wp + j * SW + q for i in range(OH) for j in range(OW)]"
        " for p in range(KH) for q in range(KW)]\n"
        "    flat = xpad.reshape(N, C, -1)[:, :, torch.tensor(index, device=x.device)]\n"
        "    return flat.reshape(N, C * KH * KW, OH * OW)\n"),
        {"im2col": "a Python loop over output positions"}, ["im2col"]),
    "im2col: calls unfold": (conv(IM2COL_BODY, "    return F.unfold(x, (KH, KW), stride=(SH, SW), padding=(PH, PW))\n"),
                             {"im2col": "called torch.nn.functional.unfold"}, ["im2col"]),
    "im2col: calls torch's im2col kernel directly": (conv(
        IM2COL_BODY, "    return torch._C._nn.im2col(x, (KH, KW), (1, 1), (PH, PW), (SH, SW))\n"),
        {"im2col": "which this exercise must not use"}, ["im2col"]),
    "col2im: overlapping windows overwritten": (conv(COL2IM_SCATTER, COL2IM_SCATTER.replace(" += ", " = ")),
                                                {"col2im": "overwrite each other",
                                                 "conv2d_backward": "overwrite each other",
                                                 "maxpool2d_backward": "overwrite each other"},
                                                ["col2im", "conv_backward", "maxpool"]),
    "col2im: stride ignored": (conv(COL2IM_SCATTER,
                                    "            dxpad[:, :, p : p + OH, q : q + OW] += cols[:, :, p, q]\n"),
                               {"col2im": "the stride is ignored", "conv2d_backward": "the stride is ignored"},
                               ["col2im", "conv_backward"]),
    "col2im: padding kept": (conv("    return dxpad[:, :, PH : PH + H, PW : PW + W]\n", "    return dxpad\n"),
                             {"col2im": "crop the padding", "conv2d_backward": "crop the padding"},
                             ["col2im", "conv_backward"]),
    "col2im: calls fold": (conv(COL2IM_BODY, "    return F.fold(cols, (H, W), (KH, KW), stride=(SH, SW), "
                                             "padding=(PH, PW))\n"
                                             "    dxpad = cols\n"),
                           {"col2im": "called torch.nn.functional.fold"}, ["col2im"]),
    "forward: flipped kernel": (conv(FORWARD_MATMUL, FORWARD_MATMUL.replace("w.reshape", "w.flip(2, 3).reshape")),
                                {"conv2d_forward": "kernel flipped"}, ["conv_forward"]),
    "forward: loop over filters": (conv(FORWARD_MATMUL, "    out = torch.stack([w[f].reshape(-1) @ cols + b[f] "
                                                        "for f in range(num_filters)], dim=1)\n"),
                                   {"conv2d_forward": "a Python loop over filters"}, ["conv_forward"]),
    "forward: loop over images": (conv(FORWARD_MATMUL, "    out = torch.stack([w.reshape(num_filters, -1) @ cols[n] "
                                                       "for n in range(N)]) + b.reshape(1, num_filters, 1)\n"),
                                  {"conv2d_forward": "a Python loop over images"}, ["conv_forward"]),
    "forward: calls F.conv2d": (conv(FORWARD_MATMUL, FORWARD_MATMUL + "    out = F.conv2d(x, w, b, stride=stride, "
                                                     "padding=padding).flatten(2)\n"),
                                {"conv2d_forward": "called torch.nn.functional.conv2d"}, ["conv_forward"]),
    "backward: db over N only": (conv(BACKWARD_DB, "    db = dout.sum(dim=0)\n"),
                                 {"conv2d_backward": "summed over N only"}, ["conv_backward"]),
    "backward: db over positions only": (conv(BACKWARD_DB, "    db = dout.sum(dim=(2, 3))\n"),
                                         {"conv2d_backward": "not over N"}, ["conv_backward"]),
    "backward: db averaged": (conv(BACKWARD_DB, "    db = dout.mean(dim=(0, 2, 3))\n"),
                              {"conv2d_backward": "must be the sum"}, ["conv_backward"]),
    "backward: dw loops over images": (conv(BACKWARD_DW, "    dw = sum(g[n] @ cols[n].t() for n in range(N))"
                                                         ".reshape(w.shape)\n"),
                                       {"conv2d_backward": "a Python loop over images"}, ["conv_backward"]),
    "backward: autograd": (conv(BACKWARD_DW, "    w_ = w.detach().requires_grad_()\n"
                                             "    (w_.reshape(num_filters, -1) @ cols).backward(g)\n"
                                             "    dw = w_.grad\n"),
                           {"conv2d_backward": "torch.Tensor.backward"}, ["conv_backward"]),
    "max pool: gradient to every tied maximum": (conv_many(
        *MASK_CACHE, (POOL_BACKWARD, "    g = dout.reshape(N * C, 1, -1)\n    dcols = mask * g\n")),
        {"maxpool2d_backward": "every tied maximum"}, ["maxpool"]),
    "max pool: gradient split among tied maxima": (conv_many(
        *MASK_CACHE, (POOL_BACKWARD, "    g = dout.reshape(N * C, 1, -1)\n"
                                     "    dcols = mask * g / mask.sum(dim=1, keepdim=True)\n")),
        {"maxpool2d_backward": "splits a window's gradient"}, ["maxpool"]),
    "max pool: gradient to the whole window": (conv(POOL_BACKWARD, POOL_BACKWARD.replace(
        "    dcols.scatter_(1, argmax.unsqueeze(1), g)  # each window's gradient to its one maximum\n",
        "    dcols = dcols + g\n")), {"maxpool2d_backward": "every position of the window"}, ["maxpool"]),
    "max pool: minimum": (conv(POOL_MAX, "    out, argmax = cols.min(dim=1)\n"), {"maxpool2d_forward": "minimum"},
                          ["maxpool"]),
    "max pool: calls F.max_pool2d": (conv(POOL_MAX, POOL_MAX + "    out = F.max_pool2d(x, (KH, KW), (SH, SW))"
                                                               ".reshape(N * C, -1)\n"),
                                     {"maxpool2d_forward": "called torch.nn.functional.max_pool2d"}, ["maxpool"]),
    "Conv2d: no autograd.Function": (conv(MODULE_FORWARD, "        return conv2d_forward(x, self.weight, self.bias, "
                                                          "self.stride, self.padding)[0]\n"),
                                     {"Conv2d": "your conv2d_backward never ran"}, MODULE),
    "Conv2d: gradients in the wrong order": (conv(FUNCTION_BACKWARD, FUNCTION_BACKWARD.replace("return dx, dw, db",
                                                                                               "return dw, dx, db")),
                                             {"Conv2d": "invalid gradient"}, MODULE),
    "Conv2d: backward by autograd.grad": (conv_many(
        (FUNCTION_FORWARD, FUNCTION_FORWARD.replace("        ctx.cache = cache\n",
                                                    "        ctx.inputs = (x, weight, bias, stride, padding)\n")),
        (FUNCTION_BACKWARD, """        x, w, b, s, p = ctx.inputs
        with torch.enable_grad():
            x, w, b = (t.detach().requires_grad_() for t in (x, w, b))
            out, _ = conv2d_forward(x, w, b, s, p)
            return (*torch.autograd.grad(out, (x, w, b), dout), None, None)
""")), {"Conv2d": "torch.autograd.grad"}, MODULE),
    "Conv2d: weight is a plain tensor": (conv(MODULE_WEIGHT, "        self.weight = weight.uniform_(-bound, bound, "
                                                             "generator=generator)\n"),
                                         {"Conv2d": "register exactly `weight` and `bias`"}, MODULE),
    "Conv2d: standard normal weights": (conv(MODULE_WEIGHT, "        self.weight = nn.Parameter("
                                                            "weight.normal_(generator=generator))\n"),
                                        {"Conv2d": "1/√fan_in scale"}, MODULE),
    "Conv2d: detached output": (conv(MODULE_FORWARD, MODULE_FORWARD.replace("return Conv2dFunction.apply(x,",
                                                                            "return Conv2dFunction.apply(x.detach(),")
                                     .replace("self.weight, self.bias,", "self.weight.detach(), self.bias.detach(),")),
                                {"Conv2d": "cut off from autograd"}, MODULE),
}


# ----------------------------------------------------------------------------- the backward pass as convolutions,
# receptive fields, counting

INPUT_FLIP = "    flipped = w.flip(2, 3).transpose(0, 1)  # C×F×KH×KW\n"
INPUT_SPREAD = "    spread = _dilate(dout, stride)\n"
INPUT_PAD = "    full = F.pad(spread, (KW - 1, KW - 1 + cols_left, KH - 1, KH - 1 + rows_left))\n"
INPUT_CROP = "    return dxpad[:, :, padding : padding + H, padding : padding + W]\n"
WEIGHT_KERNEL = "    kernel = _dilate(dout, stride).transpose(0, 1)  # F × N × ((OH−1)·s + 1) × ((OW−1)·s + 1)\n"
WEIGHT_CONV = ("    out, _ = conv2d_forward(x.transpose(0, 1), kernel, x.new_zeros(num_filters), stride=1, "
               "padding=padding)\n")
WEIGHT_RETURN = "    return out[:, :, :KH, :KW].transpose(0, 1)  # C×F×… → F×C×KH×KW\n"
FIELD_STEP = "        field += dilation * (kernel - 1) * jump\n        jump *= stride\n"
PARAMS = "    return out_channels * in_channels * KH * KW + (out_channels if bias else 0)\n"
FLOPS = "    return 2 * in_channels * KH * KW * out_channels * OH * OW\n"
AS_CONV, FIELD, COUNTING = ["conv_as_conv"], ["receptive_field"], ["conv_counting"]
NEW_CHECKS = AS_CONV + FIELD + COUNTING
CORRECT["reference"] = (REFERENCE, FUNCTIONAL + MODULE + NEW_CHECKS)

CORRECT.update({
    "input gradient by col2im of the transposed product": (conv_many(
        (INPUT_SPREAD, "    cols = w.reshape(num_filters, -1).t() @ dout.reshape(N, num_filters, -1)\n"
                       "    return col2im(cols, (N, C, H, W), (KH, KW), stride, padding)\n"
                       "    spread = _dilate(dout, stride)\n")), NEW_CHECKS),
    "weight gradient by einsum over im2col's windows": (conv_many(
        (WEIGHT_KERNEL, "    cols = im2col(x, weight_shape[2:], stride, padding)\n"
                        "    flat = torch.einsum('nfl,nkl->fk', dout.reshape(dout.shape[0], num_filters, -1), cols)\n"
                        "    return flat.reshape(weight_shape)\n" + WEIGHT_KERNEL)), NEW_CHECKS),
    "input gradient with the padding cropped by F.pad with negative amounts": (conv_many(
        (INPUT_CROP, "    return F.pad(dxpad, (-padding, -padding, -padding, -padding))\n")), NEW_CHECKS),
    "receptive field from the last layer back": (conv(
        "    field, jump = 1, 1\n    for layer in layers:\n        kernel, stride = layer[0], layer[1]\n"
        "        dilation = layer[2] if len(layer) == 3 else 1\n" + FIELD_STEP + "    return field\n",
        "    field = 1\n    for layer in reversed(layers):\n        dilation = layer[2] if len(layer) == 3 else 1\n"
        "        field = (field - 1) * layer[1] + dilation * (layer[0] - 1) + 1\n    return field\n"), NEW_CHECKS),
    "counts through conv_output_size's product and a bias term": (conv_many(
        (PARAMS, "    weights = out_channels * in_channels * KH * KW\n    return weights + out_channels * int(bias)\n"),
        (FLOPS, "    macs = (in_channels * KH * KW) * (out_channels * OH * OW)\n    return macs + macs\n")),
        NEW_CHECKS),
})

MISTAKES.update({
    "input gradient: kernel not flipped": (conv(INPUT_FLIP, "    flipped = w.transpose(0, 1)\n"),
                                           {"conv2d_input_grad": "the kernel flipped"}, AS_CONV),
    "input gradient: channels not swapped": (conv(INPUT_FLIP, "    flipped = w.flip(2, 3)\n"),
                                             {"conv2d_input_grad": "as many input channels"}, AS_CONV),
    "input gradient: dout not dilated": (conv(INPUT_SPREAD, "    spread = dout\n"),
                                         {"conv2d_input_grad": "right with stride 1 but wrong with stride"}, AS_CONV),
    "input gradient: rows past the last window left out": (conv(INPUT_PAD, "    full = F.pad(spread, "
                                                                "(KW - 1, KW - 1, KH - 1, KH - 1))\n"),
                                                           {"conv2d_input_grad": "short of input_shape"}, AS_CONV),
    "input gradient: padding not cropped": (conv(INPUT_CROP, "    return dxpad\n"),
                                            {"conv2d_input_grad": "the padded shape"}, AS_CONV),
    "weight gradient: axes not swapped back": (conv(WEIGHT_RETURN, "    return out[:, :, :KH, :KW]\n"),
                                               {"conv2d_weight_grad": "swap the first two axes back"}, AS_CONV),
    "weight gradient: extra positions kept": (conv(WEIGHT_RETURN, "    return out.transpose(0, 1)\n"),
                                              {"conv2d_weight_grad": "larger than the kernel"}, AS_CONV),
    "weight gradient: dout not dilated": (conv(WEIGHT_KERNEL, "    kernel = dout.transpose(0, 1)\n"),
                                          {"conv2d_weight_grad": "right with stride 1 but wrong with stride"}, AS_CONV),
    "weight gradient: x not padded": (conv(WEIGHT_CONV, WEIGHT_CONV.replace("padding=padding", "padding=0")),
                                      {"conv2d_weight_grad": "the padding is missing"}, AS_CONV),
    "receptive field ignoring the strides": (conv(FIELD_STEP, "        field += dilation * (kernel - 1)\n"),
                                             {"receptive_field": "ignores the strides"}, FIELD),
    "receptive field with the stride of the layer itself": (
        conv(FIELD_STEP, "        jump *= stride\n        field += dilation * (kernel - 1) * jump\n"),
        {"receptive_field": "own stride too"}, FIELD),
    "receptive field ignoring the dilation": (conv(FIELD_STEP, "        field += (kernel - 1) * jump\n"
                                                               "        jump *= stride\n"),
                                              {"receptive_field": "ignores the dilation"}, FIELD),
    "receptive field off by one": (conv("    field, jump = 1, 1\n", "    field, jump = 0, 1\n"),
                                   {"receptive_field": "off by one"}, FIELD),
    "receptive field as a float": (conv("        jump *= stride\n    return field\n",
                                        "        jump *= stride\n    return float(field)\n"),
                                   {"receptive_field": "returned the float"}, FIELD),
    "parameters without the biases": (conv(PARAMS, "    return out_channels * in_channels * KH * KW\n"),
                                      {"conv2d_num_parameters": "the biases are missing"}, COUNTING),
    "parameters counting biases when there are none": (conv(PARAMS, "    return out_channels * in_channels * KH * KW"
                                                                     " + out_channels\n"),
                                                       {"conv2d_num_parameters": "bias=False still counts"}, COUNTING),
    "FLOPs as multiply–accumulates": (conv(FLOPS, "    return in_channels * KH * KW * out_channels * OH * OW\n"),
                                      {"conv2d_flops": "it counts multiply–accumulates"}, COUNTING),
    "FLOPs over the input's size": (conv(FLOPS, "    return 2 * in_channels * KH * KW * out_channels * H * W\n"),
                                    {"conv2d_flops": "it uses the input's size"}, COUNTING),
    "FLOPs with the bias additions": (conv(FLOPS, FLOPS.replace(" * OH * OW\n",
                                                                " * OH * OW + out_channels * OH * OW\n")),
                                      {"conv2d_flops": "it adds the bias"}, COUNTING),
})
LISTED_NEW = {  # the new exercises' mistakes, caught by the hidden tests too
    "input gradient: kernel not flipped": {"conv2d_input_grad": "the kernel flipped"},
    "input gradient: dout not dilated": {"conv2d_input_grad": "right with stride 1 but wrong with stride"},
    "input gradient: rows past the last window left out": {"conv2d_input_grad": "short of input_shape"},
    "weight gradient: axes not swapped back": {"conv2d_weight_grad": "swap the first two axes back"},
    "weight gradient: extra positions kept": {"conv2d_weight_grad": "larger than the kernel"},
    "weight gradient: dout not dilated": {"conv2d_weight_grad": "right with stride 1 but wrong with stride"},
    "weight gradient: x not padded": {"conv2d_weight_grad": "the padding is missing"},
    "receptive field ignoring the strides": {"receptive_field": "ignores the strides"},
    "receptive field with the stride of the layer itself": {"receptive_field": "own stride too"},
    "receptive field ignoring the dilation": {"receptive_field": "ignores the dilation"},
    "receptive field off by one": {"receptive_field": "off by one"},
    "parameters without the biases": {"conv2d_num_parameters": "the biases are missing"},
    "parameters counting biases when there are none": {"conv2d_num_parameters": "bias=False still counts"},
    "FLOPs as multiply–accumulates": {"conv2d_flops": "multiply–accumulates"},
    "FLOPs over the input's size": {"conv2d_flops": "the input's size"},
    "FLOPs with the bias additions": {"conv2d_flops": "adds the bias"},
}


@pytest.fixture(scope="module")
def as_package(tmp_path_factory):
    """Install a conv.py source as a throwaway package; return a program runner for it."""
    yield from throwaway_packages("conv.py", tmp_path_factory.mktemp("variants"))


def _properties(checks: list[str]):
    _load_registry()
    return [prop for name in checks for prop in _REGISTRY[name]()]


@pytest.mark.parametrize("name", CORRECT)
def test_correct_implementations_pass_every_property(name: str, as_package) -> None:
    source, checks = CORRECT[name]
    run = as_package(source)
    failed = [(p.exercise, p.title, message) for p in _properties(checks)
              for ok, message in [evaluate(p, run)] if not ok]
    assert not failed, f"{name}: {failed}"


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_fails_with_its_diagnosis(name: str, as_package) -> None:
    source, expected, checks = MISTAKES[name]
    run = as_package(source)
    failures: dict[str, list[str]] = {}
    for prop in _properties(checks):
        passed, message = evaluate(prop, run)
        if not passed:
            failures.setdefault(prop.exercise, []).append(message)
    assert failures, f"{name} passed every property"
    for exercise, words in expected.items():
        assert any(words in m for m in failures.get(exercise, [])), f"{name}: {failures}"


def test_the_stubs_fail_every_property_as_not_implemented(as_package) -> None:
    run = as_package(STUB)
    for prop in _properties(FUNCTIONAL + MODULE + NEW_CHECKS):
        passed, message = evaluate(prop, run)
        assert not passed and "not implemented yet" in message, (prop.exercise, prop.title, message)


def test_every_exercise_of_the_chapter_has_a_visible_check() -> None:
    covered = {p.exercise for p in _properties(FUNCTIONAL + MODULE + NEW_CHECKS)}
    assert covered == {"conv_output_size", "conv2d_forward_naive", "im2col", "col2im", "conv2d_forward",
                       "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward", "Conv2d", "conv2d_input_grad",
                       "conv2d_weight_grad", "receptive_field", "conv2d_num_parameters", "conv2d_flops"}


MEASURED = """
import torch


def vectorized(x):
    return (x * 2).sum(dim=1)


def looped(x):
    return torch.stack([row.sum() * 2 for row in x])


def python_only(n):
    return sum(i * i for i in range(n))
"""


def test_measure_counts_torch_calls_and_the_packages_own_python_lines(as_package) -> None:
    run = as_package(MEASURED)
    p = Program()
    refs = {f"{name}{n}": p.measure(f"conv.{name}", p.put(torch.ones(n, 3))) for name in ("vectorized", "looped")
            for n in (2, 40)}
    refs.update(python2=p.measure("conv.python_only", 2), python40=p.measure("conv.python_only", 40))
    got = run(p.fetch(**refs))
    assert torch.equal(got["vectorized40"]["value"], torch.full((40,), 6.0))
    assert "torch.Tensor.sum" in got["vectorized2"]["op_names"]
    for key in ("ops", "lines"):
        assert got["vectorized2"][key] == got["vectorized40"][key] > 0  # torch's own Python lines are not counted
        assert got["looped40"][key] - got["looped2"][key] >= 38
    assert got["python2"]["ops"] == got["python40"]["ops"] == 0
    assert got["python40"]["lines"] - got["python2"]["lines"] >= 38


@pytest.fixture
def learner_file(tmp_path: Path, monkeypatch):
    """Point ``exercises.conv`` at a file the test writes, as a learner's edited file."""
    monkeypatch.setattr(exercises, "__path__", [str(tmp_path), *exercises.__path__])
    monkeypatch.delitem(sys.modules, "exercises.conv", raising=False)
    yield tmp_path / "conv.py"
    sys.modules.pop("exercises.conv", None)


def test_check_passes_on_the_reference_and_rereads_an_edit(learner_file: Path, capsys) -> None:
    learner_file.write_text(MISTAKES["col2im: overlapping windows overwritten"][0])
    with pytest.raises(CheckFailed, match="1 of 2 properties of 'col2im' failed"):
        check("col2im")
    assert "overwrite each other" in capsys.readouterr().out
    learner_file.write_text(REFERENCE)
    assert check("im2col") is None  # passes without a value for the notebook to print
    out = capsys.readouterr().out
    assert out.count("✓") == 5 and "✗" not in out


# ----------------------------------------------------------------------------- the hidden tests, in-process

LISTED_MISTAKES = {  # the mistakes issue 5 lists (and LISTED_NEW), and the hidden tests' diagnoses of them
    "size: no + 1": {"conv_output_size": "the + 1 is missing"},
    "naive: own size formula, off by one": {"conv2d_forward_naive": "the + 1 is missing"},
    "naive: padding on one side": {"conv2d_forward_naive": "bottom and right only"},
    "im2col: padding on one side": {"im2col": "bottom and right only"},
    "col2im: stride ignored": {"col2im": "the stride is ignored", "conv2d_backward": "the stride is ignored"},
    "naive: flipped kernel": {"conv2d_forward_naive": "kernel flipped"},
    "forward: flipped kernel": {"conv2d_forward": "kernel flipped"},
    "backward: db over N only": {"conv2d_backward": "summed over N only"},
    "backward: db over positions only": {"conv2d_backward": "not over N"},
    "col2im: overlapping windows overwritten": {"col2im": "overwrite each other",
                                                "conv2d_backward": "overwrite each other",
                                                "maxpool2d_backward": "overwrite each other"},
    "max pool: gradient to every tied maximum": {"maxpool2d_backward": "every tied maximum"},
    "im2col: rows ordered (p, q, c)": {"im2col": "rows are ordered (p, q, c)"},
    "im2col: loop over images": {"im2col": "a Python loop over images"},
    "im2col: index lists built by a Python loop over positions": {"im2col": "a Python loop over output positions"},
    "forward: loop over filters": {"conv2d_forward": "a Python loop over filters"},
    "im2col: calls unfold": {"im2col": "called torch.nn.functional.unfold"},
    "backward: autograd": {"conv2d_backward": "torch.Tensor.backward"},
    "Conv2d: no autograd.Function": {"Conv2d": "your conv2d_backward never ran"},
    **LISTED_NEW,
}
HIDDEN_CORRECT = {  # correct variants, and the exercises whose hidden tests they must pass
    "im2col by as_strided": ["im2col", "conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward"],
    "im2col by index tensors": ["im2col", "conv2d_forward", "maxpool2d_forward", "maxpool2d_backward"],
    "col2im by index_add_": ["col2im", "conv2d_backward", "maxpool2d_backward"],
    "forward on windows without im2col": ["conv2d_forward", "conv2d_backward"],
    "dw by tensordot, db by two sums": ["conv2d_backward"],
    "max pool: last of the tied maxima": ["maxpool2d_forward", "maxpool2d_backward"],
    "max pool: loops, first maximum": ["maxpool2d_forward", "maxpool2d_backward"],
    "max pool: first of the tied maxima by a cumsum mask": ["maxpool2d_forward", "maxpool2d_backward"],
    "Conv2d saves tensors and recomputes the forward": ["Conv2d"],
    "Conv2d with CS231n's 0.01·randn weights": ["Conv2d"],
    "input gradient by col2im of the transposed product": ["conv2d_input_grad"],
    "weight gradient by einsum over im2col's windows": ["conv2d_weight_grad"],
    "input gradient with the padding cropped by F.pad with negative amounts": ["conv2d_input_grad"],
    "receptive field from the last layer back": ["receptive_field"],
    "counts through conv_output_size's product and a bias term": ["conv2d_num_parameters", "conv2d_flops"],
}


def _hidden(exercises: list[str]):
    from grading.suite import load_suite

    return [t for t in load_suite() if t.name.startswith("conv.") and t.exercise in exercises]


@pytest.mark.parametrize("name", LISTED_MISTAKES)
def test_hidden_tests_catch_each_listed_mistake_with_its_diagnosis(name: str, as_package) -> None:
    run = as_package(MISTAKES[name][0])
    expected = LISTED_MISTAKES[name]
    failures: dict[str, list[str]] = {}
    for test in _hidden(list(expected)):
        passed, message = evaluate(test.build(), run)
        if not passed:
            failures.setdefault(test.exercise, []).append(message)
    for exercise, words in expected.items():
        assert any(words in m for m in failures.get(exercise, [])), f"{name}: {failures}"


@pytest.mark.parametrize("name", HIDDEN_CORRECT)
def test_hidden_tests_accept_other_correct_strategies(name: str, as_package) -> None:
    run = as_package(CORRECT[name][0])
    failed = [(t.name, message) for t in _hidden(HIDDEN_CORRECT[name]) for ok, message in [evaluate(t.build(), run)]
              if not ok]
    assert not failed, f"{name}: {failed}"


def test_a_property_judged_twice_gives_the_same_verdict(as_package) -> None:
    """A judge must not change its own inputs: float64 ``.double()`` is the tensor itself, and autograd
    through it would pile up ``.grad`` from one judging to the next (a grader that builds a property once
    and judges several submissions with it would then fail every correct one after the first)."""
    run = as_package(REFERENCE)
    names = {"backward_overlapping_float64", "pool_backward_overlapping", "layer_gradients_float64",
             "layer_gradients_float32"}
    props = [t.build() for t in _hidden(["conv2d_backward", "maxpool2d_backward", "Conv2d"])
             if t.name.split(".")[-1] in names]
    assert len(props) == len(names)
    for prop in props:
        assert evaluate(prop, run) == (True, ""), prop.title
        assert evaluate(prop, run) == (True, ""), f"second judging: {prop.title}"


def test_the_counting_and_field_oracles_agree_with_torch() -> None:
    """The FLOP judge counts torch's own outputs (torch's FLOP counter imports its compiler, seconds a
    check should not pay): the two agree. The field judge measures with autograd: known answers."""
    from torch.utils.flop_counter import FlopCounterMode

    from exercises.checks.conv import field_by_autograd, flops_by_torch

    for c, f, k, size, s, p in ((3, 16, 3, 32, 1, 1), (2, 5, (3, 7), (20, 31), (2, 1), (1, 3)), (4, 4, 1, 9, 3, 0)):
        (kh, kw), (h, w) = ((k, k) if isinstance(k, int) else k), ((size, size) if isinstance(size, int) else size)
        with FlopCounterMode(display=False) as counter:
            torch.nn.functional.conv2d(torch.empty(1, c, h, w, device="meta"), torch.empty(f, c, kh, kw, device="meta"),
                                       stride=s, padding=p)
        assert flops_by_torch(c, f, k, size, s, p) == counter.get_total_flops()
    assert field_by_autograd([(3, 1), (3, 1)]) == 5
    assert field_by_autograd([(3, 1, 2)]) == 5
    assert field_by_autograd([(2, 2), (2, 2), (2, 2)]) == 8
    assert field_by_autograd([]) == 1
