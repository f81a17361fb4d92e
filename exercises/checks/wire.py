"""The plain-data format between the grader and the learner's process: written once, used by both.

Programs travel from the grader to the sandbox and results back as JSON: ``None``, bools, ints,
strings and lists as themselves; a non-finite float, a tuple, a dict, a tensor (its dtype, shape and
raw bytes, base64), a reference to a program's value, or an object that cannot be sent as plain data
as a one-key object tagged below. Nothing is ever pickled.

``encode`` is used on both sides: strictly by the grader for its programs (an unknown type raises),
leniently by the learner's process for results (an unknown type, a tensor subclass's tricks, or a
result too large or too deep becomes ``Opaque``). ``decode`` is strict: anything unexpected raises
``ValueError``, so a forged result is refused, never trusted.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import torch

REF, TUPLE, DICT, FLOAT, TENSOR, OPAQUE = "__ref__", "__tuple__", "__dict__", "__float__", "__tensor__", "__opaque__"
MAX_DEPTH = 32
MAX_ITEMS = 100_000
DTYPES = {name: getattr(torch, name) for name in (
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")}


@dataclass(frozen=True)
class Opaque:
    """A value the learner's process could not send as plain data (an object of type ``type_name``)."""

    type_name: str


def _tensor(value: torch.Tensor, lenient: bool) -> dict[str, Any]:
    with torch._C.DisableTorchFunction():  # a subclass's __torch_function__ does not run here
        subclass = type(value) is not torch.Tensor and type(value).__name__ != "Parameter"
        t = torch.Tensor.as_subclass(value, torch.Tensor).detach()
        if t.is_complex() or t.layout != torch.strided or str(t.dtype).removeprefix("torch.") not in DTYPES:
            if not lenient:
                raise TypeError(f"a program cannot carry a tensor of dtype {t.dtype}, layout {t.layout}")
            return {OPAQUE: f"tensor of dtype {t.dtype}, layout {t.layout}"}
        device = str(t.device)
        t = t.to("cpu").contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
    body = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
            "data": base64.b64encode(raw).decode("ascii")}
    if lenient:
        body.update(device=device, subclass=type(value).__name__ if subclass else None)
    return {TENSOR: body}


def encode(value: Any, ref_type: type | None = None, lenient: bool = False) -> Any:
    """Plain JSON data for ``value``. ``ref_type`` instances become references. Strict unless ``lenient``.

    The recursion is a closure, not a module-level name, so code that replaces this module's attributes
    while a program runs cannot change how its result is written."""
    budget = [MAX_ITEMS]
    tensor = _tensor

    def walk(value: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            if lenient:
                return {OPAQUE: "too large or too deeply nested"}
            raise ValueError("a program too large or too deeply nested")
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:  # the common cases first, by exact type
            return value
        if kind is dict and all(type(k) is str for k in value):
            return {DICT: {k: walk(v, depth + 1) for k, v in value.items()}}
        if kind is list:
            return [walk(v, depth + 1) for v in value]
        if ref_type is not None and isinstance(value, ref_type):
            return {REF: value.id}
        if type(value) is float:
            return value if math.isfinite(value) else {FLOAT: repr(value)}
        if isinstance(value, torch.Tensor):
            return tensor(value, lenient)
        if type(value) is tuple or (not lenient and isinstance(value, tuple)):
            return {TUPLE: [walk(v, depth + 1) for v in value]}
        if type(value) is list or (not lenient and isinstance(value, list)):
            return [walk(v, depth + 1) for v in value]
        if (type(value) is dict and all(type(k) is str for k in value)) or (not lenient and isinstance(value, dict)):
            return {DICT: {str(k): walk(v, depth + 1) for k, v in value.items()}}
        if lenient:
            return {OPAQUE: type(value).__name__}
        raise TypeError(f"a program cannot carry a {type(value).__name__}")

    return walk(value, 0)


def decode(value: Any, ref_type: type | None = None, depth: int = 0) -> Any:
    """The value ``encode`` wrote, decoded strictly; references only where ``ref_type`` is given."""
    if depth > MAX_DEPTH + 8:
        raise ValueError("nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        return [decode(v, ref_type, depth + 1) for v in value]
    if type(value) is not dict or len(value) != 1:
        raise ValueError("unexpected value")
    (tag, body), = value.items()
    if tag == REF and ref_type is not None and type(body) is int:
        return ref_type(body)
    if tag == TUPLE and type(body) is list:
        return tuple(decode(v, ref_type, depth + 1) for v in body)
    if tag == DICT and type(body) is dict:
        return {str(k): decode(v, ref_type, depth + 1) for k, v in body.items()}
    if tag == FLOAT and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == OPAQUE:
        return Opaque(str(body)[:200])
    if tag == TENSOR and type(body) is dict:
        return _decode_tensor(body)
    raise ValueError(f"unknown tag {tag!r}")


def _decode_tensor(body: dict[str, Any]) -> torch.Tensor:
    dtype = DTYPES.get(body.get("dtype"))  # type: ignore[arg-type]
    shape = body.get("shape")
    if dtype is None or type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
        raise ValueError("bad tensor header")
    data = body.get("data", "")
    if type(data) is not str:
        raise ValueError("bad tensor data")
    raw = base64.b64decode(data, validate=True)
    count = math.prod(shape)
    if len(raw) != count * torch.empty(0, dtype=dtype).element_size():
        raise ValueError("tensor data does not match its shape")
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    storage = torch.frombuffer(bytearray(raw), dtype=torch.int16 if dtype == torch.bfloat16 else dtype)
    t = storage.view(torch.bfloat16) if dtype == torch.bfloat16 else storage
    return t.reshape(shape).clone()
