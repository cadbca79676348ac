"""One entry point that reads posts from whatever a user points at.

A folder with `labelResultAll.txt` is the MVSA layout; a `.csv` or `.jsonl`
file is a manifest; a folder of `ID.txt` + image pairs without labels is read
for prediction only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from mmtask.data.image_check import check_image_files, image_problem_message
from mmtask.data.image_header import MAX_IMAGE_PIXELS
from mmtask.data.manifest import CSV_SUFFIXES, JSONL_SUFFIXES, read_manifest
from mmtask.data.mvsa import LABEL_FILE, read_mvsa
from mmtask.data.posts import ErrorPolicy, Posts, ReadReport, check_allow_missing
from mmtask.data.text_io import read_text_file
from mmtask.errors import DataError, MmtaskError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


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
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
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
        max_image_pixels: int | None. Largest image (width x height) read
            (see `read_mvsa`); None for no limit.
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
            max_image_pixels=max_image_pixels,
        )
    if (path / LABEL_FILE).is_file() or labelled:
        return read_mvsa(
            path,
            split=split,
            on_error=on_error,
            allow_missing=allow_missing,
            max_image_pixels=max_image_pixels,
        )
    return read_folder(
        path, on_error=on_error, allow_missing=allow_missing, max_image_pixels=max_image_pixels
    )


def read_folder(
    root: str | Path,
    on_error: str = "raise",
    allow_missing: Sequence[str] = (),
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
) -> Posts:
    """Read unlabelled posts: every `ID.txt` with an image `ID.<ext>` beside it.

    Looks in `root/data` when it exists (the MVSA layout), else in `root`.
    A text without an image, a bad image, or an empty text (unless
    `allow_missing` holds "text") is an error or (with `on_error="skip"`) a
    skipped post; images are checked as `read_mvsa` checks them.
    """
    root = Path(root)
    folder = root / "data" if (root / "data").is_dir() else root
    report = ReadReport(source=str(root))
    policy = ErrorPolicy(on_error, report)
    allowed = check_allow_missing(allow_missing)
    pairs = []
    for text_path in sorted(folder.glob("*.txt"), key=_natural_key):
        post_id = text_path.stem
        image_path = next(
            (p for p in (folder / f"{post_id}{s}" for s in IMAGE_SUFFIXES) if p.is_file()), None
        )
        if image_path is None:
            policy.fail("missing_file", post_id, "no image file beside this text", text_path, None)
            continue
        pairs.append((post_id, text_path, image_path))
    ids, texts, images = [], [], []
    problems = check_image_files([image for *_, image in pairs], max_image_pixels)
    for (post_id, text_path, image_path), problem in zip(pairs, problems, strict=True):
        if problem is not None:
            message = image_problem_message(problem, image_path, max_image_pixels)
            policy.fail(
                problem,
                post_id,
                f"image of post {post_id} is unusable, {message}",
                image_path,
                None,
            )
            continue
        text = read_text_file(text_path)
        if not text and "text" not in allowed:
            policy.fail("empty_text", post_id, "the text file is empty", text_path, None)
            continue
        if not text:
            report.add_missing("text", post_id)
        ids.append(post_id)
        texts.append(text)
        images.append(str(image_path))
    if not ids and not report.num_skipped:
        raise DataError(
            "no posts found (expected ID.txt files with images beside them)", str(folder)
        )
    report.image_pixel_limit = math.inf if max_image_pixels is None else max_image_pixels
    report.read = len(ids)
    return Posts(ids, texts, images, {}, {}, report)


def _natural_key(path: Path):
    stem = path.stem
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)
