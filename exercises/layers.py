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

from exercises.kit.validate import (
    require_class_labels,
    require_float_tensor,
    require_fraction,
    require_same_dtype,
    require_same_shape,
    require_shape,
)


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
    raise NotImplementedError(
        "relu_forward is not implemented yet: see course/00_welcome.ipynb, "
        "section \"Your first exercise: ReLU\".")


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
    raise NotImplementedError(
        "relu_backward is not implemented yet: see course/00_welcome.ipynb, "
        "section \"Your first exercise: ReLU\".")


# ----------------------------------------------------------------------------- the linear layer


def linear_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Fully connected (affine) layer: ``out = x @ w + b``.

    Args:
        x: inputs, ``N×D`` (``N`` samples of ``D`` features), float32 or float64.
        w: weights, ``D×M``, the dtype of ``x``.
        b: biases, ``M``, the dtype of ``x``; added to every row.

    Returns:
        ``(out, cache)``: ``out`` is ``N×M``, ``out[n, m] = Σ_d x[n, d]·w[d, m] + b[m]``; ``cache``
        holds what ``linear_backward`` needs.

    Explained in course/02_backprop.ipynb, section "The linear layer".
    """
    for name, value in (("x", x), ("w", w), ("b", b)):
        require_float_tensor(name, value)
    require_shape("x", x, (None, None), "N×D")
    require_shape("w", w, (x.shape[1], None), "D×M")
    require_shape("b", b, (w.shape[1],), "M")
    require_same_dtype("w", w, "x", x)
    require_same_dtype("b", b, "x", x)
    raise NotImplementedError(
        "linear_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"The linear layer\".")


def linear_backward(dout: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the loss with respect to the linear layer's inputs.

    With ``dout = ∂L/∂out`` (``N×M``), the chain rule through ``out = x @ w + b`` gives, with
    shapes that must match the forward's inputs::

        dx = dout @ wᵀ          N×M · M×D = N×D
        dw = xᵀ @ dout          D×N · N×M = D×M    (a sum over the batch of outer products)
        db = Σ_n dout[n, :]     M                  (b was added to every row, so it sums)

    Args:
        dout: the upstream gradient, ``N×M``.
        cache: the second value ``linear_forward`` returned.

    Returns:
        ``(dx, dw, db)`` with the shapes and dtype of ``x``, ``w`` and ``b``.

    Explained in course/02_backprop.ipynb, section "The linear layer".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "linear_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"The linear layer\".")


# ----------------------------------------------------------------------------- activations


def sigmoid_forward(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Logistic sigmoid, elementwise: ``out = σ(x) = 1 / (1 + e^−x)``, in ``(0, 1)``.

    Must stay finite and correct for inputs as large as ±1e4 in float32, where ``e^{1e4}``
    overflows to ``inf``: write it so that ``exp`` only ever sees ``−|x|``. Do not call
    ``torch.sigmoid`` (writing it is the exercise).

    Args:
        x: a floating-point tensor of any shape.

    Returns:
        ``(out, cache)``: ``out`` has the shape, dtype and device of ``x``.

    Explained in course/02_backprop.ipynb, section "Activations: sigmoid and tanh".
    """
    require_float_tensor("x", x)
    raise NotImplementedError(
        "sigmoid_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Activations: sigmoid and tanh\".")


def sigmoid_backward(dout: torch.Tensor, cache: Any) -> torch.Tensor:
    """Gradient through the sigmoid: ``dx = dout · σ(x) · (1 − σ(x))``.

    Args:
        dout: the upstream gradient, with the shape of the forward's output.
        cache: the second value ``sigmoid_forward`` returned.

    Returns:
        ``dx`` with the shape, dtype and device of ``x``; finite for inputs as large as ±1e4.

    Explained in course/02_backprop.ipynb, section "Activations: sigmoid and tanh".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "sigmoid_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Activations: sigmoid and tanh\".")


def tanh_forward(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Hyperbolic tangent, elementwise: ``out = tanh(x) = (e^x − e^−x) / (e^x + e^−x)``, in ``(−1, 1)``.

    Do not call ``torch.tanh`` (writing it is the exercise); ``tanh(x) = 2σ(2x) − 1`` or
    ``sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|})`` avoid overflow.

    Args:
        x: a floating-point tensor of any shape.

    Returns:
        ``(out, cache)``: ``out`` has the shape, dtype and device of ``x``.

    Explained in course/02_backprop.ipynb, section "Activations: sigmoid and tanh".
    """
    require_float_tensor("x", x)
    raise NotImplementedError(
        "tanh_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Activations: sigmoid and tanh\".")


