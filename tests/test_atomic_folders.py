"""Run folders and exports are written whole, replaced whole, and locked against a second writer."""

import os
import stat
import subprocess
import sys

import pytest

import mmtask.training as training
from mmtask.atomic_folders import clean_stale, folder_lock, replace_folder, staging_folder
from mmtask.errors import MmtaskError


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_replacing_leaves_only_the_new_version(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "report.html").write_text("old run")
    staging = staging_folder(target)
    (staging / "model.keras").write_text("new run")
    replace_folder(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["model.keras"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_stale_staging_folders_of_dead_processes_are_cleaned(tmp_path):
    target = tmp_path / "export"
    target.mkdir()  # Its current version: retired old ones are only leftovers.
    stale = tmp_path / f".export.partial-{dead_pid()}-abcd1234"
    retired = tmp_path / f".export.old-{dead_pid()}-abcd1234"
    mine = tmp_path / f".export.partial-{os.getpid()}-abcd1234"
    for folder in (stale, retired, mine):
        folder.mkdir()
    assert sorted(clean_stale(target)) == sorted([stale, retired])
    assert mine.is_dir()


def test_a_second_writer_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    target = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".run.lock").write_text(str(holder.pid))
        with pytest.raises(MmtaskError, match=f"another mmtask process \\(pid {holder.pid}\\)"):
            with folder_lock(target):
                pass
    finally:
        holder.kill()
        holder.wait()
    (tmp_path / ".run.lock").write_text(str(dead_pid()))
    with folder_lock(target) as lock:
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def test_save_run_refuses_a_used_folder_and_a_failed_write_keeps_the_old_run(tmp_path, monkeypatch):
    target = tmp_path / "run"
    target.mkdir()
    (target / "model.keras").write_text("old run")
    with pytest.raises(MmtaskError, match="already holds files"):
        training.save_run(None, None, target)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_write_run", killed)
    with pytest.raises(KeyboardInterrupt):
        training.save_run(None, None, target, overwrite=True)
    assert (target / "model.keras").read_text() == "old run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_writer_killed_between_its_renames_leaves_the_old_run_restored(tmp_path):
    target = tmp_path / "run"
    retired = tmp_path / f".run.old-{dead_pid()}-abcd1234"
    finished = tmp_path / f".run.partial-{dead_pid()}-abcd1234"
    for folder, text in ((retired, "old run"), (finished, "new run")):
        folder.mkdir()
        (folder / "model.keras").write_text(text)
    clean_stale(target)
    assert (target / "model.keras").read_text() == "old run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_lock_file_never_appears_empty(tmp_path, monkeypatch):
    seen = []
    link = os.link

    def watching(source, destination):
        link(source, destination)
        seen.append(open(destination).read())

    monkeypatch.setattr(os, "link", watching)
    with folder_lock(tmp_path / "run"):
        pass
    assert seen == [str(os.getpid())]
    assert list(tmp_path.iterdir()) == []
