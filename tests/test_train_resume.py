"""Done-when of chapter 4: a run killed after epoch k resumes from its checkpoint and ends with exactly
the weights of a run never interrupted (CPU, same seed), and the helpers the notebook trains with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from exercises.kit.checkpoints import load_checkpoint, save_checkpoint
from exercises.kit.training import StepSchedule, TensorLoader, random_shift_flip
from grading import PROJECT_ROOT

# A whole training run as the notebook does it: the reference exercises, data on the "device" with
# augmentation there, dropout (torch's random state), AdamW, the warmup-cosine schedule, a GradScaler,
# a checkpoint every epoch. KILL_AFTER=k makes the process kill itself (SIGKILL, no clean-up) right
# after epoch k's checkpoint is written, as a Colab disconnect would.
SCRIPT = """
import os, signal, sys
import torch
from torch import nn
torch.set_num_threads(1)
from solutions.optim import AdamW, warmup_cosine_lr
from solutions.train import evaluate, set_seed, train_one_epoch
from exercises.kit.training import StepSchedule, TensorLoader, embedded_split, fit, random_shift_flip

checkpoint, out, epochs = sys.argv[1], sys.argv[2], 3
kill_after = int(os.environ.get("KILL_AFTER", "0"))
set_seed(0)
xtr, ytr, xva, yva = embedded_split(val_size=1000, seed=3)
train = TensorLoader(xtr[:384], ytr[:384], 64, shuffle=True, generator=torch.Generator().manual_seed(1),
                     augment=random_shift_flip, mean=(0.13,), std=(0.31,))
val = TensorLoader(xva[:128], yva[:128], 64, mean=(0.13,), std=(0.31,))
model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2),
                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                      nn.Linear(16, 10))
optimizer = AdamW(model.parameters(), lr=0.0)
total = epochs * len(train)
schedule = StepSchedule(optimizer, lambda k: warmup_cosine_lr(k, total, 5e-3, 3))
scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=2)

def maybe_die(epoch, history):
    if epoch == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

history = fit(model, train, val, optimizer, epochs=epochs, device="cpu", train_one_epoch=train_one_epoch,
              evaluate=evaluate, scaler=scaler, schedule=schedule, checkpoint=checkpoint, progress=False,
              on_epoch_end=maybe_die)
torch.save({"model": model.state_dict(), "history": history, "steps": schedule.steps_done,
            "scale": scaler.get_scale()}, out)
"""


def _run(tmp_path: Path, name: str, kill_after: int = 0) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KILL_AFTER": str(kill_after), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script), str(tmp_path / f"{name}.pt"),
                           str(tmp_path / f"{name}-final.pt")],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("straight")
    straight = _run(folder, "straight")
    assert straight.returncode == 0, straight.stderr
    return torch.load(folder / "straight-final.pt", weights_only=True)


@pytest.mark.parametrize("kill_after", [1, 2])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path, kill_after: int, uninterrupted: dict) -> None:
    killed = _run(tmp_path, "resumed", kill_after=kill_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "resumed-final.pt").exists()
    saved = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert saved["epoch"] == kill_after
    resumed = _run(tmp_path, "resumed")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {tmp_path / 'resumed.pt'}: {kill_after} of 3 epochs already done" in resumed.stdout
    a = uninterrupted
    b = torch.load(tmp_path / "resumed-final.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["steps"] == b["steps"] == 3 * 6 and a["scale"] == b["scale"]
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in b["history"]]


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = save_checkpoint(tmp_path / "c.pt", model, epoch=1, optimizer=optimizer)
    real_save = torch.save

    def dies_half_way(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(Path(f).read_bytes()[:50])  # a truncated file, then the "disconnect"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, epoch=2, optimizer=optimizer)
    monkeypatch.undo()
    assert load_checkpoint(path, model, optimizer=optimizer).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_tensor_loader_batches_normalizes_and_shuffles_reproducibly() -> None:
    images = torch.arange(10 * 4, dtype=torch.uint8).reshape(10, 1, 2, 2)
    labels = torch.arange(10)
    plain = TensorLoader(images, labels, 4, mean=(0.5,), std=(0.25,))
    assert len(plain) == 3 and [len(y) for _, y in plain] == [4, 4, 2]
    x, y = next(iter(plain))
    assert torch.allclose(x, (images[:4].float() / 255 - 0.5) / 0.25) and torch.equal(y, labels[:4])
    a = TensorLoader(images, labels, 3, shuffle=True, generator=torch.Generator().manual_seed(5))
    b = TensorLoader(images, labels, 3, shuffle=True, generator=torch.Generator().manual_seed(5))
    first = torch.cat([y for _, y in a])
    assert torch.equal(first, torch.cat([y for _, y in b])) and sorted(first.tolist()) == list(range(10))
    assert not torch.equal(first, torch.cat([y for _, y in a]))  # a new order every epoch
    assert len(TensorLoader(images, labels, 4, drop_last=True)) == 2
    assert next(iter(TensorLoader(images, labels, 4, channels_last=True)))[0].is_contiguous(
        memory_format=torch.channels_last)


def test_random_shift_flip_moves_whole_pixels_and_mirrors() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    out = random_shift_flip(x, g, max_shift=2, flip=True)
    assert out.shape == x.shape
    for i in range(64):  # each output is the input, maybe mirrored, shifted by whole pixels, zero-filled
        found = False
        for image in (x[i], x[i].flip(-1)):
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    shifted = torch.zeros_like(image)
                    ys, yd = (slice(0, 8 - dy), slice(dy, 8)) if dy >= 0 else (slice(-dy, 8), slice(0, 8 + dy))
                    xs, xd = (slice(0, 8 - dx), slice(dx, 8)) if dx >= 0 else (slice(-dx, 8), slice(0, 8 + dx))
                    shifted[:, yd, xd] = image[:, ys, xs]
                    found = found or torch.equal(out[i], shifted)
        assert found, i
    assert not torch.equal(out, x)
    assert torch.equal(random_shift_flip(x, torch.Generator().manual_seed(3), 0), x)


def test_step_schedule_sets_the_rate_before_each_step_and_counts_steps() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([p], lr=1.0)
    seen = []
    schedule = StepSchedule(optimizer, lambda k: 0.1 * (k + 1))
    optimizer.register_step_post_hook(lambda opt, a, k: seen.append(opt.param_groups[0]["lr"]))
    for _ in range(3):
        p.grad = torch.ones(1)
        optimizer.step()
    assert seen == pytest.approx([0.1, 0.2, 0.3]) and schedule.steps_done == 3
    assert p.item() == pytest.approx(-0.6)