def tanh_backward(dout: torch.Tensor, cache: Any) -> torch.Tensor:
    """Gradient through tanh: ``dx = dout · (1 − tanh²(x))``.

    Args:
        dout: the upstream gradient, with the shape of the forward's output.
        cache: the second value ``tanh_forward`` returned.

    Returns:
        ``dx`` with the shape, dtype and device of ``x``.

    Explained in course/02_backprop.ipynb, section "Activations: sigmoid and tanh".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "tanh_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Activations: sigmoid and tanh\".")


# ----------------------------------------------------------------------------- the loss


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean softmax cross-entropy over a batch, and its gradient with respect to the logits.

    With ``p = softmax(z)`` row by row, ``p[n, c] = e^{z[n, c]} / Σ_k e^{z[n, k]}``::

        loss = −(1/N) Σ_n log p[n, y_n]
        dlogits = (p − onehot(y)) / N

    Compute ``log p`` directly with the log-sum-exp trick, ``log p = (z − m) − log Σ_k e^{z_k − m}``
    with ``m`` the row's maximum: then nothing overflows (every exponent is ≤ 0) and nothing takes
    ``log(0)``, even for logits of ±1e4 in float32. Do not call torch's softmax, log_softmax or
    cross_entropy.

    Args:
        logits: ``N×C`` scores, float32 or float64.
        labels: ``N`` int64 class indices in ``0..C−1``.

    Returns:
        ``(loss, dlogits)``: ``loss`` a 0-d tensor, ``dlogits`` ``N×C``, both in the logits' dtype.

    Explained in course/02_backprop.ipynb, section "Softmax cross-entropy".
    """
    require_float_tensor("logits", logits)
    require_shape("logits", logits, (None, None), "N×C")
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must hold at least one sample and one class, got shape {tuple(logits.shape)}")
    require_class_labels("labels", labels, logits.shape[0], logits.shape[1])
    raise NotImplementedError(
        "softmax_cross_entropy is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Softmax cross-entropy\".")


# ----------------------------------------------------------------------------- regularization layers


def dropout_forward(x: torch.Tensor, p: float, training: bool,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, Any]:
    """Inverted dropout.

    In training, each element is kept with probability ``1 − p`` and scaled by ``1/(1 − p)``, or
    set to 0: ``out = x · mask / (1 − p)`` with ``mask[i] ~ Bernoulli(1 − p)``, drawn from
    ``generator``. The scaling keeps ``E[out] = x``, so at test time (``training`` false) the layer is
    the identity; it is also the identity when ``p == 0``.

    Args:
        x: a floating-point tensor of any shape.
        p: the probability of dropping an element, ``0 <= p < 1``.
        training: whether to drop (training) or pass ``x`` through (evaluation).
        generator: the ``torch.Generator`` to draw the mask from (may be ``None`` when nothing is drawn).

    Returns:
        ``(out, cache)``: ``out`` has the shape, dtype and device of ``x``; ``cache`` holds the mask.

    Explained in course/02_backprop.ipynb, section "Inverted dropout".
    """
    require_float_tensor("x", x)
    p = require_fraction("p", p)
    if training and p > 0 and not isinstance(generator, torch.Generator):
        raise ValueError("generator must be a torch.Generator when dropping in training, "
                         f"got {type(generator).__name__}")
    raise NotImplementedError(
        "dropout_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Inverted dropout\".")


