"""Small images and MVSA folders written by hand for the data tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def noise_jpeg(seed: int = 0, size: int = 64) -> bytes:
    """A JPEG of random pixels, large enough that cutting it in half loses its end."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG", quality=90)


# id -> (text label, image label, text file bytes)
MVSA_POSTS = {
    "1": ("positive", "positive", b"I love this #happy\r\n"),
    "2": ("neutral", "negative", b"caf\xe9 \x93news\x94\r\n"),  # cp1252
    "3": ("positive", "negative", b"great day @friend\r\n"),  # conflict: no post label
    "4": ("negative", "neutral", "so sad, naïve me\r\n".encode()),
    "5": ("neutral", "neutral", b"\xef\xbb\xbfmeeting at 5 http://t.co/x\r\n"),  # UTF-8 BOM
}


def write_mvsa(root: Path) -> Path:
    """A valid MVSA folder: header + 5 rows (lines 2-6), train split 1,2,3 and val split 5,4."""
    (root / "data").mkdir(parents=True)
    (root / "splits").mkdir()
    rows = ["ID\ttext,image"]
    for number, (post_id, (text_label, image_label, text)) in enumerate(MVSA_POSTS.items()):
        rows.append(f"{post_id}\t{text_label},{image_label}")
        (root / "data" / f"{post_id}.txt").write_bytes(text)
        (root / "data" / f"{post_id}.jpg").write_bytes(noise_jpeg(number))
    (root / "labelResultAll.txt").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    (root / "splits" / "train.txt").write_text("1\n2\n3\n")
    (root / "splits" / "val.txt").write_text("5\n4\n")
    return root


@pytest.fixture
def mvsa_root(tmp_path: Path) -> Path:
    return write_mvsa(tmp_path / "mvsa")


@pytest.fixture(name="encode")
def encode_fixture():
    """encode(image, fmt, **kwargs) -> bytes of a PIL image saved as `fmt`."""
    return encode


@pytest.fixture(name="noise_jpeg")
def noise_jpeg_fixture():
    """noise_jpeg(seed=0, size=64) -> bytes of a JPEG of random pixels."""
    return noise_jpeg
