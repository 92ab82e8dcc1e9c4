"""The command line: headless training, checkpoints, one-line errors with exit code 2."""
import json
import os
import subprocess
import sys

import pytest
import torch

from visualizer.cli import main
from visualizer.engine.checkpoint import CheckpointError, load_checkpoint, read_checkpoint


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visualizer", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["train", "--steps", "-5"], "must be 0 or more"),
    (["train", "--model", "vgg"], "invalid choice"),
    (["train", "--batch-size", "0"], "must be at least 1"),
    (["train", "--lr", "nan"], "positive number"),
    (["train", "--steps", "1", "--model", "cnn", "--data", "spiral"], "image"),
    (["train", "--steps", "1", "-M", "depth=0", "--model", "mlp", "--data", "xor"], "depth"),
    (["train", "--steps", "1", "--data", "xor", "--model", "mlp", "--device", "tpu"], "device"),
    (["train", "--steps", "1", "--threads", "100000"], "must be between 1 and"),  # torch's pool crashed on it
])
def test_bad_arguments_get_one_line_and_exit_2(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr


def test_train_json_reports_metrics_and_saves_a_checkpoint(tmp_path, capsys):
    torch.set_num_threads(1)
    path = tmp_path / "run.safetensors"
    code = main(["train", "--model", "mlp", "--data", "spiral", "--steps", "150", "--lr", "0.01", "--json",
                 "--save", str(path)])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["step"] == 150 and 0 <= result["val_acc"] <= 1 and result["train_loss"] > 0
    model, desc = load_checkpoint(path)
    assert desc["model"]["arch"] == "mlp" and desc["data"]["name"] == "spiral"
    assert desc["metrics"]["val_acc"] == pytest.approx(result["val_acc"])
    assert (tmp_path / "run.json").exists()
    # the reloaded model reproduces the reported validation accuracy
    from visualizer.engine.data import make_dataset

    data = make_dataset("spiral", **desc["data"]["params"])
    with torch.no_grad():
        acc = (model(data.x_val).argmax(1) == data.y_val).float().mean()
    assert float(acc) == pytest.approx(result["val_acc"])


def test_unwritable_save_path_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # refused while parsing, before any training
        main(["train", "--model", "mlp", "--data", "xor", "--steps", "2",
              "--save", str(tmp_path / "missing" / "run.safetensors")])
    assert stop.value.code == 2
    assert "does not exist" in capsys.readouterr().err


def test_corrupt_checkpoint_is_refused_with_a_message(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "absent.safetensors")


def test_app_without_a_display_says_how_to_run():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "visualizer"], capture_output=True, text=True, env=env, timeout=120)
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection is for X11/Wayland systems")
    assert out.returncode == 2
    assert "no display" in out.stderr and "visualizer train" in out.stderr and "Traceback" not in out.stderr


def test_atomic_write_replaces_whole_files_with_normal_permissions(tmp_path, monkeypatch):
    from visualizer.files import atomic_write

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    atomic_write(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()

    def broken_replace(src, dst):  # an interruption between writing and renaming
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, b"half")
    assert target.read_bytes() == b"new contents"  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary file left behind


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
