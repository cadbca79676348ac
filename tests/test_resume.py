"""`mmtask train --resume`: a run killed at an epoch and resumed ends as if never stopped."""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmtask.cli import main
from mmtask.data import make_dataset, read_mvsa, write_synthetic_mvsa
from mmtask.errors import MmtaskError
from mmtask.run_backup import PROGRESS_FILE, RunBackup
from mmtask.run_folder import backup_folder
from mmtask.spec import RunSpec
from mmtask.training import load_model, train

EPOCHS = 4
# DWA keeps the last epoch's losses, dropout and modality dropout draw from
# seed generators, augmentation and shuffling follow the epoch, and the epoch
# kept (the first with the best accuracy, here before the kill) must be
# remembered: all must resume.
SPEC = f"""
model:
  image_size: 16
  text_encoder:
    name: transformer
    options: {{max_tokens: 200, sequence_length: 8, embed_dim: 8, intermediate_dim: 8,
               dropout: 0.3}}
  image_encoder:
    name: small_cnn
    options: {{filters: [4, 8], output_dim: 8, dropout: 0.3}}
  fusion:
    name: concat
    options: {{units: [8], dropout: 0.3}}
  weighting: {{name: dwa}}
  modality_dropout: 0.2
training:
  epochs: {EPOCHS}
  batch_size: 16
  augment: true
  monitor: val_post_sentiment_accuracy
"""

# Runs `mmtask train` and kills itself (SIGKILL, nothing cleaned up) right
# after the backup of epoch KILL_AFTER (counted from 0) is written.
KILLED_TRAIN = """
import os, signal, sys
from mmtask import run_backup
from mmtask.cli import main

kill_after = int(sys.argv[1])
back_up = run_backup.RunBackup.on_epoch_end

def on_epoch_end(self, epoch, logs=None):
    back_up(self, epoch, logs)
    if epoch == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

run_backup.RunBackup.on_epoch_end = on_epoch_end
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = write_synthetic_mvsa(root / "data", num_posts=48, seed=3, image_size=16)
    (root / "spec.yaml").write_text(SPEC)
    return root, data


def train_args(root: Path, data: Path, out: Path) -> list[str]:
    return [
        "train",
        "--data",
        str(data),
        "--spec",
        str(root / "spec.yaml"),
        "--train-split",
        "train",
        "--val-split",
        "val",
        "--no-feature-cache",
        "--verbose",
        "0",
        "--out",
        str(out),
    ]


def test_a_killed_run_resumes_to_the_weights_and_history_of_one_never_stopped(workspace):
    root, data = workspace
    kill_after = random.Random(15).randrange(EPOCHS - 1)  # A kill with an epoch still to go.
    whole, resumed = root / "whole", root / "resumed"
    assert main(train_args(root, data, whole)) == 0

    args = [*train_args(root, data, resumed), "--resume"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_TRAIN, str(kill_after), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    backup = backup_folder(resumed)
    progress = json.loads((backup / PROGRESS_FILE).read_text())
    assert progress["epochs_done"] == kill_after + 1 and not resumed.exists()

    assert main(args) == 0
    assert not backup.exists()  # Removed once the run is saved.
    expected = load_model(whole).get_weights()
    got = load_model(resumed).get_weights()
    assert len(got) == len(expected)
    for index, (a, b) in enumerate(zip(expected, got, strict=True)):
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0, err_msg=f"weight {index}")
    history = json.loads((resumed / "history.json").read_text())
    whole_history = json.loads((whole / "history.json").read_text())
    assert len(history["loss"]) == EPOCHS
    assert history.keys() == whole_history.keys()
    for key, values in whole_history.items():
        np.testing.assert_allclose(history[key], values, atol=1e-6, rtol=0, err_msg=key)
    selection = json.loads((resumed / "selection.json").read_text())
    assert selection == json.loads((whole / "selection.json").read_text())
    # Kept to an epoch before the kill, so the backup's best epoch is what selects it.
    assert selection["best_epoch"] <= kill_after, selection


@pytest.mark.parametrize("cache", [False, True])
def test_epochs_of_a_dataset_depend_on_the_epoch_not_on_the_epochs_before(workspace, cache):
    root, data = workspace
    posts = read_mvsa(data, split="train")

    def batches(epochs):
        dataset = make_dataset(
            posts, image_size=8, batch_size=64, training=True, seed=4, epochs=epochs, cache=cache
        )
        return [(b[0]["text"].numpy().tolist(), b[0]["image"].numpy()) for b in dataset]

    whole, tail = batches(range(0, 3)), batches(range(2, 3))
    assert [t for t, _ in whole[2:]] == [t for t, _ in tail]
    np.testing.assert_array_equal(whole[2][1], tail[0][1])  # Same augmentation.
    assert whole[0][0] != whole[1][0]  # Each epoch has its own order.


def test_a_left_backup_needs_resume(workspace, capsys):
    root, data = workspace
    out = root / "interrupted"
    backup_folder(out).mkdir()
    assert main(train_args(root, data, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0] and str(backup_folder(out)) in err[0]


def test_a_backup_of_another_run_is_refused(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    progress = {"run": {"spec": {"seed": 1}}, "epochs_done": 1, "finished": False}
    (folder / PROGRESS_FILE).write_text(json.dumps(progress))
    assert RunBackup(folder, {"spec": {"seed": 1}}).first_epoch == 1
    with pytest.raises(MmtaskError, match="another run"):
        RunBackup(folder, {"spec": {"seed": 2}})


def test_a_finished_backup_gives_the_finished_run_again(workspace, tmp_path):
    # A kill after the last epoch's backup but before the run folder is saved.
    root, data = workspace
    spec = RunSpec.from_dict(yaml.safe_load(SPEC))
    spec.training.epochs = 2
    spec.training.cache_frozen_encoders = False
    posts = read_mvsa(data, split="train"), read_mvsa(data, split="val")
    backup = tmp_path / "backup"
    first = train(spec, *posts, verbose=0, backup_dir=backup)
    again = train(spec, *posts, verbose=0, backup_dir=backup)
    assert again.history == first.history and len(again.history["loss"]) == 2
    assert again.selection == first.selection
    for a, b in zip(first.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)
