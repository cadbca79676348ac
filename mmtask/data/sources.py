"""One entry point that reads posts from whatever a user points at.

A folder with `labelResultAll.txt` is the MVSA layout; a `.csv` or `.jsonl`
file is a manifest; a folder of `ID.txt` + image pairs without labels is read
for prediction only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mmtask.data.image_check import check_image_file
from mmtask.data.manifest import CSV_SUFFIXES, JSONL_SUFFIXES, read_manifest
from mmtask.data.mvsa import LABEL_FILE, read_mvsa
from mmtask.data.posts import ErrorPolicy, Posts, ReadReport
from mmtask.data.text_io import read_text_file
from mmtask.errors import DataError, MmtaskError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def read_posts(
    path: str | Path,
    *,
    split: str | Path | None = None,
    on_error: str = "raise",
    text_column: str | None = None,
    text_path_column: str | None = None,
    image_column: str = "image",
    label_columns: Sequence[str] = (),
    id_column: str | None = None,
    label_names: Mapping[str, Sequence[str]] | None = None,
    labelled: bool = True,
    allow_missing: Sequence[str] = (),
    label_types: Mapping[str, str] | None = None,
) -> Posts:
    """Read posts from an MVSA folder, a manifest, or (unlabelled) a folder of pairs.

    Args:
        path: str | Path. The folder or manifest file.
        split: MVSA split name or id file; not valid for manifests.
        on_error: "raise" or "skip" (see `read_mvsa`).
        text_column, text_path_column, image_column, label_columns, id_column,
            label_names, label_types: manifest options (see `read_manifest`).
        labelled: bool. If False, a folder without a label file is accepted and
            read as unlabelled posts.
        allow_missing: sequence of "text" / "image": keep posts missing one of
            them (see `read_mvsa`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", str(path))
    if path.is_file():
        if path.suffix.lower() not in CSV_SUFFIXES + JSONL_SUFFIXES:
            raise DataError(
                f"expected an MVSA folder or a manifest ending in "
                f"{list(CSV_SUFFIXES + JSONL_SUFFIXES)}",
                str(path),
            )
        if split is not None:
            raise MmtaskError(f"`split` applies to MVSA folders, not manifests. Received: {split}")
        return read_manifest(
            path,
            image_column=image_column,
            label_columns=list(label_columns),
            text_column=text_column,
            text_path_column=text_path_column,
            id_column=id_column,
            # e.g. a trained model's label names: only those of the columns read apply
            label_names={c: label_names[c] for c in label_columns if c in (label_names or {})},
            on_error=on_error,
            allow_missing=allow_missing,
            label_types={c: t for c, t in (label_types or {}).items() if c in label_columns},
        )
    if (path / LABEL_FILE).is_file() or labelled:
        return read_mvsa(path, split=split, on_error=on_error, allow_missing=allow_missing)
    return read_folder(path, on_error=on_error)


def read_folder(root: str | Path, on_error: str = "raise") -> Posts:
    """Read unlabelled posts: every `ID.txt` with an image `ID.<ext>` beside it.

    Looks in `root/data` when it exists (the MVSA layout), else in `root`.
    A text without an image, or a bad image, is an error or (with
    `on_error="skip"`) a skipped post.
    """
    root = Path(root)
    folder = root / "data" if (root / "data").is_dir() else root
    report = ReadReport(source=str(root))
    policy = ErrorPolicy(on_error, report)
    ids, texts, images = [], [], []
    for text_path in sorted(folder.glob("*.txt"), key=_natural_key):
        post_id = text_path.stem
        image_path = next(
            (p for p in (folder / f"{post_id}{s}" for s in IMAGE_SUFFIXES) if p.is_file()), None
        )
        if image_path is None:
            policy.fail("missing_file", post_id, "no image file beside this text", text_path, None)
            continue
        problem = check_image_file(image_path)
        if problem is not None:
            policy.fail(problem, post_id, problem.replace("_", " "), image_path, None)
            continue
        ids.append(post_id)
        texts.append(read_text_file(text_path))
        images.append(str(image_path))
    if not ids and not report.num_skipped:
        raise DataError(
            "no posts found (expected ID.txt files with images beside them)", str(folder)
        )
    report.read = len(ids)
    return Posts(ids, texts, images, {}, {}, report)


def _natural_key(path: Path):
    stem = path.stem
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)
