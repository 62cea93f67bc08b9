"""Read a report file into a `SourceText`: the raw text, its lines, and a normalised view for matching.

Citations must be verbatim substrings of the file, while matching needs NFKC (004 writes ２５ and 　).
So the normalised view is built character by character with a map back to raw offsets: any span found
in the normalised line can be cut from the raw line exactly.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusFileError

# The characters of a name or a noun (kanji, katakana, Latin letters, digits): what singles a block or a passage
# out, and where one word ends and the next begins.
NAME_CHARS = "一-龥々ァ-ヴーA-Za-z0-9"

log = logging.getLogger(__name__)

# Encodings real municipal files come in. Order matters only for ties; detection decides.
# cp932 and euc_jis_2004 carry the ① and Ⅱ of the forms, which plain shift_jis/euc_jp lack.
JAPANESE_ENCODINGS = ("utf_8", "cp932", "euc_jp", "euc_jis_2004", "shift_jis", "shift_jis_2004")
# UTF-16 (with or without a byte-order mark) and UTF-32 with one are read too.
_BOMS = (
    (b"\xef\xbb\xbf", "utf_8_sig"),
    (b"\xff\xfe\x00\x00", "utf_32"),
    (b"\x00\x00\xfe\xff", "utf_32"),
    (b"\xff\xfe", "utf_16"),
    (b"\xfe\xff", "utf_16"),
)
_ISO2022_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(B")
# A file in a legacy encoding may hold a few bytes that do not decode (a stray byte, a cut file):
# accept it when at most this share of characters had to be replaced.
MAX_REPLACED_RATIO = 0.002
MAX_FILE_BYTES = 50 * 1024 * 1024
# Circled numbers mark the template's fields (①法令上の根拠); NFKC would turn them into plain digits
# and make "①法令上の根拠" indistinguishable from a numbered paragraph.
_KEEP = {chr(c) for c in range(0x2460, 0x2474)}
# Markup whose content is code or styling, never text of the report (script, style and the like, and
# comments): the parser drops it from values and no quote is cut from inside it. Unclosed: to the end.
NOT_CONTENT = re.compile(
    r"<(script|style|template|iframe|object|noembed|noframes|xmp)\b[^>]*>.*?(?:</\1\s*>|$)|<!--.*?(?:-->|$)",
    re.I | re.S,
)
_VOICING = {"\u3099", "\u309a"}  # combining (semi-)voiced sound marks, what NFKC makes of ﾞ and ﾟ


@functools.lru_cache(maxsize=8192)
def normalize_char(ch: str) -> str:
    if ch in _KEEP:
        return ch
    if ch in "\u301c\uff5e":  # wave dashes: keep one form so 2～5 and 2〜5 match
        return "~"
    return unicodedata.normalize("NFKC", ch)


class _Table(dict):  # type: ignore[type-arg]
    """str.translate table filled on first use of each character."""

    def __missing__(self, code: int) -> str:
        value = self[code] = normalize_char(chr(code))
        return value


_TABLE = _Table()


def _normalized(raw: str) -> tuple[list[str], list[int], list[int]]:
    """Normalised characters with, for each, the raw span [start, end) it came from.

    Per character, so every normalised character maps back into the raw text; a voiced sound mark is
    then composed with the kana before it (ｶﾞ → ガ, as NFKC of the whole text would do).
    """
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(raw):
        for n in normalize_char(ch):
            if n in _VOICING and out:
                composed = unicodedata.normalize("NFC", out[-1] + n)
                if len(composed) == 1:
                    out[-1] = composed
                    ends[-1] = i + 1
                    continue
            out.append(n)
            starts.append(i)
            ends.append(i + 1)
    return out, starts, ends


def normalize(text: str) -> str:
    """The matching form of a text: NFKC per character, circled numbers kept."""
    if text.isascii():
        return text
    out = text.translate(_TABLE)
    if "\u3099" in out or "\u309a" in out:  # compose as _normalized does
        return "".join(_normalized(text)[0])
    return out


def normalize_with_map(raw: str) -> tuple[str, list[int]]:
    """Normalise `raw` and return, for each normalised character, the raw index it came from."""
    out, starts, _ = _normalized(raw)
    return "".join(out), starts


@dataclass
class SourceText:
    """One decoded report file. Line numbers are 1-based, as an editor shows them."""

    path: Path
    raw: str
    encoding: str
    sha256: str
    lines: list[str] = field(default_factory=list)
    norm_lines: list[str] = field(default_factory=list)
    _maps: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict, repr=False)

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
        spans = self._maps.get(lineno)
        if spans is None:
            _, starts, ends = _normalized(raw)
            spans = self._maps[lineno] = (starts, ends)
        starts, ends = spans
        norm_start = max(norm_start, 0)
        if norm_start >= norm_end or norm_start >= len(starts):
            return ""
        end = min(norm_end, len(starts)) - 1
        return raw[starts[norm_start] : ends[end]]

    def find_quote(self, needle: str, first: int = 1, last: int | None = None) -> tuple[int, str] | None:
        """Find normalised `needle` within lines [first, last] and return (line, verbatim raw quote)."""
        needle = normalize(needle).strip()
        if not needle:
            return None
        last = min(last or self.line_count, self.line_count)
        for lineno in range(max(first, 1), last + 1):
            norm = self.norm_lines[lineno - 1]
            pos = norm.find(needle)
            while pos >= 0:
                if not self._in_markup(lineno, pos, pos + len(needle)):
                    return lineno, self.raw_span(lineno, pos, pos + len(needle))
                pos = norm.find(needle, pos + 1)
        return None

    def _in_markup(self, lineno: int, norm_start: int, norm_end: int) -> bool:
        """Whether normalised characters [norm_start, norm_end) of a line touch script/style/comment markup."""
        raw = self.lines[lineno - 1]
        if "<" not in raw:
            return False
        spans = [m.span() for m in NOT_CONTENT.finditer(raw)]
        if not spans:
            return False
        self.raw_span(lineno, norm_start, norm_end)  # fills the map
        starts, ends = self._maps[lineno]
        start, end = starts[norm_start], ends[min(norm_end, len(ends)) - 1]
        return any(start < b and a < end for a, b in spans)


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """Decode bytes of a Japanese text file, detecting the encoding from the content (never the name)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _strip_bom(_decode_cut(data, encoding)), encoding
            except UnicodeDecodeError as exc:
                why = f"starts with a {encoding} byte-order mark but is not {encoding} ({exc.reason}); skipped"
                raise CorpusFileError(path, why) from exc
    utf16 = _utf16_codec(data)
    if utf16 is not None:
        try:
            return _decode_cut(data, utf16), utf16
        except UnicodeDecodeError as exc:
            raise CorpusFileError(path, f"reads as {utf16} without a byte-order mark but is not ({exc.reason}); skipped") from exc
    if data.isascii() and any(esc in data for esc in _ISO2022_ESCAPES):
        try:
            return _decode_cut(data, "iso2022_jp"), "iso2022_jp"
        except UnicodeDecodeError:
            pass
    try:
        return _decode_cut(data, "utf_8"), "utf_8"
    except UnicodeDecodeError:
        pass
    # UTF-8 with a stray byte or two: legacy encodings would decode it "cleanly" into mojibake.
    text = data.decode("utf_8", errors="replace")
    bad = text.count("\ufffd")
    if bad <= max(1, len(text) * MAX_REPLACED_RATIO) and _japanese_ratio(text) >= 0.05:
        log.warning("%s: %d undecodable byte(s) replaced (read as utf_8)", path.name, bad)
        return text, "utf_8"
    # Not UTF-8: pick the legacy encoding that decodes cleanly with the most Japanese characters.
    best: tuple[float, str, str] | None = None
    for enc in JAPANESE_ENCODINGS[1:]:
        try:
            text = _decode_cut(data, enc)
        except UnicodeDecodeError:
            continue
        score = _japanese_ratio(text)
        if best is None or score > best[0]:
            best = (score, enc, text)
    if best is not None and best[0] >= 0.05:
        return best[2], best[1]
    # Nothing decodes cleanly: accept the encoding that needs the fewest replacements, if they are rare.
    tolerant: tuple[int, str, str] | None = None
    for enc in JAPANESE_ENCODINGS:
        text = data.decode(enc, errors="replace")
        bad = text.count("\ufffd")
        if tolerant is None or bad < tolerant[0]:
            tolerant = (bad, enc, text)
    if tolerant is not None:
        bad, enc, text = tolerant
        if bad <= max(1, len(text) * MAX_REPLACED_RATIO) and _japanese_ratio(text) >= 0.05:
            log.warning("%s: %d undecodable byte(s) replaced (read as %s)", path.name, bad, enc)
            return text, enc
    try:
        from charset_normalizer import from_bytes

        match = from_bytes(data).best()
    except ImportError:  # pragma: no cover - charset-normalizer is a declared dependency
        match = None
    if match is None or match.encoding is None or _japanese_ratio(str(match)) < 0.05:
        raise CorpusFileError(path, "not text in UTF-8, CP932/Shift_JIS or EUC-JP; skipped")
    return str(match), match.encoding


