"""Folders written whole: staged beside their target, swapped in, locked against a second writer.

A run folder or an export is written into a hidden staging folder next to
its target and only then moved into place, so a reader (or a kill) sees the
old folder or the new one, never a mix; a retrained run leaves none of the
previous run's files behind. Staging folders carry their writer's process
id, so the ones a killed process left are recognised and removed. A lock
file beside the target keeps two processes from writing it at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from mmtask.errors import MmtaskError

FOLDER_MODE = 0o755
"""Staged folders are readable by others (a server often runs as another user)."""


def staging_folder(target: str | Path) -> Path:
    """A new, empty hidden folder beside `target`, to write its next version into."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    staging.chmod(FOLDER_MODE)
    return staging


def replace_folder(staging: Path, target: str | Path) -> None:
    """Move `staging` to `target`, replacing what was there; removes the old version."""
    target = Path(target)
    if not target.exists():
        os.rename(staging, target)
        return
    retired = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def clean_stale(target: str | Path) -> list[Path]:
    """Remove what writers of `target` that no longer run left beside it.

    That is staging folders, retired old versions and lock drafts; a writer
    killed between its two renames leaves no `target` but its retired old
    version, which is moved back rather than removed.
    """
    target = Path(target)

    def left(kind: str) -> list[Path]:
        found = target.parent.glob(f".{target.name}.{kind}-*")
        return [path for path in found if not _alive(_writer(path.name))]

    retired = left("old")
    if not target.exists() and retired:
        os.rename(retired.pop(), target)
    removed = [*retired, *left("partial"), *left("lock")]
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def folder_lock(target: str | Path) -> Iterator[Path]:
    """Hold `.NAME.lock` beside `target` while writing it; a second writer gets a MmtaskError.

    The lock file appears with its holder's process id already in it (written
    aside, then hard-linked into place), so a lock is never seen empty; one
    left by a process that no longer runs is taken over.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.parent / f".{target.name}.lock"
    mine = target.parent / f".{target.name}.lock-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mine.write_text(str(os.getpid()))
    try:
        for _ in range(2):
            try:
                os.link(mine, lock)
                break
            except FileExistsError:
                holder = _lock_holder(lock)
                if _alive(holder):
                    raise MmtaskError(
                        f"{target} is being written by another mmtask process (pid {holder}); "
                        f"wait for it to finish, or remove {lock} if that process is gone."
                    ) from None
                lock.unlink(missing_ok=True)
        else:
            raise MmtaskError(f"Could not take the lock {lock}: another process keeps taking it.")
    finally:
        mine.unlink(missing_ok=True)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _writer(name: str) -> int | None:
    try:
        return int(name.rsplit("-", 2)[-2])
    except (IndexError, ValueError):
        return None


def _lock_holder(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
