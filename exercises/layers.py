# Your exercises: replace each `raise NotImplementedError(...)` with your code, save, and run the
# notebook's check cell. Keep the names and signatures: the checks and the grader call them.
# (Course maintainers: this file is generated from solutions/layers.py by `python -m grading stubs`;
# edit that file, not this one.)
# ruff: noqa: F401  (imports the reference uses stay, for you to use too)
"""Layers with a forward pass and a hand-written backward pass (chapter 2).

Every layer follows the forward/backward-with-cache pattern: ``forward(...)`` returns
``(out, cache)`` and ``backward(dout, cache)`` returns the gradient of the loss with respect to
each input of the forward, in order. ``cache`` is whatever your backward needs; nobody else
looks inside it. Do not call ``torch.autograd`` here: computing gradients by hand is the point.
"""

from __future__ import annotations

from typing import Any

import torch

from exercises.validate import require_float_tensor, require_same_shape


def relu_forward(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Rectified linear unit, elementwise: ``out = max(0, x)``.

    Args:
        x: a floating-point tensor of any shape.

    Returns:
        ``(out, cache)``: ``out`` has the shape, dtype and device of ``x``; ``cache`` holds
        what ``relu_backward`` needs. ``x`` itself is not modified.

    Explained in course/00_welcome.ipynb, section "Your first exercise: ReLU".
    """
    require_float_tensor("x", x)
    raise NotImplementedError('relu_forward is not implemented yet: see course/00_welcome.ipynb, section "Your first exercise: ReLU".')


def relu_backward(dout: torch.Tensor, cache: Any) -> torch.Tensor:
    """Gradient of the loss with respect to ReLU's input: ``dx = dout · 1[x > 0]``.

    Args:
        dout: the upstream gradient, with the shape of the forward's output.
        cache: the second value ``relu_forward`` returned.

    Returns:
        ``dx`` with the shape, dtype and device of ``x``. At ``x == 0`` exactly, where ReLU has
        no derivative, the gradient is 0 (the usual convention, and torch's).

    Explained in course/00_welcome.ipynb, section "Your first exercise: ReLU".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError('relu_backward is not implemented yet: see course/00_welcome.ipynb, section "Your first exercise: ReLU".')
