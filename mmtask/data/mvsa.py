"""Read the MVSA data sets (MVSA-Single, MVSA-Multiple layout) into `Posts`.

MVSA gives each post a sentiment label for its text and one for its image.
The reader keeps both as tasks and adds the usual merged post label, so one
model can learn all three; posts whose text and image disagree (positive
against negative) keep their text and image labels and have no post label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmtask.data.image_check import check_image_files, image_problem_message
from mmtask.data.image_header import MAX_IMAGE_PIXELS
from mmtask.data.posts import (
    SENTIMENT_LABELS,
    ErrorPolicy,
    Posts,
    ReadReport,
    check_allow_missing,
)
from mmtask.data.text_io import decode_bytes, read_text_file
from mmtask.errors import DataError, MmtaskError

LABEL_FILE = "labelResultAll.txt"
TASKS = ("text_sentiment", "image_sentiment", "post_sentiment")


def merge_post_label(text_label: str, image_label: str) -> str | None:
    """The post label of MVSA from its text and image labels.

    Equal labels give that label; when one is neutral the other wins; positive
    against negative gives None (no post label).

    Args:
        text_label: str. One of SENTIMENT_LABELS.
        image_label: str. One of SENTIMENT_LABELS.

    Example:
        >>> merge_post_label("neutral", "positive")
        'positive'
    """
    for name, value in (("text_label", text_label), ("image_label", image_label)):
        if value not in SENTIMENT_LABELS:
            raise MmtaskError(
                f"Invalid value for `{name}`: expected one of {list(SENTIMENT_LABELS)}. "
                f"Received: {name}={value!r}"
            )
    if text_label == image_label or image_label == "neutral":
        return text_label
    if text_label == "neutral":
        return image_label
    return None


def read_mvsa(
    root: str | Path,
    split: str | Path | None = None,
    on_error: str = "raise",
    verbose: bool = False,
    allow_missing: Sequence[str] = (),
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
) -> Posts:
    """Read an MVSA folder into `Posts` with three sentiment tasks.

    The folder holds `labelResultAll.txt` (tab separated: `ID`, then
    `text_label,image_label`), `data/ID.txt`, `data/ID.jpg` and optionally
    `splits/NAME.txt` (one id a line). Tasks are `text_sentiment`,
    `image_sentiment` and `post_sentiment` (see `merge_post_label`), with
    classes SENTIMENT_LABELS.

    Args:
        root: str | Path. The MVSA folder.
        split: str | Path | None. None for every post of the label file, a
            split name ("train" reads `root/splits/train.txt`) or the path of
            a file of ids. Posts come in the order of the split file.
        on_error: str. "raise" raises a DataError naming the file and line of
            the first bad post (malformed row, unknown label, duplicate id,
            missing text or image, broken image, split id not in the label
            file, a header other than `ID<TAB>text,image`); "skip" leaves bad
            posts out and records them in `posts.report.skipped` (a bad
            header is always an error).
        verbose: bool. Show a progress bar while the files are checked.
        allow_missing: sequence of "text" / "image". Keep posts whose text
            (file absent or empty) or image file is missing, with an empty
            text or image path (the model then predicts from the other
            modality); they are listed in `posts.report.missing`. Broken
            files are still errors, and a post needs one of the two.
        max_image_pixels: int | None. Images whose header gives more pixels
            (width x height) are bad posts, found before decoding; None for
            no limit. Every image is also decoded once (see
            `mmtask.data.image_check`), so a corrupt one is a bad post here
            rather than an error in training.

    Returns:
        The posts; `posts.report.summary()` says what was read and skipped.

    Example:
        >>> posts = read_mvsa("../shared/data/mvsa_single", split="train")
        >>> print(posts.report.summary())
    """
    root = Path(root).expanduser().resolve()
    report = ReadReport(source=str(root))
    policy = ErrorPolicy(on_error, report)
    allowed = check_allow_missing(allow_missing)
    label_file = root / LABEL_FILE
    if not root.is_dir():
        raise DataError("MVSA folder not found.", str(root))
    if not label_file.is_file():
        raise DataError(
            f"MVSA label file not found: expected {LABEL_FILE} in the MVSA folder.", str(label_file)
        )

    rows, seen = _read_label_file(label_file, policy)
    ids = list(rows) if split is None else _read_split(_split_file(root, split), rows, seen, policy)

    progress = _progress_bar(len(ids)) if verbose else None

    def show(done: int) -> None:
        if progress is not None and (done % 250 == 0 or done == len(ids)):
            progress.update(done)

    image_files = [root / "data" / f"{post_id}.jpg" for post_id in ids]
    image_problems = check_image_files(image_files, max_image_pixels, on_progress=show)
    kept, texts, image_paths, text_labels, image_labels = [], [], [], [], []
    for post_id, image_path, problem in zip(ids, image_files, image_problems, strict=True):
        line, text_label, image_label = rows[post_id]
        text_path = root / "data" / f"{post_id}.txt"
        text = read_text_file(text_path) if text_path.is_file() else None
        text_problem = None
        if not text:
            text_problem = "missing_text" if text is None else "empty_text"
        image_allowed_missing = problem == "missing_file" and "image" in allowed
        # A post keeps at least one of its two modalities.
        if text_problem and ("text" not in allowed or problem == "missing_file"):
            what = "not found" if text is None else "is empty"
            message = f"text file of post {post_id} {what}: {text_path}"
            policy.fail(text_problem, post_id, message, label_file, line)
            continue
        if problem is not None and not image_allowed_missing:
            message = f"image of post {post_id} is unusable, "
            message += image_problem_message(problem, image_path, max_image_pixels)
            policy.fail(problem, post_id, message, label_file, line)
            continue
        if image_allowed_missing:
            image_path = ""
            report.add_missing("image", post_id)
        if text_problem:
            report.add_missing("text", post_id)
        kept.append(post_id)
        texts.append(text or "")
        image_paths.append(str(image_path))
        text_labels.append(text_label)
        image_labels.append(image_label)

    report.image_pixel_limit = math.inf if max_image_pixels is None else max_image_pixels
    report.read = len(kept)
    post_labels = [merge_post_label(t, i) for t, i in zip(text_labels, image_labels, strict=True)]
    return Posts(
        ids=kept,
        texts=texts,
        image_paths=image_paths,
        labels={
            task: _label_indices(values)
            for task, values in zip(TASKS, (text_labels, image_labels, post_labels), strict=True)
        },
        label_names={task: list(SENTIMENT_LABELS) for task in TASKS},
        report=report,
    )


def _read_label_file(
    path: Path, policy: ErrorPolicy
) -> tuple[dict[str, tuple[int, str, str]], set[str]]:
    """Id to (line, text label, image label) of the good rows, and every id seen."""
    rows: dict[str, tuple[int, str, str]] = {}
    first_line: dict[str, int] = {}
    lines = decode_bytes(path.read_bytes()).splitlines()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if line_number == 1 and fields[0].lower() == "id":
            _check_header(fields, line, path)
            continue
        labels = fields[1].split(",") if len(fields) == 2 else []
        post_id = fields[0]
        if len(labels) != 2 or not post_id or any(c in post_id for c in "/\\"):
            policy.fail(
                "malformed_row",
                f"{path.name}:{line_number}",
                f"malformed row: expected 'ID<TAB>text_label,image_label'. Received: {line!r}",
                path,
                line_number,
            )
            continue
        if post_id in first_line:
            policy.fail(
                "duplicate_id",
                post_id,
                f"duplicate id {post_id!r}, first seen on line {first_line[post_id]}",
                path,
                line_number,
            )
            continue
        first_line[post_id] = line_number
        text_label, image_label = (label.strip().lower() for label in labels)
        unknown = [label for label in (text_label, image_label) if label not in SENTIMENT_LABELS]
        if unknown:
            policy.fail(
                "unknown_label",
                post_id,
                f"unknown label {unknown[0]!r} for post {post_id}: expected one of "
                f"{list(SENTIMENT_LABELS)}",
                path,
                line_number,
            )
            continue
        rows[post_id] = (line_number, text_label, image_label)
    return rows, set(first_line)


def _check_header(fields: list[str], line: str, path: Path) -> None:
    """A header names the label columns: read in another order, every label would be wrong."""
    columns = fields[1].replace(" ", "").lower() if len(fields) == 2 else ""
    if columns != "text,image":
        raise DataError(
            f"header must be 'ID<TAB>text,image' (the text label first). Received: {line!r}",
            str(path),
            1,
        )


def _split_file(root: Path, split: str | Path) -> Path:
    """The id file of a split given by name ("train") or by path."""
    is_name = isinstance(split, str) and not any(c in split for c in "/\\.")
    path = root / "splits" / f"{split}.txt" if is_name else Path(split).expanduser()
    if not path.is_file():
        found = sorted(p.stem for p in (root / "splits").glob("*.txt"))
        raise DataError(f"split file not found; splits found in {root / 'splits'}: {found}", path)
    return path


def _read_split(
    path: Path, rows: dict[str, tuple[int, str, str]], seen: set[str], policy: ErrorPolicy
) -> list[str]:
    """The ids of a split file that have a good row in the label file, in file order."""
    ids: dict[str, int] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        post_id = line.strip()
        if not post_id:
            continue
        if post_id not in seen:
            policy.fail(
                "not_in_label_file",
                post_id,
                f"id {post_id!r} of the split is not in {LABEL_FILE}",
                path,
                line_number,
            )
        elif post_id in ids:
            policy.fail(
                "duplicate_id",
                post_id,
                f"duplicate id {post_id!r}, first seen on line {ids[post_id]}",
                path,
                line_number,
            )
        elif post_id in rows:  # ids whose row was skipped are already in the report
            ids[post_id] = line_number
    return list(ids)


def _label_indices(labels: list[str | None]) -> np.ndarray:
    index = {name: i for i, name in enumerate(SENTIMENT_LABELS)}
    return np.asarray([index.get(label, -1) for label in labels], dtype=np.int32)


def _progress_bar(total: int):
    import keras  # imported here: reading data does not otherwise need Keras

    return keras.utils.Progbar(total, unit_name="post")
