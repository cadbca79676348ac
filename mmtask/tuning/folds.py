"""`k_folds`: split posts into k disjoint validation folds for cross-validation.

A search scored on one small validation split picks whatever suits those
posts; the mean over k folds, each post validated once, is a steadier figure.
"""

from __future__ import annotations

import numpy as np

from mmtask.data import Posts
from mmtask.data.posts import LABEL_FORMS
from mmtask.errors import MmtaskError


def k_folds(
    posts: Posts, k: int, seed: int = 0, stratify: str | None = None
) -> list[tuple[Posts, Posts]]:
    """(training posts, validation posts) of each of `k` folds.

    Every post is in exactly one validation fold; fold sizes differ by at
    most one. Both parts keep the order of `posts`; the same seed gives the
    same folds.

    Args:
        posts: Posts. The posts to split.
        k: int. The number of folds, 2 to len(posts).
        seed: int. Seeds the shuffle.
        stratify: str | None. A classification or binary task whose classes
            are spread evenly over the folds (its unlabelled posts count as
            one more class); None shuffles all posts alike.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= len(posts):
        raise MmtaskError(
            f"`k` must be an int from 2 to the number of posts ({len(posts)}). Received: k={k!r}"
        )
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(len(posts))
    else:
        if stratify not in posts.labels or LABEL_FORMS[posts.label_types[stratify]] != "index":
            single = [t for t in posts.tasks if LABEL_FORMS[posts.label_types[t]] == "index"]
            raise MmtaskError(
                f"Cannot stratify folds by {stratify!r}: expected a classification or binary "
                f"task among {single}."
            )
        labels = posts.labels[stratify]
        # Each class shuffled, then dealt round the folds one class after another.
        order = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
        )
    fold_of = np.empty(len(posts), dtype=np.int64)
    fold_of[order] = np.arange(len(posts)) % k
    ids = np.asarray(posts.ids, dtype=object)
    return [(posts.select(ids[fold_of != f]), posts.select(ids[fold_of == f])) for f in range(k)]
