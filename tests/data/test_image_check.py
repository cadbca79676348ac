import hashlib

import pytest
from PIL import Image

from mmtask.data import image_check
from mmtask.data.image_check import check_image_file


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP"])
def test_whole_and_truncated_images(tmp_path, encode, fmt):
    data = encode(Image.effect_noise((64, 64), 60).convert("RGB"), fmt)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.write_bytes(data)
    cut.write_bytes(data[: len(data) // 2])
    assert check_image_file(whole) is None
    assert check_image_file(cut) == "truncated_image"


def test_jpeg_with_trailing_bytes_is_whole(tmp_path, noise_jpeg):
    path = tmp_path / "a.jpg"
    path.write_bytes(noise_jpeg() + b"\x00" * 100)
    assert check_image_file(path) is None


def test_problems(tmp_path):
    empty, text = tmp_path / "empty.jpg", tmp_path / "text.jpg"
    empty.write_bytes(b"")
    text.write_bytes(b"<html>not found</html>")
    assert check_image_file(tmp_path / "absent.jpg") == "missing_file"
    assert check_image_file(tmp_path) == "missing_file"
    assert check_image_file(empty) == "empty_file"
    assert check_image_file(text) == "not_an_image"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_kilobytes_after_a_whole_image_are_accepted(tmp_path, encode, fmt):
    path = tmp_path / "a"
    path.write_bytes(encode(Image.effect_noise((16, 16), 60).convert("RGB"), fmt) + b"\x01" * 6000)
    assert check_image_file(path) is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_corrupt_middle_is_found_by_decoding(tmp_path, encode, fmt):
    data = encode(Image.effect_noise((16, 16), 60).convert("RGB"), fmt)
    third = len(data) // 3
    path = tmp_path / "a"
    path.write_bytes(data[:third] + b"\xff" * third + data[2 * third :])
    assert check_image_file(path) == "corrupt_image"


def test_webp_and_the_pixel_limit(tmp_path, encode):
    path = tmp_path / "a.webp"
    path.write_bytes(encode(Image.new("RGB", (8, 4)), "WEBP"))
    assert check_image_file(path) is None
    assert check_image_file(path, max_pixels=32) is None
    assert check_image_file(path, max_pixels=31) == "image_too_large"
    with pytest.raises(ValueError, match="max_pixels"):
        check_image_file(path, max_pixels=0)


def test_decoded_images_are_remembered_by_content(tmp_path, encode, monkeypatch):
    monkeypatch.setenv("MMTASK_CACHE_DIR", str(tmp_path / "cache"))
    decoded = []
    real_decodes = image_check._decodes
    monkeypatch.setattr(
        image_check, "_decodes", lambda data: decoded.append(data) or real_decodes(data)
    )
    good = encode(Image.effect_noise((16, 16), 60).convert("RGB"), "PNG")
    paths = [tmp_path / name for name in ("a.png", "copy.png", "bad.png")]
    paths[0].write_bytes(good)
    paths[1].write_bytes(good)
    paths[2].write_bytes(good[:40] + b"\xff" * 40 + good[80:])
    assert image_check.check_image_files(paths[:1]) == [None]
    assert len(decoded) == 1
    # The same bytes under another name are not decoded again; a bad file always is.
    assert image_check.check_image_files(paths) == [None, None, "corrupt_image"]
    assert len(decoded) == 2
    assert hashlib.sha256(good).hexdigest() in image_check.default_cache_file().read_text()
    image_check._CACHES.clear()  # a new process reads what the last one wrote
    assert image_check.check_image_files(paths[1:2]) == [None]
    assert len(decoded) == 2
