"""Loader for the shared protocol vectors in firmware/vectors/*.tsv."""

from __future__ import annotations

from pathlib import Path
import re

VECTORS_DIR = Path(__file__).resolve().parents[2] / "firmware" / "vectors"

_ESCAPE_RE = re.compile(rb"\\(x[0-9a-f]{2}|\\)")


def unescape(text: str) -> bytes:
    r"""Decode a text column: `\xNN` is one byte, `\\` a backslash, nothing else is special."""

    def replace(match: re.Match[bytes]) -> bytes:
        token = match.group(1)
        return b"\\" if token == b"\\" else bytes([int(token[1:], 16)])

    return _ESCAPE_RE.sub(replace, text.encode("utf-8"))


def load(name: str) -> list[tuple[str, list[str]]]:
    """Return (section, columns) per vector line; a section starts at a `#@ name` line."""
    rows: list[tuple[str, list[str]]] = []
    section = ""
    for line in (VECTORS_DIR / name).read_text("utf-8").splitlines():
        if line.startswith("#@"):
            section = line[2:].strip()
        elif line and not line.startswith("#"):
            rows.append((section, line.split("\t")))
    return rows


def fields(text: str) -> dict[str, str]:
    """Parse a `key=value key=value` column (values use the text escapes)."""
    pairs = (item.partition("=") for item in text.split(" ") if item)
    return {key: unescape(value).decode("utf-8") for key, _, value in pairs}