def dropout_backward(dout: torch.Tensor, cache: Any) -> torch.Tensor:
    """Gradient through inverted dropout: ``dx = dout · mask / (1 − p)`` with the forward's own
    mask (the identity when the forward was).

    Args:
        dout: the upstream gradient, with the shape of the forward's output.
        cache: the second value ``dropout_forward`` returned.

    Returns:
        ``dx`` with the shape, dtype and device of ``x``.

    Explained in course/02_backprop.ipynb, section "Inverted dropout".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "dropout_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Inverted dropout\".")


def batchnorm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                      eps: float = 1e-5) -> tuple[torch.Tensor, Any]:
    """Batch normalization in training mode, over the batch of ``x: N×D``.

    Per feature ``d``, with the batch mean and the **biased** variance (divide by ``N``)::

        μ = (1/N) Σ_n x[n]          σ² = (1/N) Σ_n (x[n] − μ)²
        x̂ = (x − μ) / √(σ² + eps)   out = γ · x̂ + β

    Do not call torch's batch_norm.

    Args:
        x: ``N×D``, float32 or float64.
        gamma: scale ``γ``, ``D``; beta: shift ``β``, ``D``; both the dtype of ``x``.
        eps: added to the variance inside the square root, ``eps > 0``.

    Returns:
        ``(out, cache)``: ``out`` is ``N×D``.

    Explained in course/02_backprop.ipynb, section "Batch normalization".
    """
    for name, value in (("x", x), ("gamma", gamma), ("beta", beta)):
        require_float_tensor(name, value)
    require_shape("x", x, (None, None), "N×D")
    require_shape("gamma", gamma, (x.shape[1],), "D")
    require_shape("beta", beta, (x.shape[1],), "D")
    require_same_dtype("gamma", gamma, "x", x)
    require_same_dtype("beta", beta, "x", x)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    raise NotImplementedError(
        "batchnorm_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Batch normalization\".")


def batchnorm_backward(dout: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the loss through training-mode batch normalization.

    With ``g = dout · γ`` (the gradient with respect to ``x̂``), every ``x[n]`` reaches the loss
    through ``x̂[n]`` directly and through ``μ`` and ``σ²``, which depend on the whole batch::

        dβ = Σ_n dout[n]            dγ = Σ_n dout[n] · x̂[n]
        dx = (1 / (N·√(σ² + eps))) · (N·g − Σ_n g[n] − x̂ · Σ_n g[n]·x̂[n])

    Args:
        dout: the upstream gradient, ``N×D``.
        cache: the second value ``batchnorm_forward`` returned.

    Returns:
        ``(dx, dgamma, dbeta)`` with the shapes and dtype of ``x``, ``gamma`` and ``beta``.

    Explained in course/02_backprop.ipynb, section "Batch normalization".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "batchnorm_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Batch normalization\".")


def _require_eps(eps: object) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")


def _require_features(name: str, value: object, d: int, x: torch.Tensor) -> None:
    require_float_tensor(name, value)
    require_shape(name, value, (d,), "D" if x.ndim == 2 else "C")
    require_same_dtype(name, value, "x", x)


def batchnorm_running_update(running_mean: torch.Tensor, running_var: torch.Tensor, x: torch.Tensor,
                             momentum: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The running statistics batch norm keeps for test time, after one training batch ``x: N×D``.

    Per feature, with the batch mean ``μ`` and the **unbiased** batch variance ``s² = Σ_n (x[n] − μ)² / (N − 1)``
    (what ``torch.nn.BatchNorm1d`` stores, although it normalizes the batch with the biased one)::

        running_mean ← (1 − momentum) · running_mean + momentum · μ
        running_var  ← (1 − momentum) · running_var  + momentum · s²

    Args:
        running_mean, running_var: ``D`` each, the statistics so far (PyTorch starts them at 0 and 1).
        x: the training batch, ``N×D`` with ``N >= 2``, of their dtype.
        momentum: the weight of the new batch, ``0 <= momentum <= 1`` (PyTorch's default is 0.1).

    Returns:
        ``(running_mean, running_var)``, new tensors of shape ``D``; the arguments are not modified.

    Explained in course/02_backprop.ipynb, section "Batch normalization at test time".
    """
    require_float_tensor("x", x)
    require_shape("x", x, (None, None), "N×D")
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 samples for an unbiased variance, got {x.shape[0]}")
    _require_features("running_mean", running_mean, x.shape[1], x)
    _require_features("running_var", running_var, x.shape[1], x)
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be a number in [0, 1], got {momentum!r}")
    raise NotImplementedError(
        "batchnorm_running_update is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Batch normalization at test time\".")


