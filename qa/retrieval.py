"""Hybrid retrieval: Sudachi BM25 + dense vectors, fused by reciprocal rank, scoped to the cards a question names.

Class hierarchy, as langchain-core draws its own:

    BaseRetriever (langchain_core)
        └── QARetriever  — `Document`s with card, source, section and lines in metadata
    HybridSearcher       — the search itself (numpy + FAISS), returns `Hit`s
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from qa.chunking import Chunk
from qa.errors import CardNotFoundError
from qa.glossary import AFFAIRS, FIELD_PHRASES, Expansion, expand, romanize
from qa.index import Index
from qa.reading import normalize
from qa.segment import Segmenter

RRF_K = 60
CHANGE_WEIGHT = 0.3
_CHANGE_WORDS = re.compile(r"変更|変わ|改訂|修正|追加され|削除され|change|amend|revis|added|removed")


RISK_WEIGHT = 0.6
_RISK_WORDS = re.compile(r"リスク|対策|措置|監査|教育|啓発|risk|measure|safeguard|audit")


def _where(chunk: Chunk) -> str:
    """What a chunk is about, for the structure bonus: breadcrumb, block kind and every field label in it."""
    labels = " ".join(line.split(":", 1)[0] for line in chunk.text.split("\n") if ":" in line)
    return f"{chunk.section} {chunk.label} {chunk.record_kind or ''} {labels}"


def _about_changes(text: str) -> bool:
    return bool(_CHANGE_WORDS.search(text))
CANDIDATES = 200
# Words in every report's name say nothing about which report is meant.
_GENERIC = {"事務", "関する", "評価書", "重点項目評価書", "全項目評価書", "重点", "項目", "全項目", "支給", "決定", "及び", "実施"}


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    bm25_rank: int | None = None
    dense_rank: int | None = None


@dataclass(frozen=True)
class Scope:
    """Which cards a question is about: named explicitly (filter) or by its words (inferred)."""

    cards: tuple[str, ...]
    inferred: bool


class HybridSearcher:
    def __init__(self, index: Index, segmenter: Segmenter | None = None) -> None:
        self.index = index
        self.segmenter = segmenter or Segmenter()
        self._identity = {cid: self._identity_of(card) for cid, card in index.cards.items()}
        self._change_rows = np.array([c.section.startswith("(別添") and "変更箇所" in c.section for c in index.chunks], dtype=bool)
        self._labels = [_where(c) for c in index.chunks]
        self._risk_rows = np.array([c.section.startswith("III ") for c in index.chunks], dtype=bool)

    # -- which cards ------------------------------------------------------------------------------------
    def _identity_of(self, card: Any) -> dict[str, set[str]]:
        names: set[str] = set()
        romaji: set[str] = set()
        if card.municipality:
            names.add(card.municipality)
            stem = re.sub(r"(市|町|村|区)$", "", card.municipality)
            names.add(stem)
            roman = romanize(self.segmenter.reading(stem))
            if len(roman) >= 4:
                romaji.add(roman)
        subject = " ".join(x for x in (card.title, card.affair) if x)
        words = {t for t in self.segmenter.tokens(subject) if t not in _GENERIC and len(t) >= 2}
        affairs = {a for a, phrases in AFFAIRS.items() if any(normalize(p) in normalize(subject) for p in phrases[:1])}
        return {"names": names, "romaji": romaji, "words": words, "affairs": affairs}

    def scope(self, question: str, cards: list[str] | None = None, expansion: Expansion | None = None) -> Scope:
        """Cards to search: the caller's filter, else those the question names, else all."""
        if cards:
            resolved = tuple(self.resolve(c) for c in cards)
            return Scope(tuple(dict.fromkeys(x for group in resolved for x in group)), inferred=False)
        exp = expansion or expand(question)
        q = self._mask_foreign_runs(normalize(question))
        ascii_words = re.findall(r"[a-z]{4,}", q.lower())
        # Whole words only: 支援 inside 日本学生支援機構 does not name the 子育て支援 report.
        q_tokens = {form for form, _ in self.segmenter.compound_tokens(q)}
        scores: dict[str, float] = {}
        for cid, ident in self._identity.items():
            place = any(n in q for n in ident["names"] if len(n) >= 2) or any(
                w.startswith(r[: max(4, len(r) - 1)]) for r in ident["romaji"] for w in ascii_words
            )
            subject = len(ident["affairs"] & set(exp.affairs)) * 2 + len(ident["words"] & q_tokens) * 0.5
            scores[cid] = (1.0 if place else 0.0) + subject
        best = max(scores.values(), default=0.0)
        if best <= 0:
            return Scope(tuple(self.index.card_ids), inferred=True)
        chosen = tuple(cid for cid, s in scores.items() if s >= best * 0.75 and s > 0)
        return Scope(chosen, inferred=True)

    def _mask_foreign_runs(self, q: str) -> str:
        """Hide long names that merely contain a report's word (支援 in 日本学生支援機構) from card scoping."""
        names = sorted({w for ident in self._identity.values() for key in ("names", "words") for w in ident[key] if len(w) >= 2},
                       key=len, reverse=True)

        def mask(m: re.Match[str]) -> str:
            rest = m.group(0)
            for w in names:
                rest = rest.replace(w, "")
            return " " if len(rest) >= 3 else m.group(0)

        return re.sub(r"[一-龥々ァ-ヴーA-Za-z0-9]{5,}", mask, q)

    def resolve(self, spec: str) -> tuple[str, ...]:
        """A card id, id prefix, municipality or 事務 name → card ids."""
        spec = normalize(spec).strip()
        ids = [c for c in self.index.card_ids if c == spec] or [c for c in self.index.card_ids if c.startswith(spec)]
        if not ids:
            ids = [
                cid
                for cid, card in self.index.cards.items()
                if spec and (spec in (card.municipality or "") or spec in (card.title or "") or spec in (card.affair or ""))
            ]
        if not ids:
            raise CardNotFoundError(f"no card matches {spec!r}; known cards: {', '.join(self.index.card_ids)}")
        return tuple(ids)

    # -- ranking ----------------------------------------------------------------------------------------
    def search(self, question: str, k: int = 10, cards: list[str] | None = None) -> list[Hit]:
        exp = expand(question)
        scope = self.scope(question, cards, exp)
        return self.search_in(exp, scope.cards, k)

    def search_in(self, exp: Expansion, cards: tuple[str, ...], k: int) -> list[Hit]:
        index = self.index
        n = len(index)
        if n == 0:
            return []
        allowed = np.isin(index.card_of_chunk, [index.card_ids.index(c) for c in cards])
        bm25_scores = self._bm25(exp.text, n)
        bm25_scores[~allowed] = -np.inf
        dense_scores = self._dense(exp.text, n)
        dense_scores[~allowed] = -np.inf
        fused = np.zeros(n, dtype=np.float64)
        ranks: dict[str, np.ndarray] = {}
        for name, scores in (("bm25", bm25_scores), ("dense", dense_scores)):
            order = np.argsort(-scores, kind="stable")[:CANDIDATES]
            order = order[np.isfinite(scores[order]) & (scores[order] > 0)]
            rank = np.full(n, -1)
            rank[order] = np.arange(len(order))
            ranks[name] = rank
            fused[order] += 1.0 / (RRF_K + 1 + np.arange(len(order)))
        fused += self._structure_bonus(exp, allowed)
        if not _about_changes(exp.text):
            # The change history repeats every section's name and vocabulary; it answers only questions about changes.
            fused[self._change_rows] *= CHANGE_WEIGHT
        if not _RISK_WORDS.search(exp.text):
            # III リスク対策 repeats II's headings (4. 委託, 5. 提供・移転); the facts asked about sit in II.
            fused[self._risk_rows] *= RISK_WEIGHT
        fused[~allowed] = 0
        top = [int(i) for i in np.argsort(-fused, kind="stable")[:k] if fused[i] > 0]
        return [
            Hit(
                chunk=index.chunks[i],
                score=float(fused[i]),
                bm25_rank=int(ranks["bm25"][i]) + 1 if ranks["bm25"][i] >= 0 else None,
                dense_rank=int(ranks["dense"][i]) + 1 if ranks["dense"][i] >= 0 else None,
            )
            for i in top
        ]

    def _bm25(self, text: str, n: int) -> np.ndarray:
        vocab = self.index.bm25.vocab_dict
        tokens = [t for t in self.segmenter.tokens(text) if t in vocab]
        if not tokens:
            return np.zeros(n)
        return np.asarray(self.index.bm25.get_scores(tokens), dtype=np.float64)

    def _dense(self, text: str, n: int) -> np.ndarray:
        # As a query: e5 was trained with "query: " on questions and "passage: " on what they find.
        vector = self.index.embedder.encode_query(
            [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)
        if not np.any(vector):
            return np.zeros(n)
        if n <= 50_000:
            return (self.index.embeddings @ vector[0]).astype(np.float64)
        scores = np.zeros(n)
        found, ids = self.index.dense.search(vector, min(n, CANDIDATES * 5))
        valid = ids[0] >= 0
        scores[ids[0][valid]] = found[0][valid]
        return scores

    def _structure_bonus(self, exp: Expansion, allowed: np.ndarray) -> np.ndarray:
        """Chunks whose block or section is what the question asks about (提供先, 保管, 問合せ…) rank higher."""
        bonus = np.zeros(len(self.index))
        q = normalize(exp.text)
        wanted = [t.replace("委託先", "委託") for t in exp.terms] + [p for p in FIELD_PHRASES if len(p) >= 3 and p in q]
        if not wanted:
            return bonus
        for i in np.flatnonzero(allowed):
            where = self._labels[i]
            hits = sum(1 for t in wanted if t in where)
            if hits:
                bonus[i] = hits / (RRF_K + 1) * 0.75
        return bonus


class QARetriever(BaseRetriever):
    """LangChain retriever over the hybrid index; `metadata` carries ids and locations only."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: HybridSearcher
    k: int = 10
    cards: list[str] | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun | None = None, **kwargs: Any
    ) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        cards = kwargs.get("cards", self.cards)
        return [hit_to_document(h) for h in self.searcher.search(query, k=k, cards=cards)]


def hit_to_document(hit: Hit) -> Document:
    c = hit.chunk
    return Document(
        id=c.id,
        page_content=c.text,
        metadata={
            "chunk_id": c.id,
            "card": c.card,
            "title": c.title,
            "source": c.source,
            "section": c.section,
            "line": c.line,
            "end_line": c.end_line,
            "score": hit.score,
        },
    )
