"""Read a data set described by a manifest file (CSV or JSON lines) into `Posts`.

A manifest is the simplest way to bring any text+image data set to mmtask:
one row per post with an image path, the text (or a text file path) and one
column per task. Empty cells are missing labels, so tasks labelled on
different posts can share one file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from mmtask.data.image_check import check_image_files, image_problem_message
from mmtask.data.image_header import MAX_IMAGE_PIXELS
from mmtask.data.posts import LABEL_FORMS, ErrorPolicy, Posts, ReadReport, check_allow_missing
from mmtask.data.text_io import decode_bytes, read_text_file
from mmtask.errors import DataError, MmtaskError

LIST_SEPARATOR = "|"
"""Joins the classes of a multi-label CSV cell: "sport|travel"."""
REGRESSION_SHARE = 0.9
"""Share of number cells from which a column with decimals is read as regression targets."""
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def read_manifest(
    path: str | Path,
    *,
    image_column: str | None,
    label_columns: Sequence[str],
    text_column: str | None = None,
    text_path_column: str | None = None,
    id_column: str | None = None,
    label_names: dict[str, Sequence[str]] | None = None,
    on_error: str = "raise",
    allow_missing: Sequence[str] = (),
    label_types: Mapping[str, str] | None = None,
    list_separator: str = LIST_SEPARATOR,
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
) -> Posts:
    """Read a CSV (`.csv`) or JSON lines (`.jsonl`, `.json`, `.ndjson`) manifest.

    Each label column becomes a task of the same name, of a label type
    (`posts.label_types`) inferred from its cells unless `label_types` sets
    it (see `infer_label_type`): a list (a JSON array, or names joined by
    `list_separator`) is a multi-label target, true/false or 0/1 a binary
    one, numbers with decimals a regression target, anything else a class
    name. Relative paths are resolved against the manifest's folder. An empty
    cell, JSON null or a key absent from a JSON record is a missing label.
    A cell that does not fit its column's type (text in a numeric column, a
    class not in `label_names`) makes its row bad, as `on_error` says.

    Args:
        path: str | Path. The manifest file.
        image_column: str | None. Column holding the image path; None reads a
            text-only manifest (image paths are then empty strings, for
            text-only work such as pre-training a text encoder).
        label_columns: Sequence[str]. Columns holding labels, one task each;
            empty for unlabelled posts (e.g. to predict).
        text_column: str | None. Column holding the text itself.
        text_path_column: str | None. Column holding the path of a text file;
            give exactly one of `text_column` and `text_path_column`.
        id_column: str | None. Column holding post ids; default: the 1-based
            row number as a string.
        label_names: dict[str, Sequence[str]] | None. Class names per label
            column (class i is names[i]); a label not in the list is an error.
            Columns not given here take their sorted distinct values (numbers
            sorted as numbers); a regression column's one output is named
            after the column.
        allow_missing: sequence of "text" / "image". Keep posts whose text
            (empty cell, absent or empty file) or image (empty cell or absent
            file) is missing, with an empty text or image path; they are
            listed in `posts.report.missing`. A post needs at least one of the
            two; broken images are still errors.
        on_error: str. "raise" raises a DataError naming the manifest line of
            the first bad row; "skip" leaves bad rows out and records them in
            `posts.report.skipped`.
        label_types: mapping of column -> "classification", "binary",
            "multilabel" or "regression"; columns left out are inferred.
        list_separator: str. Joins the classes of a multi-label cell in a CSV.
        max_image_pixels: int | None. Images whose header gives more pixels
            are bad rows (see `read_mvsa`); every image is also decoded once,
            so a corrupt one is a bad row.

    Returns:
        The posts.

    Example:
        >>> posts = read_manifest("posts.csv", image_column="image",
        ...                       text_column="text", label_columns=["sentiment"])
    """
    if (text_column is None) == (text_path_column is None):
        raise MmtaskError(
            "Give exactly one of `text_column` and `text_path_column`. Received: "
            f"text_column={text_column!r}, text_path_column={text_path_column!r}"
        )
    label_columns = list(label_columns)
    label_names = {column: [str(n) for n in names] for column, names in (label_names or {}).items()}
    if len(set(label_columns)) != len(label_columns):
        raise MmtaskError(f"`label_columns` must be distinct. Received: {label_columns}")
    if not set(label_names) <= set(label_columns):
        raise MmtaskError(
            f"`label_names` names columns that are not label columns: "
            f"{sorted(set(label_names) - set(label_columns))}; label_columns={label_columns}"
        )
    label_types = dict(label_types or {})
    unknown_types = {c: t for c, t in label_types.items() if t not in LABEL_FORMS}
    if unknown_types or not set(label_types) <= set(label_columns):
        raise MmtaskError(
            f"`label_types` must map label columns {label_columns} to types among "
            f"{list(LABEL_FORMS)}. Received: label_types={label_types}"
        )
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DataError("manifest file not found.", str(path))
    report = ReadReport(source=str(path))
    policy = ErrorPolicy(on_error, report)
    allowed = check_allow_missing(allow_missing)

    records, columns = _read_records(path)
    required = [text_column or text_path_column, *label_columns]
    required += [image_column] if image_column else []
    required += [id_column] if id_column else []
    for column in required:
        if column not in columns:
            raise DataError(f"column {column!r} not found; columns found: {columns}", str(path))

    for column in label_columns:
        if column not in label_types:
            cells = (_label_cell(r.get(column)) for _, r in records if isinstance(r, dict))
            label_types[column] = infer_label_type(list(cells), list_separator)
    folder = path.parent
    image_problems = _check_images(records, image_column, folder, max_image_pixels)
    ids, texts, image_paths = [], [], []
    raw_labels: dict[str, list] = {column: [] for column in label_columns}
    first_line: dict[str, int] = {}
    for row_number, (line, record) in enumerate(records, start=1):
        where = (path, line)
        if isinstance(record, str):
            policy.fail("malformed_row", f"{path.name}:{line}", f"malformed row: {record}", *where)
            continue
        cells = {column: _cell(record.get(column)) for column in required}
        cells.update({column: _label_cell(record.get(column)) for column in label_columns})
        post_id = cells[id_column] if id_column else str(row_number)
        if post_id is None:
            policy.fail("malformed_row", f"{path.name}:{line}", f"empty id ({id_column!r})", *where)
            continue
        if post_id in first_line:
            message = f"duplicate id {post_id!r}, first seen on line {first_line[post_id]}"
            policy.fail("duplicate_id", post_id, message, *where)
            continue
        first_line[post_id] = line
        values, problem = {}, None
        for column in label_columns:
            values[column], problem = _label_value(
                label_types[column], cells[column], label_names.get(column), list_separator
            )
            if problem is not None:
                reason, expected = problem
                message = (
                    f"{reason.replace('_', ' ')} {cells[column]!r} in column {column!r} of post "
                    f"{post_id}: expected {expected}"
                )
                policy.fail(reason, post_id, message, *where)
                break
        if problem is not None:
            continue
        if text_column:
            text = (cells[text_column] or "").replace("\r\n", "\n").replace("\r", "\n")
            text_file = None
        else:
            text_file = folder / cells[text_path_column] if cells[text_path_column] else None
            has_file = text_file is not None and text_file.is_file()
            text = read_text_file(text_file) if has_file else None
        image_path = folder / cells[image_column] if image_column and cells[image_column] else None
        problem = None
        if image_column:
            problem = image_problems[image_path] if image_path is not None else "missing_file"
        image_missing = image_column is None or problem == "missing_file"
        has_text = bool(text and text.strip())
        # A post keeps at least one of its two modalities.
        if not has_text and ("text" not in allowed or image_missing):
            reason = "missing_text" if text is None else "empty_text"
            message = f"text of post {post_id} " + ("not found" if text is None else "is empty")
            message += (
                f": {text_file}" if text_file else f" (column {text_column or text_path_column!r})"
            )
            policy.fail(reason, post_id, message, *where)
            continue
        if problem is not None and not (problem == "missing_file" and "image" in allowed):
            shown = image_path or f"(empty cell in column {image_column!r})"
            message = f"image of post {post_id} is unusable, "
            message += image_problem_message(problem, shown, max_image_pixels)
            policy.fail(problem, post_id, message, *where)
            continue
        if problem is not None:
            report.add_missing("image", post_id)
        if not has_text:
            report.add_missing("text", post_id)
        ids.append(post_id)
        texts.append(text or "")
        image_paths.append("" if image_missing else str(image_path))
        for column in label_columns:
            raw_labels[column].append(values[column])

    report.image_pixel_limit = math.inf if max_image_pixels is None else max_image_pixels
    report.read = len(ids)
    names, labels = {}, {}
    for column in label_columns:
        names[column], labels[column] = _label_array(
            column, label_types[column], raw_labels[column], label_names.get(column)
        )
    return Posts(ids, texts, image_paths, labels, names, report, label_types=label_types)


def _check_images(
    records: list[tuple[int, dict | str]],
    image_column: str | None,
    folder: Path,
    max_pixels: int | None,
) -> dict[Path, str | None]:
    """Image path to its problem (None: usable), for every image the records name.

    Checked before the rows are read, together, so the decodes run in parallel.
    """
    cells = (_cell(r.get(image_column)) for _, r in records if isinstance(r, dict))
    paths = list(dict.fromkeys(folder / c for c in cells if image_column and c))
    return dict(zip(paths, check_image_files(paths, max_pixels), strict=True))


def infer_label_type(cells: Sequence[object], list_separator: str = LIST_SEPARATOR) -> str:
    """The label type of a column from its cells (None where empty).

    - "multilabel": some cell is a list (a JSON array, or text holding
      `list_separator` or written as a JSON array);
    - "binary": every cell is true/false, or every cell 0/1;
    - "regression": at least 90% of the cells are numbers, some with decimals
      (the rest are then bad cells);
    - "classification": anything else, integer class ids included.
    """
    present = [cell for cell in cells if cell is not None]
    if any(_is_list(cell, list_separator) for cell in present):
        return "multilabel"
    lowered = {cell.lower() for cell in present}
    if present and (lowered <= {"true", "false"} or lowered <= {"0", "1"}):
        return "binary"
    numbers = [cell for cell in present if _number(cell) is not None]
    decimals = any(not re.fullmatch(r"[-+]?\d+", cell) for cell in numbers)
    if present and len(numbers) >= REGRESSION_SHARE * len(present) and decimals:
        return "regression"
    return "classification"


def _label_cell(value: object) -> str | list[str] | None:
    """A label cell: None where empty, a list of stripped names for a JSON array, else a str."""
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, bool):
        return "true" if value else "false"
    return _cell(value)


def _is_list(cell: str | list[str], separator: str) -> bool:
    if isinstance(cell, list):
        return True
    return separator in cell or (cell.startswith("[") and cell.endswith("]"))


def _number(cell: object) -> float | None:
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _label_value(label_type: str, cell, names: list[str] | None, separator: str):
    """(the cell as `label_type` holds it, None) or (None, (reason, what was expected))."""
    if cell is None:
        return None, None
    if label_type == "multilabel":
        items = cell if isinstance(cell, list) else _split_list(cell, separator)
        if items is None:
            return None, (
                "bad_label",
                f"a JSON array of class names or names joined by {separator!r}",
            )
        unknown = [item for item in items if names is not None and item not in names]
        if unknown:
            return None, ("unknown_label", f"classes among {names}")
        return items, None
    if isinstance(cell, list):
        return None, ("bad_label", f"one {label_type} label, not a list")
    if label_type == "regression":
        value = _number(cell)
        if value is None:
            return None, ("bad_label", "a finite number")
        return value, None
    if label_type == "binary" and cell.lower() in ("true", "false"):
        cell = cell.lower()
    if label_type == "binary" and names is None:
        if cell.lower() not in ("true", "false", "0", "1"):
            return None, ("bad_label", "true/false or 0/1")
        return cell.lower(), None
    if names is not None and cell not in names:
        return None, ("unknown_label", f"one of {names}")
    return cell, None


def _split_list(cell: str, separator: str) -> list[str] | None:
    if cell.startswith("["):
        try:
            items = json.loads(cell)
        except json.JSONDecodeError:
            return None
        return (
            [str(item).strip() for item in items if str(item).strip()]
            if isinstance(items, list)
            else None
        )
    return [item.strip() for item in cell.split(separator) if item.strip()]


def _label_array(column: str, label_type: str, values: list, names: list[str] | None):
    """(names, labels) of one column, in the form of its label type (`LABEL_FORMS`)."""
    if label_type == "regression":
        names = names or [column]
        targets = [[np.nan] if value is None else [value] for value in values]
        return names, np.asarray(targets, dtype=np.float32).reshape(len(values), len(names))
    if label_type == "multilabel":
        names = names or sorted({item for value in values if value is not None for item in value})
        rows = np.full((len(values), len(names)), -1, dtype=np.int32)
        for row, value in zip(rows, values, strict=True):
            if value is not None:
                row[:] = 0
                row[[names.index(item) for item in value]] = 1
        return names, rows
    if label_type == "binary" and names is None:
        truth = {value for value in values if value is not None} & {"true", "false"}
        names = ["false", "true"] if truth else ["0", "1"]
        positive = {"true", "1"}
        return names, np.asarray(
            [-1 if value is None else int(value in positive) for value in values], dtype=np.int32
        )
    names = names or sorted_labels(values)
    return names, np.asarray(
        [-1 if value is None else names.index(value) for value in values], dtype=np.int32
    )


def _read_records(path: Path) -> tuple[list[tuple[int, dict | str]], list[str]]:
    """(line, record) pairs and the columns found; a malformed record is a str saying why."""
    suffix = path.suffix.lower()
    text = decode_bytes(path.read_bytes())
    if suffix in CSV_SUFFIXES:
        rows = csv.reader(io.StringIO(text, newline=""))
        columns = [column.strip() for column in next(rows, [])]
        return list(_csv_records(rows, columns)), columns
    if suffix in JSONL_SUFFIXES:
        records = list(_jsonl_records(text))
        keys = (key for _, record in records if isinstance(record, dict) for key in record)
        return records, list(dict.fromkeys(keys))
    raise DataError(
        f"unknown manifest format: expected a file ending in one of "
        f"{list(CSV_SUFFIXES + JSONL_SUFFIXES)}",
        str(path),
    )


def _csv_records(rows, columns: list[str]) -> Iterator[tuple[int, dict | str]]:
    end_of_previous = rows.line_num
    for row in rows:
        line, end_of_previous = end_of_previous + 1, rows.line_num
        if not row:
            continue
        if len(row) != len(columns):
            yield line, f"expected {len(columns)} fields, found {len(row)}"
        else:
            yield line, dict(zip(columns, row, strict=True))


def _jsonl_records(text: str) -> Iterator[tuple[int, dict | str]]:
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            yield line, record
        else:
            yield line, f"expected a JSON object. Received: {content[:80]!r}"


def _cell(value: object) -> str | None:
    """A cell as a stripped string, None where empty."""
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def sorted_labels(values: list[str | None]) -> list[str]:
    """The distinct labels in order: as numbers when all are numbers ("2" before "10")."""
    distinct = {value for value in values if value is not None}
    if all(re.fullmatch(r"[-+]?\d+(\.\d*)?", value) for value in distinct):
        return sorted(distinct, key=float)
    return sorted(distinct)
