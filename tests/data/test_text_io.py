import pytest

from mmtask.data.text_io import decode_text, read_text_file


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("naïve café ☕".encode(), "naïve café ☕"),
        (b"\xef\xbb\xbfhello", "hello"),
        (b"caf\xe9 \x93quoted\x94\r\n", "café “quoted”"),
        (b"bad \x81 byte \xe9", "bad \x81 byte é"),
        (b"  line one\r\nline two\rline three\r\n\r\n", "line one\nline two\nline three"),
        (b"", ""),
    ],
    ids=["utf8", "utf8_bom", "cp1252", "cp1252_undefined_byte", "line_ends", "empty"],
)
def test_decode_text(raw, expected):
    assert decode_text(raw) == expected


def test_read_text_file(tmp_path):
    path = tmp_path / "1.txt"
    path.write_bytes(b"\xe9t\xe9 \x96 summer\r\n")
    assert read_text_file(path) == "été – summer"
    assert read_text_file(str(path)) == "été – summer"