def _decode_cut(data: bytes, encoding: str) -> str:
    """Decode strictly, except that a multi-byte character cut off at the very end (a cut file) is dropped."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.start > 0:
            return data[: exc.start].decode(encoding)
        raise


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _japanese_ratio(text: str) -> float:
    """Share of kana and kanji among the non-space characters; half-width kana count against (mojibake)."""
    chars = [ch for ch in text if not ch.isspace()]
    if not chars:
        return 0.0
    jp = sum(1 for ch in chars if "\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff")
    halfwidth = sum(1 for ch in chars if "\uff61" <= ch <= "\uff9f")
    return (jp - halfwidth) / len(chars)


def _utf16_codec(data: bytes) -> str | None:
    """"utf_16_le"/"utf_16_be" for UTF-16 text without a byte-order mark, else None.

    Told by its NUL bytes (ASCII in UTF-16 is a character and a NUL; a text with none but NULs would be
    read as binary): the sample must decode strictly, with no surrogate half, into printable characters
    that are nearly all ASCII or Japanese. Bytes of a binary file decoded as UTF-16 are neither.
    """
    sample = data[:65536]
    if len(sample) < 4 or not sample.count(0):
        return None
    best: tuple[float, str] | None = None
    for codec in ("utf_16_le", "utf_16_be"):
        try:
            text = _decode_cut(sample, codec)
        except UnicodeDecodeError:
            continue
        chars = [ch for ch in text if not ch.isspace()]
        if not chars or any(not ch.isprintable() and not ch.isspace() for ch in text[:2000]):
            continue
        plain = sum(1 for ch in chars if " " < ch < "\x7f" or "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"
                    or "\u2000" <= ch <= "\u27ff")
        share = plain / len(chars)
        if share >= 0.9 and (best is None or share > best[0]):
            best = (share, codec)
    return best[1] if best else None


def _looks_binary(data: bytes) -> bool:
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return control > max(8, len(sample) // 100)


def outside_folder(path: Path, folder: Path) -> Path | None:
    """Where `path` really leads when that is outside `folder` (a symbolic link out of it), else None.

    A corpus file must be a file of the corpus folder: a link to /etc/passwd or to another project's
    reports is refused, so that neither the index nor a quoted source can reveal a file outside it.
    """
    try:
        target = path.resolve()
        target.relative_to(folder.resolve())
    except ValueError:
        return target
    except (OSError, RuntimeError):  # a link loop
        return path
    return None


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
        what = "no text at all" if not data else "only white space"
        raise CorpusFileError(path, f"empty file ({what}); skipped")
    if not data.startswith(tuple(bom for bom, _ in _BOMS)) and _looks_binary(data) and _utf16_codec(data) is None:
        raise CorpusFileError(path, "binary file, not text; skipped")
    text, encoding = decode(data, path)
    if not text.strip():
        raise CorpusFileError(path, "no text after decoding; skipped")
    return SourceText(path=path, raw=text, encoding=encoding, sha256=hashlib.sha256(data).hexdigest())


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 4 MiB blocks (reports, model files, uploads)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def content_hash(path: Path) -> str:
    """The hash that decides whether a card must be re-indexed."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
