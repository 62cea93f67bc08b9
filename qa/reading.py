"""Read a report file into a `SourceText`: the raw text, its lines, and a normalised view for matching.

Citations must be verbatim substrings of the file, while matching needs NFKC (004 writes ２５ and 　).
So the normalised view is built character by character with a map back to raw offsets: any span found
in the normalised line can be cut from the raw line exactly.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusFileError

log = logging.getLogger(__name__)

# Encodings real municipal files come in. Order matters only for ties; detection decides.
JAPANESE_ENCODINGS = ("utf_8", "cp932", "euc_jp", "shift_jis", "iso2022_jp")
MAX_FILE_BYTES = 50 * 1024 * 1024
# Circled numbers mark the template's fields (①法令上の根拠); NFKC would turn them into plain digits
# and make "①法令上の根拠" indistinguishable from a numbered paragraph.
_KEEP = {chr(c) for c in range(0x2460, 0x2474)}


def normalize_char(ch: str) -> str:
    if ch in _KEEP:
        return ch
    if ch in "\u301c\uff5e":  # wave dashes: keep one form so 2～5 and 2〜5 match
        return "~"
    return unicodedata.normalize("NFKC", ch)


def normalize(text: str) -> str:
    """The matching form of a text: NFKC per character, circled numbers kept."""
    return "".join(normalize_char(ch) for ch in text)


def normalize_with_map(raw: str) -> tuple[str, list[int]]:
    """Normalise `raw` and return, for each normalised character, the raw index it came from."""
    out: list[str] = []
    back: list[int] = []
    for i, ch in enumerate(raw):
        n = normalize_char(ch)
        out.append(n)
        back.extend([i] * len(n))
    return "".join(out), back


@dataclass
class SourceText:
    """One decoded report file. Line numbers are 1-based, as an editor shows them."""

    path: Path
    raw: str
    encoding: str
    sha256: str
    lines: list[str] = field(default_factory=list)
    norm_lines: list[str] = field(default_factory=list)
    _maps: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = self.raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if not self.norm_lines:
            self.norm_lines = [normalize(line) for line in self.lines]

    @property
    def line_count(self) -> int:
        return len(self.lines)

    def raw_line(self, lineno: int) -> str:
        return self.lines[lineno - 1]

    def raw_span(self, lineno: int, norm_start: int, norm_end: int) -> str:
        """The raw text of line `lineno` behind normalised characters [norm_start, norm_end)."""
        raw = self.lines[lineno - 1]
        back = self._maps.get(lineno)
        if back is None:
            _, back = normalize_with_map(raw)
            self._maps[lineno] = back
        if norm_start >= norm_end or norm_start >= len(back):
            return ""
        end = min(norm_end, len(back)) - 1
        return raw[back[norm_start] : back[end] + 1]

    def find_quote(self, needle: str, first: int = 1, last: int | None = None) -> tuple[int, str] | None:
        """Find normalised `needle` within lines [first, last] and return (line, verbatim raw quote)."""
        needle = normalize(needle).strip()
        if not needle:
            return None
        last = min(last or self.line_count, self.line_count)
        for lineno in range(max(first, 1), last + 1):
            pos = self.norm_lines[lineno - 1].find(needle)
            if pos >= 0:
                return lineno, self.raw_span(lineno, pos, pos + len(needle))
        return None


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """Decode bytes of a Japanese text file, detecting the encoding from the content."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf_8_sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf_16"
    try:
        return data.decode("utf-8"), "utf_8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8: pick the legacy encoding that decodes cleanly with the most Japanese characters.
    best: tuple[float, str, str] | None = None
    for enc in JAPANESE_ENCODINGS[1:]:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        score = _japanese_ratio(text)
        if best is None or score > best[0]:
            best = (score, enc, text)
    if best is None or best[0] < 0.05:
        try:
            from charset_normalizer import from_bytes

            match = from_bytes(data).best()
        except ImportError:  # pragma: no cover - charset-normalizer is a declared dependency
            match = None
        if match is None or match.encoding is None:
            raise CorpusFileError(path, "not text in UTF-8, CP932/Shift_JIS or EUC-JP; skipped")
        return str(match), match.encoding
    return best[2], best[1]


def _japanese_ratio(text: str) -> float:
    if not text:
        return 0.0
    jp = sum(1 for ch in text if "\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff")
    return jp / len(text)


def _looks_binary(data: bytes) -> bool:
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return control > max(8, len(sample) // 100)


def read_source(path: Path | str) -> SourceText:
    """Read one corpus file; raise `CorpusFileError` saying why when it is not a readable report."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CorpusFileError(path, f"{size} bytes is over the {MAX_FILE_BYTES} byte limit; skipped")
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusFileError(path, f"cannot be read ({exc.strerror or exc}); skipped") from exc
    if not data.strip():
        raise CorpusFileError(path, "empty file; skipped")
    if _looks_binary(data):
        raise CorpusFileError(path, "binary file, not text; skipped")
    text, encoding = decode(data, path)
    if not text.strip():
        raise CorpusFileError(path, "no text after decoding; skipped")
    return SourceText(path=path, raw=text, encoding=encoding, sha256=hashlib.sha256(data).hexdigest())


def content_hash(path: Path) -> str:
    """The hash that decides whether a card must be re-indexed."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
