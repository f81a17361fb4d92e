"""The chapter 4 training-loop properties accept correct loops and name each realistic mistake.

Each variant is ``solutions/train.py`` with one function's solution region replaced. The properties run
in-process here, as the visible checks run them; test_train_grading.py runs the hidden tests through the
sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from exercises.checks import evaluate
from exercises.checks.train import (
    OnLoaderDevice,
    build_cnn_check,
    cnn_overfits_one_batch,
    cnn_shapes,
    evaluate_check,
    set_seed_check,
    train_one_epoch_check,
)
from grading import PROJECT_ROOT
from grading.stubs import strip_markers
from tests.conftest import forget_module, module_installer, solution_with_body

SOLUTION = (PROJECT_ROOT / "solutions" / "train.py").read_text(encoding="utf-8")
REFERENCE = strip_markers(SOLUTION)
STUB = (PROJECT_ROOT / "exercises" / "train.py").read_text(encoding="utf-8")
CHECKS = {"train_one_epoch": train_one_epoch_check, "evaluate": evaluate_check, "build_cnn": build_cnn_check,
          "set_seed": set_seed_check}


def with_body(function: str, body: str) -> str:
    """The reference with the solution region of ``function`` replaced by ``body``."""
    return solution_with_body(SOLUTION, function, body)


def loop(*, zero: str = "optimizer.zero_grad()", before: str = "", move: str = "x, y = x.to(device), y.to(device)",
         backward: str = "", total: str = "total += loss.item() * len(y)", result: str = "total / count",
         forward: str = "loss = F.cross_entropy(model(x), y)") -> str:
    """A plain train_one_epoch body with one part swapped (each part is one line or empty)."""
    backward = backward or ("if scaler is not None:\n        scaler.scale(loss).backward()\n"
                            "        scaler.step(optimizer)\n"
                            "        scaler.update()\n    else:\n        loss.backward()\n        optimizer.step()")
    return f"""
model.train()
total, count = 0.0, 0
{before}
for x, y in loader:
    {move}
    with autocast(device, amp_dtype):
        {forward}
    {zero}
    {backward}
    {total}
    count += len(y)
