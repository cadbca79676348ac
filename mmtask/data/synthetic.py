"""Write a small synthetic data set in the MVSA layout.

The demo and the unit tests need data that is small, free to ship and
learnable, with the awkward parts of the real set: cp1252 text files, CRLF
line ends, and text and image labels that disagree, so the post label needs
both modalities. The image label is carried by the shape and colours drawn,
the text label by the words used.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf

from mmtask.data.posts import SENTIMENT_LABELS

_LABEL_WORDS = {
    "negative": [
        "sad",
        "hate",
        "awful",
        "terrible",
        "angry",
        "worst",
        "broken",
        "cry",
        "lost",
        "disaster",
        "pain",
        "tired",
        "ugly",
        "boring",
    ],
    "neutral": [
        "today",
        "news",
        "update",
        "meeting",
        "report",
        "weather",
        "schedule",
        "announced",
        "event",
        "info",
        "story",
        "listed",
        "arrives",
        "via",
    ],
    "positive": [
        "love",
        "happy",
        "great",
        "awesome",
        "beautiful",
        "amazing",
        "wonderful",
        "best",
        "fun",
        "excited",
        "smile",
        "perfect",
        "proud",
        "yay",
    ],
}
_FILLER = [
    "the",
    "a",
    "this",
    "my",
    "we",
    "at",
    "with",
    "just",
    "so",
    "on",
    "and",
    "in",
    "for",
    "is",
    "was",
    "it",
    "after",
    "people",
    "city",
    "night",
    "morning",
    "our",
]
_HASHTAGS = ["#tbt", "#nofilter", "#mood", "#instagood", "#live", "#photo", "#weekend"]
_MENTIONS = ["@alex", "@news24", "@sam_j", "@citylife", "@mvsa"]
# Non-ASCII words that cp1252 can encode; written in cp1252 they are not valid UTF-8.
_ACCENTED = [
    "café",
    "naïve",
    "déjà vu",
    "“quoted”",
    "jalapeño",
    "façade",
    "résumé",
    "crème brûlée",
    "über",
    "piñata",
]
_URL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def write_synthetic_mvsa(
    root: str | Path, num_posts: int = 300, seed: int = 0, image_size: int = 64
) -> Path:
    """Write a synthetic MVSA folder that `read_mvsa` reads.

    Writes `data/ID.jpg`, `data/ID.txt`, `labelResultAll.txt` and
    `splits/train.txt`, `splits/val.txt` (about 80/20). Text and image labels
    are drawn independently, so all nine combinations occur (the first nine
    posts, in shuffled order, cover them all) and about 2 in 9 posts have
    conflicting labels. The same seed writes byte-identical files.

    Images: negative is a downward triangle on a dark blue-ish background,
    neutral a grey square on grey, positive a yellow/orange disc on a bright
    background, each with random position, size, noise and (sometimes) a
    background of any colour.

    Args:
        root: str | Path. Folder to write; created if needed.
        num_posts: int. Number of posts; ids are "1" to str(num_posts).
        seed: int. Seed of every random choice.
        image_size: int. Side of the square images, in pixels.

    Returns:
        `root` as a Path.

    Example:
        >>> root = write_synthetic_mvsa("/tmp/mvsa_demo", num_posts=100)
        >>> posts = mmtask.data.read_mvsa(root, split="train")
    """
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "splits").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)

    combos = [(t, i) for t in range(3) for i in range(3)]
    pairs = [
        combos[k] if k < len(combos) else tuple(rng.integers(3, size=2)) for k in range(num_posts)
    ]
    pairs = [pairs[k] for k in rng.permutation(num_posts)]

    rows = ["ID\ttext,image"]
    for number, (text_label, image_label) in enumerate(pairs, start=1):
        text_name, image_name = SENTIMENT_LABELS[text_label], SENTIMENT_LABELS[image_label]
        text, encoding = _make_text(rng, text_name)
        (root / "data" / f"{number}.txt").write_bytes(f"{text}\r\n".encode(encoding))
        image = _draw_image(rng, image_name, image_size)
        jpeg = tf.io.encode_jpeg(image, quality=90).numpy()
        (root / "data" / f"{number}.jpg").write_bytes(jpeg)
        rows.append(f"{number}\t{text_name},{image_name}")
    (root / "labelResultAll.txt").write_bytes(("\r\n".join(rows) + "\r\n").encode("ascii"))

    order = rng.permutation(np.arange(1, num_posts + 1))
    num_val = int(round(0.2 * num_posts))
    for name, ids in (("val", order[:num_val]), ("train", order[num_val:])):
        lines = "".join(f"{post_id}\n" for post_id in sorted(ids.tolist()))
        (root / "splits" / f"{name}.txt").write_text(lines, encoding="ascii")
    return root


def _pick(rng: np.random.Generator, words: list[str]) -> str:
    return words[int(rng.integers(len(words)))]


def _make_text(rng: np.random.Generator, label: str) -> tuple[str, str]:
    """A tweet-like text for `label` and the encoding to write it in."""
    words = [_pick(rng, _LABEL_WORDS[label]) for _ in range(int(rng.integers(1, 4)))]
    if rng.random() < 0.2:  # a misleading word, so single words do not decide
        other = SENTIMENT_LABELS[(SENTIMENT_LABELS.index(label) + int(rng.integers(1, 3))) % 3]
        words.append(_pick(rng, _LABEL_WORDS[other]))
    words += [_pick(rng, _FILLER) for _ in range(int(rng.integers(3, 8)))]
    accented = rng.random() < 0.35
    if accented:
        words.append(_pick(rng, _ACCENTED))
    words = [words[k] for k in rng.permutation(len(words))]
    if rng.random() < 0.3:
        words.insert(0, _pick(rng, _MENTIONS))
    if rng.random() < 0.5:
        words.append(_pick(rng, _HASHTAGS))
    if rng.random() < 0.3:
        words.append("http://t.co/" + "".join(_pick(rng, list(_URL_CHARS)) for _ in range(8)))
    encoding = "cp1252" if accented and rng.random() < 0.7 else "utf-8"
    return " ".join(words), encoding


def _draw_image(rng: np.random.Generator, label: str, size: int) -> np.ndarray:
    """A uint8 (size, size, 3) image whose shape and colours carry `label`."""
    if label == "negative":
        background = rng.uniform((10, 20, 60), (60, 70, 130))
        colour = rng.uniform((70, 60, 150), (130, 110, 230))
    elif label == "neutral":
        background = np.full(3, rng.uniform(90, 170)) + rng.uniform(-8, 8, size=3)
        colour = np.full(3, rng.uniform(40, 220)) + rng.uniform(-8, 8, size=3)
    else:
        background = rng.uniform((170, 150, 80), (245, 225, 170))
        colour = rng.uniform((230, 140, 0), (255, 230, 60))
    if rng.random() < 0.25:  # any background, so colour alone is not enough
        background = rng.uniform(0, 255, size=3)

    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    cy, cx = rng.uniform(0.3 * size, 0.7 * size, size=2)
    r = rng.uniform(0.15 * size, 0.3 * size)
    if label == "negative":  # downward triangle: flat top, apex at the bottom
        shape = (y >= cy - r) & (y <= cy + r) & (np.abs(x - cx) <= (cy + r - y) / 2)
    elif label == "neutral":
        shape = (np.abs(x - cx) <= r) & (np.abs(y - cy) <= r)
    else:
        shape = (x - cx) ** 2 + (y - cy) ** 2 <= r**2

    image = np.where(shape[..., None], colour, background)
    image = image + rng.normal(0.0, 12.0, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


TOPIC_WORDS = {
    "food": ["pizza", "coffee", "noodles", "cake"],
    "sport": ["football", "tennis", "marathon", "goal"],
    "travel": ["airport", "beach", "train", "hotel"],
}
"""The multi-label target of `write_synthetic_manifest`: a topic is in a post's set
when one of its words is in the text."""
_INTENSITY_WORDS = ["very", "really", "extremely", "totally"]
_FLAG_WORD = "urgent"


def write_synthetic_manifest(path: str | Path, num_posts: int = 200, seed: int = 0) -> Path:
    """Write a text-only CSV manifest with a target of every label type, each set by the text.

    Columns: `id`, `text`, and one label column per type, so tests can check
    that every head type learns (beats its trivial baseline) on it:

    - `sentiment` (classification): the sentiment words used, as in
      `write_synthetic_mvsa`;
    - `flagged` (binary, true/false): the text holds the word "urgent";
    - `topics` (multilabel, names joined by "|"): the topics of `TOPIC_WORDS`
      whose words the text holds; about 1 post in 10 has it missing (empty);
    - `score` (regression): 50 plus 20 per intensity word ("very",
      "really", ...) plus noise, so its scale is far from a cross-entropy's;
      about 1 post in 10 has it missing (empty).

    Args:
        path: str | Path. The `.csv` file to write; its folder is created.
        num_posts: int. Number of posts; ids are "1" to str(num_posts).
        seed: int. Seed of every random choice; the same seed writes the same bytes.

    Returns:
        `path` as a Path.

    Example:
        >>> path = write_synthetic_manifest("/tmp/typed.csv")
        >>> posts = mmtask.data.read_manifest(path, image_column=None, text_column="text",
        ...     label_columns=["sentiment", "flagged", "topics", "score"])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = [["id", "text", "sentiment", "flagged", "topics", "score"]]
    for number in range(1, num_posts + 1):
        sentiment = SENTIMENT_LABELS[int(rng.integers(3))]
        words = [_pick(rng, _LABEL_WORDS[sentiment]) for _ in range(int(rng.integers(1, 3)))]
        topics = [topic for topic in TOPIC_WORDS if rng.random() < 0.4]
        words += [_pick(rng, TOPIC_WORDS[topic]) for topic in topics]
        intensity = int(rng.integers(0, 4))
        words += [_pick(rng, _INTENSITY_WORDS) for _ in range(intensity)]
        flagged = bool(rng.random() < 0.4)
        words += [_FLAG_WORD] if flagged else []
        words += [_pick(rng, _FILLER) for _ in range(int(rng.integers(2, 5)))]
        words = [words[k] for k in rng.permutation(len(words))]
        score = 50.0 + 20.0 * intensity + rng.normal(0.0, 3.0)
        rows.append(
            [
                str(number),
                " ".join(words),
                sentiment,
                "true" if flagged else "false",
                "" if rng.random() < 0.1 else "|".join(topics) or "[]",
                "" if rng.random() < 0.1 else f"{score:.2f}",
            ]
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path