def batchnorm_eval_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, running_mean: torch.Tensor,
                           running_var: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, Any]:
    """Batch normalization at test time: the running statistics in place of the batch's.

    ``out = γ · (x − running_mean) / √(running_var + eps) + β``, per feature: each sample on its own, so the
    output for one sample does not depend on the others in the batch (a batch of one works). The same as
    ``torch.nn.functional.batch_norm(x, running_mean, running_var, gamma, beta, training=False, eps=eps)``.

    Args:
        x: ``N×D``; gamma, beta, running_mean, running_var: ``D`` each, all of ``x``'s dtype.
        eps: added to the variance inside the square root, ``eps > 0``.

    Returns:
        ``(out, cache)``: ``out`` is ``N×D``.

    Explained in course/02_backprop.ipynb, section "Batch normalization at test time".
    """
    require_float_tensor("x", x)
    require_shape("x", x, (None, None), "N×D")
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        _require_features(name, value, x.shape[1], x)
    _require_eps(eps)
    raise NotImplementedError(
        "batchnorm_eval_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Batch normalization at test time\".")


def batchnorm_eval_backward(dout: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients through test-time batch normalization.

    The running statistics are constants here, so ``x`` reaches the loss only through its own ``x̂``::

        dx = dout · γ / √(running_var + eps)     dγ = Σ_n dout[n] · x̂[n]     dβ = Σ_n dout[n]

    (exactly the "mean and variance held constant" formula that is wrong in training mode).

    Args:
        dout: the upstream gradient, ``N×D``; cache: the second value ``batchnorm_eval_forward`` returned.

    Returns:
        ``(dx, dgamma, dbeta)`` with the shapes and dtype of ``x``, ``gamma`` and ``beta``.

    Explained in course/02_backprop.ipynb, section "Batch normalization at test time".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "batchnorm_eval_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Batch normalization at test time\".")


def _require_images_and_channels(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> None:
    require_float_tensor("x", x)
    require_shape("x", x, (None, None, None, None), "N×C×H×W")
    _require_features("gamma", gamma, x.shape[1], x)
    _require_features("beta", beta, x.shape[1], x)
    _require_eps(eps)


def spatial_batchnorm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                              eps: float = 1e-5) -> tuple[torch.Tensor, Any]:
    """Batch normalization of images in training mode: one mean and variance per **channel**, over the
    batch and every position.

    For ``x: N×C×H×W``, channel ``c`` is normalized with the mean and biased variance of its ``N·H·W``
    values, ``x[:, c, :, :]``, then scaled by ``γ[c]`` and shifted by ``β[c]``: a convolution's filter
    detects the same feature everywhere, so all its positions share statistics. The same as
    ``torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)``
    (``nn.BatchNorm2d``). Build it from your ``batchnorm_forward``: move the channels last and flatten
    the rest, ``(N·H·W)×C``.

    Args:
        x: ``N×C×H×W``; gamma, beta: ``C``, of ``x``'s dtype; eps: ``eps > 0``.

    Returns:
        ``(out, cache)``: ``out`` is ``N×C×H×W``.

    Explained in course/02_backprop.ipynb, section "Spatial batch normalization".
    """
    _require_images_and_channels(x, gamma, beta, eps)
    raise NotImplementedError(
        "spatial_batchnorm_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Spatial batch normalization\".")


def spatial_batchnorm_backward(dout: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients through spatial batch normalization: your ``batchnorm_backward`` on the same
    ``(N·H·W)×C`` layout, ``dx`` brought back to ``N×C×H×W``.

    Args:
        dout: the upstream gradient, ``N×C×H×W``; cache: the second value ``spatial_batchnorm_forward`` returned.

    Returns:
        ``(dx, dgamma, dbeta)`` with the shapes and dtype of ``x`` (``N×C×H×W``), ``gamma`` and ``beta`` (``C``).

    Explained in course/02_backprop.ipynb, section "Spatial batch normalization".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "spatial_batchnorm_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Spatial batch normalization\".")


def layernorm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                      eps: float = 1e-5) -> tuple[torch.Tensor, Any]:
    """Layer normalization: each **sample** normalized over its own features, the same in training and at
    test time (no batch statistics, no running averages).

    For ``x: N×D``, per sample ``n``, with the mean and **biased** variance of its ``D`` features::

        μ[n] = (1/D) Σ_d x[n, d]     σ²[n] = (1/D) Σ_d (x[n, d] − μ[n])²
        out[n] = γ · (x[n] − μ[n]) / √(σ²[n] + eps) + β              (γ, β: one per feature, D)

    The same as ``torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps)``. Do not call torch's
    layer_norm.

    Args:
        x: ``N×D``; gamma, beta: ``D``, of ``x``'s dtype; eps: ``eps > 0``.

    Returns:
        ``(out, cache)``: ``out`` is ``N×D``.

    Explained in course/02_backprop.ipynb, section "Layer normalization".
    """
    require_float_tensor("x", x)
    require_shape("x", x, (None, None), "N×D")
    _require_features("gamma", gamma, x.shape[1], x)
    _require_features("beta", beta, x.shape[1], x)
    _require_eps(eps)
    raise NotImplementedError(
        "layernorm_forward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Layer normalization\".")


