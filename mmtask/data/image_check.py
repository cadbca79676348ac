"""Check image files when a data set is read, so no broken image reaches training.

Each file is checked in two steps. The cheap one reads its header: the
format must be one TensorFlow decodes (JPEG, PNG, GIF, BMP, WebP) and the
size, read before any decoding, must stay under a pixel limit (a tiny file
can claim gigapixels). Then the file is decoded in full by the decoder the
input pipeline uses, since only a decode finds a corrupt middle, and a
decode is also what tells a truncated file from one with harmless bytes
after its end. Decodes run in parallel, and the content hashes of the files
that decoded are remembered (on disk, see `default_cache_file`), so a data
set is decoded once, not on every read.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mmtask.data.image_header import MAX_IMAGE_PIXELS, image_format, read_image_header

_TAIL_BYTES = 4096
_MAX_WORKERS = 8

IMAGE_PROBLEMS = {
    "missing_file": "the file does not exist",
    "empty_file": "the file is empty",
    "unreadable_file": "the file cannot be read",
    "not_an_image": "the file is not a JPEG, PNG, GIF, BMP or WebP image",
    "unreadable_header": "its header does not give its size",
    "image_too_large": "it has more pixels than the limit",
    "truncated_image": "the image is truncated (its end is missing)",
    "corrupt_image": "the image data is corrupt (it cannot be decoded)",
}
"""Reason returned by `check_image_file` to a phrase for error messages."""


def check_image_file(path: str | Path, max_pixels: int | None = MAX_IMAGE_PIXELS) -> str | None:
    """Check that a file is a whole image TensorFlow decodes, within the pixel limit.

    Args:
        path: str | Path. The image file.
        max_pixels: int | None. Largest width x height accepted, read from the
            header before decoding; None for no limit.

    Returns:
        None when the image is usable, else the reason, a key of IMAGE_PROBLEMS.
    """
    return check_image_files([path], max_pixels)[0]


def check_image_files(
    paths: Sequence[str | Path],
    max_pixels: int | None = MAX_IMAGE_PIXELS,
    on_progress: Callable[[int], None] | None = None,
) -> list[str | None]:
    """`check_image_file` of each path, decoding in parallel; `on_progress(done)` as they finish."""
    check_max_pixels(max_pixels)
    if not paths:
        return []
    cache = _cache()
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(workers) as pool:
        problems = []
        for problem in pool.map(lambda p: _check(Path(p), max_pixels, cache), paths):
            problems.append(problem)
            if on_progress is not None:
                on_progress(len(problems))
    return problems


def check_max_pixels(max_pixels: int | None) -> None:
    """Raise a ValueError unless `max_pixels` is None or a positive int."""
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
    ):
        raise ValueError(
            f"Invalid value for `max_pixels`: expected a positive int or None. "
            f"Received: max_pixels={max_pixels!r}"
        )


def image_problem_message(problem: str, path: str | Path, max_pixels: int | None) -> str:
    """What is wrong with the image at `path`, for an error message."""
    phrase = IMAGE_PROBLEMS[problem]
    if problem == "image_too_large":
        header = read_image_header(Path(path).read_bytes())
        phrase = (
            f"it is {header.width} x {header.height} pixels, over the limit of "
            f"{max_pixels:,} (max_image_pixels)"
        )
    return f"{phrase}: {path}"


def _check(path: Path, max_pixels: int | None, cache: _DecodedImages) -> str | None:
    if not path.is_file():
        return "missing_file"
    try:
        data = path.read_bytes()
    except OSError:
        return "unreadable_file"
    if not data:
        return "empty_file"
    fmt = image_format(data[:16])
    if fmt is None:
        return "not_an_image"
    header = read_image_header(data)
    if header is None:
        return "unreadable_header"
    if max_pixels is not None and header.pixels > max_pixels:
        return "image_too_large"
    digest = hashlib.sha256(data).hexdigest()
    if cache.holds(digest):
        return None
    if not _decodes(data):
        return "corrupt_image" if _has_end(data, fmt) else "truncated_image"
    cache.add(digest)
    return None


def _decodes(data: bytes) -> bool:
    import tensorflow as tf

    from mmtask.data.images import decode_pixels  # the pipeline's decoder, imported when used

    try:
        decode_pixels(tf.constant(data))
    except tf.errors.OpError:
        return False
    return True


def _has_end(data: bytes, fmt: str) -> bool:
    """Whether the format's end marker is near the end: tells truncated from corrupt files."""
    tail = data[-_TAIL_BYTES:]
    if fmt == "jpeg":
        # Entropy-coded data never holds FF D9 (an FF is always followed by 00 there).
        return b"\xff\xd9" in tail
    if fmt == "png":
        return b"IEND" in tail
    if fmt == "gif":
        return tail.rstrip(b"\x00").endswith(b";")
    if fmt == "bmp":
        return len(data) >= int.from_bytes(data[2:6], "little")
    return len(data) >= int.from_bytes(data[4:8], "little") + 8  # webp: the RIFF size


def default_cache_file() -> Path:
    """Hashes of images that decoded: under `$MMTASK_CACHE_DIR`, else the user's cache folder."""
    if os.environ.get("MMTASK_CACHE_DIR"):
        base = Path(os.environ["MMTASK_CACHE_DIR"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmtask"
    return base / "image_checks" / "decoded.txt"


class _DecodedImages:
    """The content hashes of images that decoded, kept in memory and in a file (one per line).

    A version line heads the file: a file written by another TensorFlow
    version (whose decoder may differ) is started afresh.
    """

    def __init__(self, path: Path):
        import tensorflow as tf

        self.path = path
        self.version = f"tensorflow {tf.__version__}"
        self.lock = threading.Lock()
        self.digests: set[str] = set()
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        if lines[:1] == [self.version]:
            self.digests = set(lines[1:])

    def holds(self, digest: str) -> bool:
        return digest in self.digests

    def add(self, digest: str) -> None:
        with self.lock:
            if digest in self.digests:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fresh = not self.digests and not self._has_version_line()
                with self.path.open("w" if fresh else "a", encoding="ascii") as handle:
                    handle.write(f"{self.version}\n{digest}\n" if fresh else f"{digest}\n")
            except OSError:
                pass  # an unwritable cache only costs decoding again next time
            self.digests.add(digest)

    def _has_version_line(self) -> bool:
        try:
            with self.path.open(encoding="ascii") as handle:
                return handle.readline().rstrip("\n") == self.version
        except (OSError, UnicodeDecodeError):
            return False


_CACHES: dict[Path, _DecodedImages] = {}


def _cache() -> _DecodedImages:
    path = default_cache_file()
    if path not in _CACHES:
        _CACHES[path] = _DecodedImages(path)
    return _CACHES[path]
