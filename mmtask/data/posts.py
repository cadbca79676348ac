"""The in-memory form of a multi-task data set, shared by every reader.

Readers (MVSA, manifests) turn files into `Posts`; the input pipeline and the
evaluation code only ever see `Posts`. Each task has a label type, and each
type marks a missing label its own way (see `LABEL_FORMS`), so a post
labelled for some tasks only still trains the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mmtask.errors import DataError, MmtaskError

SENTIMENT_LABELS = ("negative", "neutral", "positive")

LABEL_FORMS = {
    "classification": "index",
    "binary": "index",
    "multilabel": "multi_hot",
    "regression": "value",
}
"""Label type -> how its labels are held, one row per post:

- "index": int32 (n,), the class index, -1 where missing (binary: 2 classes);
- "multi_hot": int32 (n, classes), 1 for each class in the post's set, a row
  of -1 where missing;
- "value": float32 (n, outputs), the targets, a row of NaN where missing.

The head types of `mmtask.heads` have the same names and forms.
"""

_SHOWN_IDS = 5


@dataclass
class ReadReport:
    """What a reader read and what it skipped.

    Args:
        source: str. The file or folder read.
        read: int. The number of posts kept.
        skipped: dict[str, list[str]]. Reason (e.g. "truncated_image") to the
            ids of the posts skipped for it (or "file:line" where no id applies).
        missing: dict[str, list[str]]. Modality ("text", "image") to the ids of
            posts kept without it, where the reader was allowed to.
        image_pixel_limit: float | None. The pixel limit every image kept was
            checked against (header and full decode, see
            `mmtask.data.image_check`), math.inf for no limit; None where the
            images were not checked (posts built by hand), so the pipeline
            checks them.
    """

    source: str
    read: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    image_pixel_limit: float | None = None

    @property
    def num_skipped(self) -> int:
        return sum(len(ids) for ids in self.skipped.values())

    def add_missing(self, modality: str, key: str) -> None:
        """Record that post `key` was kept without its `modality` (as the reader allowed)."""
        self.missing.setdefault(modality, []).append(key)

    def add_skip(self, reason: str, key: str) -> None:
        """Record that the post `key` was skipped for `reason`."""
        self.skipped.setdefault(reason, []).append(key)

    def summary(self) -> str:
        """One line for people, e.g. "read 4 posts from X, skipped 1 (duplicate_id: 1 [7])"."""
        line = f"read {self.read} posts from {self.source}, skipped {self.num_skipped}"
        for modality, keys in sorted(self.missing.items()):
            line += f", {len(keys)} kept without {modality} [{_shown(keys)}]"
        if not self.num_skipped:
            return line
        parts = []
        for reason, keys in sorted(self.skipped.items()):
            parts.append(f"{reason}: {len(keys)} [{_shown(keys)}]")
        return f"{line} ({'; '.join(parts)})"


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN_IDS]) + (", ..." if len(keys) > _SHOWN_IDS else "")


@dataclass
class Posts:
    """Posts with a text, an image file and labels for several tasks.

    Args:
        ids: list[str]. Unique post ids.
        texts: list[str]. The text of each post.
        image_paths: list[str]. The image file of each post.
        labels: dict[str, np.ndarray]. Task name to its labels, held as its
            label type says (`LABEL_FORMS`): for classification an int32
            array of class indices, -1 where the post has no label.
        label_names: dict[str, list[str]]. Task name to its class names; index
            i of the list is class i. For regression, the names of the outputs.
        report: ReadReport. How the posts were read.
        features: dict[str, np.ndarray]. Modality to precomputed features, one
            row per post (NaN rows where the post lacks the modality); the
            pipeline serves them in place of the raw text or image. Usually
            set by `mmtask.transfer.precompute_features`.
        label_types: dict[str, str]. Task name to its label type (a key of
            `LABEL_FORMS`); tasks left out are "classification".

    Example:
        >>> posts = mmtask.data.read_mvsa("mvsa_single", split="val")
        >>> posts.label_counts("post_sentiment")
        {'negative': ..., 'neutral': ..., 'positive': ...}
    """

    ids: list[str]
    texts: list[str]
    image_paths: list[str]
    labels: dict[str, np.ndarray]
    label_names: dict[str, list[str]]
    report: ReadReport
    features: dict[str, np.ndarray] = field(default_factory=dict)
    label_types: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.texts) != n or len(self.image_paths) != n:
            raise MmtaskError(
                f"Posts need one text and one image path per id: got {n} ids, "
                f"{len(self.texts)} texts and {len(self.image_paths)} image paths."
            )
        if len(set(self.ids)) != n:
            raise MmtaskError("Posts need unique ids; received duplicate ids.")
        if list(self.labels) != list(self.label_names):
            raise MmtaskError(
                f"`labels` and `label_names` must have the same tasks in the same order. "
                f"Received: labels={list(self.labels)}, label_names={list(self.label_names)}"
            )
        unknown = sorted(set(self.label_types) - set(self.labels))
        if unknown:
            raise MmtaskError(
                f"`label_types` names tasks without labels: {unknown}; tasks: {list(self.labels)}"
            )
        self.label_types = {t: self.label_types.get(t, "classification") for t in self.labels}
        self.label_names = {task: list(names) for task, names in self.label_names.items()}
        self.labels = {
            task: _checked_labels(task, self.label_types[task], values, self.label_names[task], n)
            for task, values in self.labels.items()
        }
        self.features = {m: _checked_features(m, v, n) for m, v in self.features.items()}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def tasks(self) -> list[str]:
        """The task names, in the order of `labels`."""
        return list(self.labels)

    def masks(self) -> dict[str, np.ndarray]:
        """Task name to a float32 array: 1.0 where the post is labelled, 0.0 where not."""
        return {task: _labelled(values).astype(np.float32) for task, values in self.labels.items()}

    def select(self, ids: Iterable[str]) -> Posts:
        """The posts with the given ids, in the order given.

        Raises:
            MmtaskError: an id is not among these posts.
        """
        position = {post_id: i for i, post_id in enumerate(self.ids)}
        ids = [str(post_id) for post_id in ids]
        unknown = [post_id for post_id in ids if post_id not in position]
        if unknown:
            raise MmtaskError(
                f"Cannot select {len(unknown)} unknown post id(s), e.g. {unknown[:_SHOWN_IDS]}; "
                f"these posts come from {self.report.source}."
            )
        index = np.asarray([position[post_id] for post_id in ids], dtype=np.int64)
        report = dataclasses.replace(
            self.report, read=len(ids), skipped=dict(self.report.skipped), missing={}
        )
        return Posts(
            ids=ids,
            texts=[self.texts[i] for i in index],
            image_paths=[self.image_paths[i] for i in index],
            labels={task: values[index] for task, values in self.labels.items()},
            label_names={task: list(names) for task, names in self.label_names.items()},
            report=report,
            features={modality: values[index] for modality, values in self.features.items()},
            label_types=dict(self.label_types),
        )

    def split(self, fraction: float, seed: int = 0) -> tuple[Posts, Posts]:
        """(the other posts, a random `fraction` of them), e.g. to hold out validation posts.

        Each part keeps the order of these posts; the same seed gives the same parts.
        """
        if not 0.0 < fraction < 1.0:
            raise MmtaskError(f"`fraction` must lie in (0, 1). Received: fraction={fraction}")
        held = np.zeros(len(self), dtype=bool)
        chosen = np.random.default_rng(seed).permutation(len(self))
        held[chosen[: int(round(fraction * len(self)))]] = True
        ids = np.asarray(self.ids, dtype=object)
        return self.select(ids[~held]), self.select(ids[held])

    def with_features(self, modality: str, values: np.ndarray) -> Posts:
        """These posts, serving `values` (one row per post) in place of the raw `modality`."""
        return dataclasses.replace(self, features={**self.features, modality: values})

    def label_counts(self, task: str) -> dict[str, int]:
        """Class name to the number of posts labelled with it for `task` (missing ones excluded).

        A multi-label post counts once for each class in its set; a regression
        task gives each output the number of posts with a target.
        """
        if task not in self.labels:
            raise MmtaskError(
                f"Unknown task: expected one of {self.tasks}. Received: task={task!r}"
            )
        names = self.label_names[task]
        values = self.labels[task][_labelled(self.labels[task])]
        form = LABEL_FORMS[self.label_types[task]]
        if form == "index":
            counts = np.bincount(values, minlength=len(names))
        elif form == "multi_hot":
            counts = values.sum(axis=0)
        else:
            counts = np.full(len(names), len(values))
        return {name: int(count) for name, count in zip(names, counts, strict=True)}


MODALITIES = ("image", "text")


def _labelled(values: np.ndarray) -> np.ndarray:
    """Bool per post: its label is there (no -1 in an int row, no NaN in a float row)."""
    present = np.isfinite(values) if values.dtype.kind == "f" else values >= 0
    return present.reshape(len(values), -1).all(axis=1)


def _checked_labels(task: str, label_type: str, values, names: list[str], n: int) -> np.ndarray:
    """`values` in the form of `label_type`, or an MmtaskError saying what was expected."""
    if label_type not in LABEL_FORMS:
        raise MmtaskError(
            f"Invalid label type for task '{task}': expected one of {list(LABEL_FORMS)}. "
            f"Received: {label_type!r}"
        )
    form = LABEL_FORMS[label_type]
    if label_type == "binary" and len(names) != 2:
        raise MmtaskError(
            f"A binary task needs 2 class names (negative first). Task '{task}' has {names}."
        )
    if form == "value":
        values = np.asarray(values, dtype=np.float32)
        shapes = [(n, len(names))] + ([(n,)] if len(names) == 1 else [])
        if values.shape not in shapes:
            raise MmtaskError(
                f"Targets of task '{task}' must have shape {shapes[-1]} (one column per "
                f"output name {names}); received {values.shape}."
            )
        values = values.reshape(n, len(names))
        partial = np.isnan(values).any(axis=1) & ~np.isnan(values).all(axis=1)
        if np.isinf(values).any() or partial.any():
            raise MmtaskError(
                f"Targets of task '{task}' must be finite, with a row of NaN where missing; "
                f"received infinities or rows partly NaN."
            )
        return values
    values = np.asarray(values)
    shape = (n,) if form == "index" else (n, len(names))
    if values.shape != shape:
        raise MmtaskError(
            f"Labels of task '{task}' ({label_type}) must have shape {shape}; "
            f"received {values.shape}."
        )
    values = values.astype(np.int32)
    if form == "index":
        high = len(names) - 1
        if values.size and (values.min() < -1 or values.max() > high):
            raise MmtaskError(
                f"Labels of task '{task}' must lie in [-1, {high}]; "
                f"received values from {values.min()} to {values.max()}."
            )
        return values
    missing = (values == -1).all(axis=1)
    if not np.isin(values[~missing], (0, 1)).all():
        raise MmtaskError(
            f"Labels of multi-label task '{task}' must be rows of 0/1, or of -1 where missing."
        )
    return values


def _checked_features(modality: str, values, num_posts: int) -> np.ndarray:
    if modality not in MODALITIES:
        raise MmtaskError(
            f"Invalid modality for precomputed features: expected one of {list(MODALITIES)}. "
            f"Received: {modality!r}"
        )
    values = np.asarray(values)
    if values.ndim < 2 or values.shape[0] != num_posts or values.dtype.kind != "f":
        raise MmtaskError(
            f"Precomputed {modality} features must be a float array of shape "
            f"({num_posts}, ...) with one row per post. Received: {values.dtype} {values.shape}"
        )
    return values


def check_allow_missing(allow_missing) -> frozenset[str]:
    """`allow_missing` as a set of modality names; an unknown name is an error."""
    allowed = frozenset(allow_missing)
    unknown = sorted(allowed - set(MODALITIES))
    if unknown:
        raise MmtaskError(
            f"Invalid value for `allow_missing`: expected names among {list(MODALITIES)}. "
            f"Received: {sorted(allowed)}"
        )
    return allowed


class ErrorPolicy:
    """Raise or skip on a bad post, as the reader's `on_error` argument says.

    Args:
        on_error: str. "raise" to stop at the first bad post, "skip" to leave it
            out and record it in `report`.
        report: ReadReport. Where skipped posts are recorded.
    """

    CHOICES = ("raise", "skip")

    def __init__(self, on_error: str, report: ReadReport):
        if on_error not in self.CHOICES:
            raise MmtaskError(
                f"Invalid value for `on_error`: expected one of {list(self.CHOICES)}. "
                f"Received: on_error={on_error!r}"
            )
        self.on_error = on_error
        self.report = report

    def fail(self, reason: str, key: str, message: str, path: object, line: int | None) -> None:
        """Raise a DataError for `path`:`line`, or record `key` as skipped for `reason`."""
        if self.on_error == "raise":
            raise DataError(message, str(path), line)
        self.report.add_skip(reason, key)
