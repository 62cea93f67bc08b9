"""Japanese word segmentation with SudachiPy (sudachidict-core), shared by BM25 and the embedder.

Search terms are Sudachi *normalized forms* (取扱い and 取り扱い both become 取り扱い,
する becomes 為る), so spelling variants in the reports and in questions meet. Split mode C keeps
compounds such as 特定個人情報 whole for precise matches; the mode-A units of every compound are
added as well, so a question saying 個人 or 保護 still reaches a report that wrote 特定個人情報 or
生活保護.

The dictionary loads on first use, not at import. A sudachipy Tokenizer is not thread-safe, so each
thread gets its own (they share the one Dictionary).
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import threading
import unicodedata
from typing import Any, NamedTuple

# Sudachi refuses inputs over 49149 bytes; stay well below it so a piece never trips the limit.
MAX_PIECE_BYTES = 16_000
_DROP_POS = frozenset({"補助記号", "空白"})
_SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?]+[」』）)\]〕】]*\n*|\n+|$)")
# A natural place to cut a long text for Sudachi: just after a full stop or a newline.
_CUT = re.compile(r"(?<=[。\n])")


class SurfaceToken(NamedTuple):
    """One mode-C word with its character span in the tokenised text, for highlighting."""

    surface: str
    normalized: str
    start: int
    end: int


def dictionary_version() -> str:
    """The installed sudachidict-core version; an index records it since tokens change with it."""
    try:
        return importlib.metadata.version("sudachidict-core")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def sentences(text: str) -> list[str]:
    """Split `text` after 。！？ and newlines, each delimiter staying with its sentence.

    Closing brackets after a full stop (「…。」) stay with the sentence too. Nothing is dropped, so
    "".join(sentences(text)) == text, which lets the chunker map pieces back to offsets.
    """
    return [s for s in _SENTENCE.findall(text) if s]


def is_symbolic(token: str) -> bool:
    """True for a token made only of punctuation, symbols, spaces or control characters."""
    return all(unicodedata.category(ch)[0] in "PSZC" for ch in token)


def _clean(form: str) -> str:
    return form.lower() if form.isascii() else form


def _pieces(text: str, limit: int = MAX_PIECE_BYTES) -> list[tuple[int, str]]:
    """Cut `text` into (offset, piece) parts under `limit` UTF-8 bytes, at 。/newlines when possible."""
    if len(text.encode("utf-8")) <= limit:
        return [(0, text)] if text else []
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    size = 0
    start = pos = 0

    def flush() -> None:
        nonlocal buf, size, start
        if buf:
            out.append((start, "".join(buf)))
        buf, size, start = [], 0, pos

    for part in _CUT.split(text):
        nbytes = len(part.encode("utf-8"))
        if size + nbytes > limit:
            flush()
        if nbytes > limit:  # one long run with no full stop: cut it by characters (4 bytes at most each)
            step = limit // 4
            for i in range(0, len(part), step):
                out.append((pos + i, part[i : i + step]))
            pos += len(part)
            start = pos
            continue
        buf.append(part)
        size += nbytes
        pos += len(part)
    flush()
    return out


class Segmenter:
    """Sudachi tokenisation into search terms; cheap to create, loads the dictionary on first use."""

    def __init__(self, dict_name: str = "core") -> None:
        self.dict_name = dict_name
        self._dictionary: Any = None
        self._drop: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def _tokenizer(self) -> Any:
        tok = getattr(self._local, "tokenizer", None)
        if tok is None:
            from sudachipy import Dictionary, SplitMode

            with self._lock:
                if self._dictionary is None:
                    dictionary = Dictionary(dict=self.dict_name)
                    self._drop = dictionary.pos_matcher(lambda pos: pos[0] in _DROP_POS)
                    self._dictionary = dictionary
                tok = self._dictionary.create(mode=SplitMode.C)
            self._local.tokenizer = tok
            self._local.mode_a = SplitMode.A
        return tok

    def _morphemes(self, text: str) -> Any:
        """Yield (offset of piece, morpheme) over `text`, cut into pieces Sudachi accepts."""
        tok = self._tokenizer()
        for offset, piece in _pieces(text):
            for m in tok.tokenize(piece):
                yield offset, m

    def compound_tokens(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """Each mode-C word of `text` as (normalized form, its mode-A normalized forms if it splits).

        Same cleaning as `tokens`; the grouping lets the embedder prefer the whole compound and fall
        back to its parts only when the compound has no vector.
        """
        text = unicodedata.normalize("NFKC", text)
        if not text.strip():
            return []
        out: list[tuple[str, tuple[str, ...]]] = []
        self._tokenizer()
        drop, mode_a = self._drop, self._local.mode_a
        for _, m in self._morphemes(text):
            if drop(m):
                continue
            form = m.normalized_form()
            if is_symbolic(form):
                continue
            subs = m.split(mode_a)
            parts: tuple[str, ...] = ()
            if len(subs) > 1:
                parts = tuple(
                    _clean(f) for s in subs if not drop(s) and not is_symbolic(f := s.normalized_form())
                )
            out.append((_clean(form), parts))
        return out

    def tokens(self, text: str) -> list[str]:
        """Search terms of `text`: mode-C normalized forms, each compound followed by its mode-A units.

        NFKC first (２５ → 25), ASCII lower-cased, punctuation and spaces dropped, numbers kept.
        """
        out: list[str] = []
        for form, parts in self.compound_tokens(text):
            out.append(form)
            out.extend(parts)
        return out

    def reading(self, text: str) -> str:
        """The katakana reading of `text` (横浜 → ヨコハマ), mode-C words joined, punctuation dropped.

        Lets a romanised place name in a question (yokohama) be matched to the card's kanji name.
        """
        text = unicodedata.normalize("NFKC", text)
        if not text.strip():
            return ""
        self._tokenizer()
        drop = self._drop
        return "".join(m.reading_form() for _, m in self._morphemes(text) if not drop(m))

    def surface_tokens(self, text: str, normalize: bool = True) -> list[SurfaceToken]:
        """Mode-C words of `text` with character offsets, punctuation and spaces dropped.

        With `normalize` the offsets index `unicodedata.normalize("NFKC", text)`; pass
        normalize=False when the caller has already normalised the text its way and wants offsets
        into that very string.
        """
        if normalize:
            text = unicodedata.normalize("NFKC", text)
        if not text.strip():
            return []
        self._tokenizer()
        drop = self._drop
        out: list[SurfaceToken] = []
        for offset, m in self._morphemes(text):
            if drop(m):
                continue
            form = m.normalized_form()
            if is_symbolic(form):
                continue
            out.append(SurfaceToken(m.surface(), _clean(form), offset + m.begin(), offset + m.end()))
        return out


@functools.cache
def default_segmenter() -> Segmenter:
    """One Segmenter per process, so every user shares a single loaded dictionary."""
    return Segmenter()
