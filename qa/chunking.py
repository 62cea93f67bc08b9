"""Card → chunks for retrieval: one per record, field or short run of fields, never across sections.

Each chunk's search text is prefixed with the card's name and the breadcrumb, so 「生活保護」 in a question
reaches the 生活保護 report's blocks even when the block itself never says 生活保護, and two 川崎市 reports
that share boilerplate stay apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from qa.parsing.card import SEP, Card, Field, Record, Section

CHUNKER_VERSION = "4"
MAX_CHARS = 500
OVERLAP_SENTENCES = 1
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")


@dataclass(frozen=True)
class Chunk:
    id: str
    card: str
    source: str
    title: str
    section: str  # breadcrumb
    label: str
    text: str  # what a reader sees: "label: value" lines
    line: int
    end_line: int
    record_kind: str | None = None
    record_number: int | None = None

    @property
    def search_text(self) -> str:
        """What BM25 and the embedder see: card, breadcrumb, then the content."""
        return f"{self.title}\n{self.section}\n{self.text}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


def split_text(text: str, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_SENTENCES) -> list[str]:
    """Split a long value at sentence ends (。/newline), repeating `overlap` sentences between pieces."""
    if len(text) <= max_chars:
        return [text]
    sentences = [s for s in _SENTENCE_END.split(text) if s and s.strip()]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        while len(sentence) > max_chars:  # one sentence longer than a chunk: cut it hard
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars - 50 :]
        if current and len("".join(current)) + len(sentence) > max_chars:
            pieces.append("".join(current))
            current = current[-overlap:] if overlap else []
            if len("".join(current)) + len(sentence) > max_chars:
                current = []
        current.append(sentence)
    if current:
        pieces.append("".join(current))
    return [p.strip() for p in pieces if p.strip()]


def _field_line(f: Field) -> str:
    value = f.value.replace("\n", " ").strip()
    if f.selected:
        value = f"[{'・'.join(f.selected)}] " + re.sub(r"<選択肢>.*|\s\d\).*", "", value).strip()
    label = f"{f.group} {f.label}" if f.group and f.group not in f.label else f.label
    return f"{label}: {value}" if value else label


class _Chunker:
    def __init__(self, card: Card) -> None:
        self.card = card
        self.chunks: list[Chunk] = []

    def emit(self, section: str, label: str, text: str, line: int, end_line: int, record: Record | None = None) -> None:
        for piece in split_text(text):
            self.chunks.append(
                Chunk(
                    id=f"{self.card.id}#{len(self.chunks)}",
                    card=self.card.id,
                    source=self.card.source,
                    title=self.card.label,
                    section=section,
                    label=label,
                    text=piece,
                    line=line,
                    end_line=end_line,
                    record_kind=record.kind if record else None,
                    record_number=record.number if record else None,
                )
            )

    def record(self, record: Record) -> None:
        lines = [record.title] + [_field_line(f) for f in record.fields if not f.empty]
        text = "\n".join(lines)
        if len(text) <= MAX_CHARS * 1.6:
            self.emit(record.breadcrumb, record.title, text, record.line, record.end_line, record)
            return
        # A long block: one chunk per field, each still naming the block.
        for f in record.fields:
            if not f.empty:
                self.emit(record.breadcrumb, f.label, f"{record.title}\n{_field_line(f)}", f.line, f.end_line, record)

    def section(self, section: Section) -> None:
        run: list[Field] = []

        def flush() -> None:
            if run:
                text = "\n".join(_field_line(f) for f in run)
                label = run[0].label if len(run) == 1 else f"{run[0].label} …"
                self.emit(section.breadcrumb, label, text, min(f.line for f in run), max(f.end_line for f in run))
                run.clear()

        for f in section.fields:
            if f.empty and not f.value:
                continue
            size = len(_field_line(f))
            if size > MAX_CHARS // 2:
                flush()
                self.emit(section.breadcrumb, f.label, _field_line(f), f.line, f.end_line)
                continue
            if run and (sum(len(_field_line(x)) for x in run) + size > MAX_CHARS or f.group != run[-1].group):
                flush()
            run.append(f)
        flush()
        for record in section.records:
            self.record(record)

    def metadata(self) -> None:
        """The cover page as one chunk, so 公表日 and 評価実施機関名 questions have something to find."""
        meta = self.card
        parts = [
            ("評価書番号", meta.number),
            ("評価書名", meta.title),
            ("評価実施機関名", meta.evaluator),
            ("公表日", meta.published),
            ("評価書の種類", meta.kind),
        ]
        text = "\n".join(f"{k}: {v if v else '記載なし'}" for k, v in parts)
        self.emit("表紙", "表紙 評価書番号・評価書名・評価実施機関・公表日・評価書の種類", text, 1, min(40, max(1, _cover_end(meta))))


def _cover_end(card: Card) -> int:
    first = min((s.line for s in card.sections), default=40)
    return max(1, first - 1)


def chunk_card(card: Card) -> list[Chunk]:
    chunker = _Chunker(card)
    chunker.metadata()
    for section in card.walk():
        chunker.section(section)
    return chunker.chunks


def iter_chunks(cards: list[Card]) -> Iterator[Chunk]:
    for card in cards:
        yield from chunk_card(card)


__all__ = ["CHUNKER_VERSION", "Chunk", "SEP", "chunk_card", "iter_chunks", "split_text"]
