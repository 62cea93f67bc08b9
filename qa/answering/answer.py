"""What an answer is: text, whether it abstained, and verbatim citations (card, section, line, quote)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Citation:
    card: str
    title: str
    source: str  # path relative to the project root, e.g. corpora/004_f28069411e69241a.txt
    section: str  # breadcrumb
    quote: str  # a verbatim substring of the source file
    line: int  # 1-based line of the quote in the source file
    label: str = ""  # what the quote is: its block and field (提供先4 > ③提供する情報), when it is a field
    end_line: int = 0  # last line of the quote (0: unknown, the quote's own line)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Retrieved:
    """A ranked chunk the answer looked at."""

    card: str
    source: str
    section: str
    score: float
    text: str  # the unit's verbatim source lines
    line: int = 0
    end_line: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "card": self.card,
            "source": self.source,
            "section": self.section,
            "score": self.score,
            "text": self.text,
            "line": self.line,
            "end_line": self.end_line,
        }


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    retrieved: list[Retrieved] = field(default_factory=list)
    latency_ms: float = 0.0
    cards: list[str] = field(default_factory=list)  # the card(s) the answer speaks about
    kind: str = "span"  # what the answerer understood: list, yesno, number, date, span, cross, abstain

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": [r.to_dict() for r in self.retrieved],
            "latency_ms": round(self.latency_ms, 1),
        }
