"""What an answer is built from: a piece of evidence with its place in the card, and the limits on its text."""

from __future__ import annotations

from dataclasses import dataclass

NOT_STATED = {"ja": "評価書に記載が見つかりません。", "en": "Not stated in the report."}
MAX_EVIDENCE = 240
MAX_LIST = 40


@dataclass
class Evidence:
    """One part of an answer: the text shown, and where it stands in the card."""

    text: str
    section: str
    label: str
    line: int
    end_line: int
    strength: float = 0.0


def trim(text: str, limit: int) -> str:
    """Shorten at a sentence or word boundary, never mid-word."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in ("。", "、", " ", "・"):
        pos = cut.rfind(mark)
        if pos >= limit * 0.6:
            return cut[: pos + 1].rstrip() + "…"
    return cut + "…"
