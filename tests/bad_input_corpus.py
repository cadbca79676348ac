"""A corpus of bad (and oddly good) inputs, written at test time, one small data set per case.

Each case is a data set of two good posts ("g1", "g2") and one post "x"
that holds the case (or, for file-level cases, a whole bad file), with the
outcome every entry point must give: `x` kept, `x` skipped for a reason
(an error naming the file and line under on_error="raise"), or an error in
both modes. Images are 8 x 8, so the whole corpus is a few kilobytes.
"""

from __future__ import annotations

import codecs
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 8
GOOD_IDS = ("g1", "g2")


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def noise(seed: int = 0, mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def jpeg() -> bytes:
    return encode(noise(), "JPEG", quality=90)


def png() -> bytes:
    return encode(noise(), "PNG")


def png_16_bit() -> bytes:
    pixels = np.random.default_rng(1).integers(0, 65536, (SIZE, SIZE), dtype=np.uint16)
    return encode(Image.fromarray(pixels), "PNG")


def corrupt_middle(data: bytes) -> bytes:
    """The file with its middle third overwritten by FF bytes: start and end markers intact."""
    third = len(data) // 3
    return data[:third] + b"\xff" * third + data[2 * third :]


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A PNG of a few hundred bytes whose header claims width x height gray pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(bytes(width + 1) * 2, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def jpeg_bomb(side: int = 60_000) -> bytes:
    """A small JPEG whose start-of-frame segment claims side x side pixels."""
    data = bytearray(jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


@dataclass(frozen=True)
class Case:
    """One corpus case and its outcome.

    Args:
        name: str. The case.
        write: Callable[[Path], dict]. Writes the data set into a folder and
            returns where it is and how to read it: {"path": ..., "kind":
            "mvsa" | "manifest", "manifest": read_manifest options}.
        outcome: str. Under on_error="skip": "kept" (x is read), "skipped"
            (x is left out for `reason`), or "error" (the read fails, in
            both modes, with `message` in the error).
        reason: str | None. The skip reason; with outcome "kept", a reason
            means x was read once and a second x skipped (a duplicate).
        message: str. Text the error names: the bad file, under raise.
        key: str. The key the report lists the skipped post under.
        allow_missing: tuple[str, ...]. Passed to the reader.
        text: str | None. The text x must be read as, where it matters.
    """

    name: str
    write: Callable[[Path], dict]
    outcome: str
    reason: str | None = None
    message: str = ""
    key: str = "x"
    allow_missing: tuple[str, ...] = ()
    text: str | None = None


def write_mvsa(
    root: Path,
    image: bytes | None,
    text: bytes | None = b"hello there",
    label: str = "x\tpositive,neutral",
    header: str = "ID\ttext,image",
    extra: tuple[str, ...] = (),
) -> dict:
    """An MVSA folder: g1, g2 and x (its image, text and label line as given; None: absent)."""
    data = root / "data"
    data.mkdir(parents=True)
    for number, post_id in enumerate(GOOD_IDS):
        (data / f"{post_id}.txt").write_bytes(b"good post")
        (data / f"{post_id}.jpg").write_bytes(encode(noise(10 + number), "JPEG"))
    if image is not None:
        (data / "x.jpg").write_bytes(image)
    if text is not None:
        (data / "x.txt").write_bytes(text)
    lines = [header, "g1\tpositive,positive", "g2\tnegative,neutral", label, *extra]
    (root / "labelResultAll.txt").write_text("\n".join(lines) + "\n")
    return {"path": root, "kind": "mvsa"}


def write_manifest(
    root: Path,
    image: bytes | None = None,
    image_name: str = "x.png",
    text: str = "hello there",
    fmt: str = "csv",
    header: str = "id,image,text",
    encoding: str = "utf-8",
    bom: bytes = b"",
) -> dict:
    """A manifest of g1, g2 and x (image file `image_name` holding `image`; None: absent)."""
    root.mkdir(parents=True)
    for number, post_id in enumerate(GOOD_IDS):
        (root / f"{post_id}.png").write_bytes(encode(noise(20 + number), "PNG"))
    if image is not None:
        (root / image_name).write_bytes(image)
    rows = [("g1", "g1.png", "good post"), ("g2", "g2.png", "good post"), ("x", image_name, text)]
    if fmt == "csv":
        quoted = [",".join(f'"{c}"' for c in row) for row in rows]
        body = "\r\n".join([header, *quoted]) + "\r\n"
        name = "m.csv"
    else:
        keys = header.split(",")
        lines = [json.dumps(dict(zip(keys, row, strict=True))) for row in rows]
        body = "\n".join(lines[:2] + ["{not json"]) + "\n"  # x's line is malformed
        name = "m.jsonl"
    (root / name).write_bytes(bom + body.encode(encoding))
    options = {"image_column": "image", "text_column": "text", "id_column": "id"}
    return {"path": root / name, "kind": "manifest", "manifest": options}


def _manifest_image(image: Callable[[], bytes], name: str) -> Callable[[Path], dict]:
    return lambda root: write_manifest(root, image(), name)


CASES = [
    # Every supported format, and the variants a decoder may trip on: kept.
    Case("jpeg", _manifest_image(jpeg, "x.jpg"), "kept"),
    Case("png", _manifest_image(png, "x.png"), "kept"),
    Case("gif", _manifest_image(lambda: encode(noise(), "GIF"), "x.gif"), "kept"),
    Case("bmp", _manifest_image(lambda: encode(noise(), "BMP"), "x.bmp"), "kept"),
    Case("webp", _manifest_image(lambda: encode(noise(), "WEBP"), "x.webp"), "kept"),
    Case(
        "webp_lossless",
        _manifest_image(lambda: encode(noise(), "WEBP", lossless=True), "x.webp"),
        "kept",
    ),
    Case("cmyk_jpeg", _manifest_image(lambda: encode(noise(0, "CMYK"), "JPEG"), "x.jpg"), "kept"),
    Case("png_16_bit", _manifest_image(png_16_bit, "x.png"), "kept"),
    Case("png_rgba", _manifest_image(lambda: encode(noise(0, "RGBA"), "PNG"), "x.png"), "kept"),
    Case("png_as_jpg", _manifest_image(png, "x.jpg"), "kept"),
    Case(
        "jpeg_trailing_bytes",
        _manifest_image(lambda: jpeg() + bytes(range(256)) * 12, "x.jpg"),
        "kept",
    ),
    Case("png_trailing_bytes", _manifest_image(lambda: png() + b"\x00" * 5000, "x.png"), "kept"),
    # Files that are not whole images: skipped, or an error naming the file.
    Case(
        "missing_image",
        lambda root: write_manifest(root, None, "x.png"),
        "skipped",
        "missing_file",
        "x.png",
    ),
    Case(
        "zero_byte_image", _manifest_image(lambda: b"", "x.png"), "skipped", "empty_file", "x.png"
    ),
    Case(
        "truncated_jpeg",
        _manifest_image(lambda: jpeg()[: len(jpeg()) * 3 // 4], "x.jpg"),
        "skipped",
        "truncated_image",
        "x.jpg",
    ),
    Case(
        "truncated_png",
        _manifest_image(lambda: png()[: len(png()) * 3 // 4], "x.png"),
        "skipped",
        "truncated_image",
        "x.png",
    ),
    Case(
        "corrupt_middle_jpeg",
        _manifest_image(lambda: corrupt_middle(jpeg()), "x.jpg"),
        "skipped",
        "corrupt_image",
        "x.jpg",
    ),
    Case(
        "corrupt_middle_png",
        _manifest_image(lambda: corrupt_middle(png()), "x.png"),
        "skipped",
        "corrupt_image",
        "x.png",
    ),
    Case(
        "text_renamed_jpg",
        _manifest_image(lambda: b"<html>404 not found</html>", "x.jpg"),
        "skipped",
        "not_an_image",
        "x.jpg",
    ),
    Case(
        "png_bomb",
        _manifest_image(png_bomb, "x.png"),
        "skipped",
        "image_too_large",
        "60000 x 60000",
    ),
    Case(
        "jpeg_bomb",
        _manifest_image(jpeg_bomb, "x.jpg"),
        "skipped",
        "image_too_large",
        "60000 x 60000",
    ),
    Case(
        "mvsa_corrupt_image",
        lambda root: write_mvsa(root, corrupt_middle(jpeg())),
        "skipped",
        "corrupt_image",
        "x.jpg",
    ),
    # Texts.
    Case(
        "cp1252_text",
        lambda root: write_mvsa(root, jpeg(), b"caf\xe9 \x93news\x94\r\n"),
        "kept",
        text="café “news”",
    ),
    Case("nul_in_text", lambda root: write_mvsa(root, jpeg(), b"he\x00llo"), "kept", text="hello"),
    Case(
        "nul_only_text",
        lambda root: write_mvsa(root, jpeg(), b"\x00" * 16),
        "skipped",
        "empty_text",
        "x.txt",
    ),
    Case(
        "empty_text_file",
        lambda root: write_mvsa(root, jpeg(), b""),
        "skipped",
        "empty_text",
        "x.txt",
    ),
    Case(
        "empty_text_file_allowed",
        lambda root: write_mvsa(root, jpeg(), b" \r\n"),
        "kept",
        allow_missing=("text",),
        text="",
    ),
    Case(
        "missing_text_file",
        lambda root: write_mvsa(root, jpeg(), None),
        "skipped",
        "missing_text",
        "x.txt",
    ),
    Case(
        "empty_text_cell",
        lambda root: write_manifest(root, png(), text=""),
        "skipped",
        "empty_text",
        "m.csv",
    ),
    Case(
        "empty_text_cell_allowed",
        lambda root: write_manifest(root, png(), text=""),
        "kept",
        allow_missing=("text",),
        text="",
    ),
    # Label files and manifests.
    Case(
        "unknown_label",
        lambda root: write_mvsa(root, jpeg(), label="x\tpositive,happy"),
        "skipped",
        "unknown_label",
        "labelResultAll.txt",
    ),
    Case(
        "duplicate_id",
        lambda root: write_mvsa(root, jpeg(), extra=("x\tnegative,negative",)),
        "kept",
        "duplicate_id",
        "labelResultAll.txt",
    ),
    Case(
        "malformed_label_row",
        lambda root: write_mvsa(root, jpeg(), label="x positive"),
        "skipped",
        "malformed_row",
        "labelResultAll.txt",
        key="labelResultAll.txt:4",
    ),
    Case(
        "swapped_header",
        lambda root: write_mvsa(root, jpeg(), header="ID\timage,text"),
        "error",
        message="ID<TAB>text,image",
    ),
    Case(
        "manifest_utf8_bom", lambda root: write_manifest(root, png(), bom=codecs.BOM_UTF8), "kept"
    ),
    Case(
        "manifest_utf16_bom",
        lambda root: write_manifest(root, png(), encoding="utf-16-le", bom=codecs.BOM_UTF16_LE),
        "kept",
    ),
    Case(
        "quoted_newline",
        lambda root: write_manifest(root, png(), text="two\nlines"),
        "kept",
        text="two\nlines",
    ),
    Case(
        "malformed_jsonl_line",
        lambda root: write_manifest(root, png(), fmt="jsonl"),
        "skipped",
        "malformed_row",
        "m.jsonl",
        key="m.jsonl:3",
    ),
    Case(
        "manifest_bad_header",
        lambda root: write_manifest(root, png(), header="id,picture,text"),
        "error",
        message="column 'image' not found",
    ),
]
"""Every case; names are unique."""