return {result}
"""


CORRECT = {
    "train_one_epoch": {
        "model.zero_grad and .item() sums": loop(zero="model.zero_grad()"),
        "zero_grad keeping the tensors": loop(zero="optimizer.zero_grad(set_to_none=False)"),
        "unscale and clip before the scaler's step": loop(backward=(
            "if scaler is not None:\n        scaler.scale(loss).backward()\n        scaler.unscale_(optimizer)\n"
            "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1e6)\n        scaler.step(optimizer)\n"
            "        scaler.update()\n    else:\n        loss.backward()\n        optimizer.step()")),
        "moving with non_blocking and a samples list": loop(
            move="x = x.to(device, non_blocking=True); y = y.to(device=device)",
            total="total += loss.item() * y.shape[0]"),
    },
    "evaluate": {
        "all logits at once, float32 accuracy": """
            model.eval()
            outs, ys = [], []
            with torch.no_grad():
                for x, y in loader:
                    outs.append(model(x.to(device)).float())
                    ys.append(y.to(device))
            logits, labels = torch.cat(outs), torch.cat(ys)
            return {"loss": F.cross_entropy(logits, labels).item(),
                    "accuracy": (logits.argmax(1) == labels).float().mean().item()}
        """,
        "restores the caller's mode afterwards": """
            was_training = model.training
            model.eval()
            loss_sum, correct, count = 0.0, 0, 0
            try:
                with torch.no_grad():
                    for x, y in loader:
                        x, y = x.to(device), y.to(device)
                        out = model(x)
                        loss_sum += F.cross_entropy(out, y, reduction="sum").item()
                        correct += (out.argmax(1) == y).sum().item()
                        count += y.numel()
            finally:
                model.train(was_training)
            return {"loss": loss_sum / count, "accuracy": correct / count}
        """,
        "inference mode and per-batch means": """
            model.eval()
            total, correct, count = 0.0, 0, 0
            with torch.inference_mode():
                for x, y in loader:
                    x, y = x.to(device), y.to(device)
                    logits = model(x)
                    total += F.cross_entropy(logits, y).item() * len(y)
                    correct += int((logits.argmax(1) == y).sum())
                    count += len(y)
            return {"accuracy": correct / count, "loss": total / count}
        """,
    },
    "build_cnn": {
        "average pooling, dropout, no batch norm": """
            return nn.Sequential(
                nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                nn.Flatten(), nn.Dropout(0.1), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, num_classes))
        """,
    },
    "set_seed": {
        "NumPy's state from a RandomState": """
            random.seed(seed)
            np.random.set_state(np.random.RandomState(seed).get_state())
            torch.random.manual_seed(seed)
        """,
        "one call each": """
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
        """,
    },
}

SCALER_NO_UPDATE = ("if scaler is not None:\n        scaler.scale(loss).backward()\n        scaler.step(optimizer)\n"
                    "    else:\n        loss.backward()\n        optimizer.step()")
SCALER_BYPASSED = ("if scaler is not None:\n        scaler.scale(loss).backward()\n        optimizer.step()\n"
                   "        scaler.update()\n    else:\n        loss.backward()\n        optimizer.step()")

MISTAKES = {  # exercise -> name -> (body, words some diagnosis must contain[, properties to run])
    "train_one_epoch": {
        "no zero_grad": (loop(zero=""), "gradients accumulate"),
        "zero_grad after the step": (loop(zero="",
                                          backward="loss.backward()\n    optimizer.step()\n    optimizer.zero_grad()"),
                                     "before train_one_epoch was called"),
        "zero_grad between backward and step": (loop(zero="", backward="loss.backward()\n    optimizer.zero_grad()\n"
                                                                       "    optimizer.step()"),
                                                "zero the gradients before backward"),
        "no model.train()": (loop().replace("model.train()\n", ""), "ran the model in evaluation mode"),
        "batches not moved": (loop(move="pass"), "moved to the training device"),
        "labels not moved": (loop(move="x = x.to(device)"), "the labels y"),
        "mean of batch means": (loop(total="total += loss.item()", result="total / len(loader)"),
                                "mean of the batch means"),
        "summed loss": (loop(forward="loss = F.cross_entropy(model(x), y, reduction='sum')",
                             total="total += loss.item()"), "summed loss"),
        "scaler never used": (loop(backward="loss.backward()\n    optimizer.step()"), "never used"),
        "scaler without update()": (loop(backward=SCALER_NO_UPDATE), "without scaler.update() in between"),
        "scaler bypassed at the step": (loop(backward=SCALER_BYPASSED), "not optimizer.step()"),
        "autocast ignored": (loop().replace("    with autocast(device, amp_dtype):\n        loss",
                                            "    if True:\n        loss"),
                             "must run under torch.autocast"),
        "autocast always on": (loop().replace("with autocast(device, amp_dtype):",
                                              "with torch.autocast(device.type, dtype=torch.bfloat16):"),
                               "although amp_dtype is None"),
        "a tensor result": (loop(total="total += loss.detach() * len(y)"), "is a tensor"),
    },
    "evaluate": {
        "no model.eval()": ("""
            total, correct, n = 0.0, 0, 0
            with torch.no_grad():
                for x, y in loader:
                    x, y = x.to(device), y.to(device)
                    logits = model(x)
                    total += F.cross_entropy(logits, y, reduction="sum").item()
                    correct += (logits.argmax(1) == y).sum().item()
                    n += len(y)
            return {"loss": total / n, "accuracy": correct / n}
        """, "changed batch norm's running statistics"),
        "gradients tracked": ("""
            model.eval()
            total, correct, n = 0.0, 0, 0
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                logits = model(x)
                total += F.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
                n += len(y)
            return {"loss": total / n, "accuracy": correct / n}
        """, "tracked gradients"),
        "mean of batch means": ("""
            model.eval()
            losses, correct, n = [], 0, 0
            with torch.no_grad():
                for x, y in loader:
                    x, y = x.to(device), y.to(device)
                    logits = model(x)
                    losses.append(F.cross_entropy(logits, y).item())
                    correct += (logits.argmax(1) == y).sum().item()
                    n += len(y)
            return {"loss": sum(losses) / len(losses), "accuracy": correct / n}
        """, "mean of the batch means"),
        "accuracy as a count": ("""
            model.eval()
            total, correct, n = 0.0, 0, 0
            with torch.no_grad():
                for x, y in loader:
                    x, y = x.to(device), y.to(device)
                    logits = model(x)
                    total += F.cross_entropy(logits, y, reduction="sum").item()
                    correct += (logits.argmax(1) == y).sum().item()
                    n += len(y)
            return {"loss": total / n, "accuracy": correct}
        """, "number of correct predictions"),
        "batches not moved": ("""
            model.eval()
            total, correct, n = 0.0, 0, 0
            with torch.no_grad():
                for x, y in loader:
                    logits = model(x)
                    total += F.cross_entropy(logits, y, reduction="sum").item()
                    correct += (logits.argmax(1) == y).sum().item()
                    n += len(y)
            return {"loss": total / n, "accuracy": correct / n}
        """, "moved to the training device"),
    },
    "build_cnn": {
        "a Linear sized for 28×28": ("""
            return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(8 * 14 * 14, num_classes))
        """, "mat1 and mat2", "shapes"),
        "too many parameters": ("""
            return nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(14),
                                 nn.Flatten(), nn.Linear(16 * 14 * 14, 1024), nn.ReLU(), nn.Linear(1024, num_classes))
        """, "the limit is 2,000,000", "shapes"),
        "softmax at the end": ("""
            return nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                 nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, num_classes), nn.Softmax(dim=1))
        """, "returns raw logits", "overfit"),
    },
    "set_seed": {
        "torch only": ("torch.manual_seed(seed)", "NumPy's global generator"),
        "a new NumPy generator": ("""
            random.seed(seed)
            np.random.default_rng(seed)
            torch.manual_seed(seed)
        """, "NumPy's global generator"),
        "the seed changed": ("""
            for f in (random.seed, np.random.seed, torch.manual_seed):
                f(seed + 1)
        """, "with the seed itself"),
        "the course's helper instead of your own": ("""
            from exercises.kit.devices import seed_everything
            seed_everything(seed)
        """, "called exercises.kit.devices.seed_everything, which this exercise must not use"),
    },
}


def _properties(exercise: str, only: str | None = None) -> list:
    if exercise == "build_cnn" and only == "shapes":
        return [cnn_shapes([(1, 10, 28), (3, 10, 32)])]
    if exercise == "build_cnn" and only == "overfit":
        return [cnn_overfits_one_batch()]
    return CHECKS[exercise]()


@pytest.fixture
def install(tmp_path: Path, monkeypatch):
    """Make ``exercises.train`` a file the test writes; return a runner for programs against it."""
    yield module_installer("train", tmp_path, monkeypatch)
    forget_module("train")


def _failures(props: list, run) -> list[str]:
    return [f"{prop.title}: {message}" for prop in props for passed, message in [evaluate(prop, run)] if not passed]


def test_reference_passes_every_property(install) -> None:
    run = install(REFERENCE)
    for exercise in CHECKS:
        assert _failures(CHECKS[exercise](), run) == [], exercise


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in CORRECT.items() for n in variants])
def test_correct_implementations_pass(exercise: str, name: str, install) -> None:
    run = install(with_body(exercise, CORRECT[exercise][name]))
    assert _failures(CHECKS[exercise](), run) == [], f"{exercise}: {name}"


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in MISTAKES.items() for n in variants])
def test_each_mistake_fails_with_its_diagnosis(exercise: str, name: str, install) -> None:
    body, words, *only = MISTAKES[exercise][name]
    failures = _failures(_properties(exercise, *only), install(with_body(exercise, body)))
    assert failures, f"{exercise}: '{name}' passed every property"
    assert any(words in f for f in failures), f"{exercise}: '{name}': {failures}"


def test_stubs_fail_every_property_as_not_implemented(install) -> None:
    run = install(STUB)
    for exercise, factory in CHECKS.items():
        for prop in factory():
            passed, message = evaluate(prop, run)
            assert not passed and "not implemented yet" in message, (exercise, prop.title, message)


def test_a_batch_on_the_loader_device_behaves_like_one_on_another_gpu() -> None:
    """Metadata and .to(device) work; any computation mixing it with the model's tensors raises."""
    x = torch.randn(4, 3).as_subclass(OnLoaderDevice)
    y = torch.tensor([0, 1, 2, 1]).as_subclass(OnLoaderDevice)
    assert len(y) == 4 and x.shape[0] == 4 and y.size(0) == 4 and x.device != torch.device("cpu")
    assert type(x.to("cpu")) is torch.Tensor and type(x.to(torch.device("cpu"), non_blocking=True)) is torch.Tensor
    assert type(x.float()) is OnLoaderDevice  # stays on its device, as it would on a GPU
    layer = torch.nn.Linear(3, 3)
    with pytest.raises(RuntimeError, match="the images x"):
        layer(x)
    with pytest.raises(RuntimeError, match="the labels y"):
        torch.nn.functional.cross_entropy(layer(x.to("cpu")), y)
    assert torch.isfinite(torch.nn.functional.cross_entropy(layer(x.to("cpu")), y.to("cpu")))