def layernorm_backward(dout: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients through layer normalization: batch norm's formula with the roles of the axes swapped.

    With ``g = dout · γ`` and ``s = 1/√(σ²[n] + eps)``, the sums now run over the features of one sample::

        dx[n] = (s / D) · (D·g[n] − Σ_d g[n, d] − x̂[n] · Σ_d g[n, d]·x̂[n, d])
        dγ = Σ_n dout[n] · x̂[n]        dβ = Σ_n dout[n]     (γ and β are still shared by the batch)

    Args:
        dout: the upstream gradient, ``N×D``; cache: the second value ``layernorm_forward`` returned.

    Returns:
        ``(dx, dgamma, dbeta)`` with the shapes and dtype of ``x``, ``gamma`` and ``beta``.

    Explained in course/02_backprop.ipynb, section "Layer normalization".
    """
    require_float_tensor("dout", dout)
    raise NotImplementedError(
        "layernorm_backward is not implemented yet: see course/02_backprop.ipynb, "
        "section \"Layer normalization\".")


# ----------------------------------------------------------------------------- a whole network

PARAMETER_NAMES = ("W1", "b1", "W2", "b2")


def two_layer_net_loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                       reg: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and gradients of a two-layer network: linear → ReLU → linear → softmax cross-entropy.

    ::

        h = relu(x @ W1 + b1)                        N×H
        scores = h @ W2 + b2                         N×C
        loss = softmax_cross_entropy(scores, y) + 0.5 · reg · (‖W1‖² + ‖W2‖²)

    (‖W‖² is the sum of the squared entries; biases are not regularized.) Build it from your own
    ``linear_*``, ``relu_*`` and ``softmax_cross_entropy``: the forward pass caches, the backward
    pass runs the layers' backward functions in reverse order. The regularization term adds
    ``reg · W`` to each weight's gradient.

    Args:
        params: ``{"W1": D×H, "b1": H, "W2": H×C, "b2": C}``, float tensors of one dtype.
        x: ``N×D`` inputs of that dtype; y: ``N`` int64 labels in ``0..C−1``.
        reg: the L2 regularization strength, ``reg >= 0``.

    Returns:
        ``(loss, grads)``: ``loss`` a 0-d tensor; ``grads`` has the keys of ``params`` and each
        gradient the shape and dtype of its parameter.

    Explained in course/02_backprop.ipynb, section "A two-layer net".
    """
    if not isinstance(params, dict) or any(k not in params for k in PARAMETER_NAMES):
        have = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict with keys {', '.join(PARAMETER_NAMES)}; got {have}")
    for name in PARAMETER_NAMES:
        require_float_tensor(f"params[{name!r}]", params[name])
    require_float_tensor("x", x)
    W1, b1, W2, b2 = (params[k] for k in PARAMETER_NAMES)
    require_shape("params['W1']", W1, (None, None), "D×H")
    require_shape("params['b1']", b1, (W1.shape[1],), "H")
    require_shape("params['W2']", W2, (W1.shape[1], None), "H×C")
    require_shape("params['b2']", b2, (W2.shape[1],), "C")
    require_shape("x", x, (None, W1.shape[0]), "N×D")
    for name in PARAMETER_NAMES:
        require_same_dtype(f"params[{name!r}]", params[name], "x", x)
    require_class_labels("y", y, x.shape[0], W2.shape[1])
    if isinstance(reg, bool) or not isinstance(reg, (int, float)) or not reg >= 0:
        raise ValueError(f"reg must be a number >= 0, got {reg!r}")
    raise NotImplementedError(
        "two_layer_net_loss is not implemented yet: see course/02_backprop.ipynb, "
        "section \"A two-layer net\".")
