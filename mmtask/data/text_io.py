"""Read tweet text files whatever their encoding.

About a quarter of the MVSA text files are not valid UTF-8 (they hold cp1252 or
latin-1 bytes) and they end lines in CRLF. Reading them must never crash and
must give the same string whichever way the file was written.
"""

from __future__ import annotations

import codecs
from pathlib import Path

_LATIN1_FALLBACK = "mmtask.latin1"


def _decode_as_latin1(error: UnicodeDecodeError) -> tuple[str, int]:
    # The five bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D)
    # become the latin-1 character of the same code, so decoding never fails.
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error(_LATIN1_FALLBACK, _decode_as_latin1)


def decode_text(raw: bytes) -> str:
    """Decode the bytes of a text file into a clean string.

    UTF-8 is tried first (a leading BOM is dropped); bytes that are not valid
    UTF-8 are read as cp1252, with the bytes cp1252 leaves undefined read as
    latin-1. Line ends (CRLF, CR) become LF, NUL characters (left by broken
    writers, never part of a text) are dropped and surrounding whitespace is
    stripped, so a file of NULs reads as an empty text.

    Args:
        raw: bytes. The file's content.

    Returns:
        The decoded text.

    Example:
        >>> decode_text(b"caf\\xe9\\r\\n")
        'café'
    """
    text = decode_bytes(raw).replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def decode_bytes(raw: bytes) -> str:
    """Decode bytes as UTF-8 (without BOM), else cp1252 with latin-1 for its undefined bytes.

    A UTF-16 byte order mark (as spreadsheet programs write "Unicode text")
    reads the bytes as UTF-16. Unlike `decode_text`, line ends and whitespace
    are kept, so line numbers of a data file stay right.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors=_LATIN1_FALLBACK)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors=_LATIN1_FALLBACK)


def read_text_file(path: str | Path) -> str:
    """Read a text file with `decode_text`.

    Args:
        path: str | Path. The file to read.

    Returns:
        The decoded, stripped text.
    """
    return decode_text(Path(path).read_bytes())
