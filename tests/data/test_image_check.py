import pytest
from PIL import Image

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
