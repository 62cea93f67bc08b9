"""Hybrid retrieval: Sudachi BM25 + dense vectors, fused, with priors from the form's structure, scoped to cards.

Class hierarchy, as langchain-core draws its own:

    BaseRetriever (langchain_core)
        └── QARetriever  — `Document`s with card, source, section and lines in metadata
    HybridSearcher       — the search itself (numpy + FAISS), returns `Hit`s

The fusion weights, the structure bonus and the down-weighting of the change history and of III リスク対策 are
numbers fitted on a stated split of the gold questions (qa/fitting.py → qa/data/weights.json), not typed here.
The fused candidates are then ordered by the learned linear ranker of qa/ranking.py (qa/data/ranker.json, fitted
by `qa fit-ranker` on eval/gold.jsonl only); `HybridSearcher(..., ranker=None)` keeps the fused order.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from qa.catalog import catalog
from qa.chunking import Chunk
from qa.embeddings import bf16_matmuls, encode_queries, model_id, precision
from qa.errors import CardNotFoundError
from qa.index import Index
from qa.parsing.card import label_key
from qa.question import Question, glossed_words, is_english, understand
from qa.ranking import Candidates, LinearRanker, UnitFacts, features
from qa.reading import normalize
from qa.segment import Segmenter

WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "weights.json"
DEFAULT_WEIGHTS: dict[str, float] = {
    "fusion": 1.0,  # 1: weighted fusion of scaled scores; 0: reciprocal-rank fusion
    "w_bm25_share": 0.4,
    "bonus_scale": 0.1,
    "rrf_k": 60.0,
    "w_bm25": 1.0,
    "w_dense": 1.0,
    "w_struct": 0.75,
    "w_kind": 0.5,
    "change_weight": 0.3,
    "risk_weight": 0.6,
    "field_lexical": 1.0,
    "field_dense": 1.0,
    "field_dense_floor": 0.80,
    "abstain_below_z": 0.0,
    "field_route": 0.5,
    "narrow_min": 3.0,
    "unexplained_idf": 4.0,
    "second_passage": 0.85,
    "passage_units": 3.0,
    "passage_chars": 300.0,
    # The passage reader's sentence score (qa/answering/reader.py `score_sentences`).
    "passage_pool": 6.0,
    "p_unit": 1.0,
    "p_overlap": 1.0,
    "p_type": 0.5,
    "p_novel": 0.5,
    "p_heading": 0.5,
    # A yes/no statement overrides the first evidence when it holds this share of the question's weight.
    "statement_share": 0.25,
    # A question with a word of change reads the change history when its best row is this close (cosine) to
    # the best passage of the current text; -1: always.
    "change_margin": 0.005,
}
CANDIDATES = 200


def load_weights(path: Path = WEIGHTS_PATH) -> dict[str, float]:
    """Fitted weights (JSON, never code); defaults for any the file lacks."""
    weights = dict(DEFAULT_WEIGHTS)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        weights.update({k: float(v) for k, v in data.get("weights", {}).items()})
    except (OSError, ValueError):
        pass
    return weights


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    bm25_rank: int | None = None
    dense_rank: int | None = None
    dense: float = 0.0  # cosine of the question to the unit
    bm25: float = 0.0


@dataclass(frozen=True)
class Scope:
    cards: tuple[str, ...]
    inferred: bool  # True: the question names no report (all are searched)
    unknown_place: str | None = None


@dataclass
class Query:
    """What retrieval needs of an analysed question."""

    text: str
    cards: tuple[str, ...]
    # label key → (the section word the catalog places it in, or None; how much the question asks about it)
    labels: dict[str, list[tuple[str | None, float]]] = field(default_factory=dict)
    kinds: dict[str, float] = field(default_factory=dict)  # record kind → how much
    changes: bool = False
    risks: bool = False
    vector: np.ndarray | None = None
    only_kind: str | None = None  # search only the blocks of this kind (the change history)
    question: str = ""  # the question's words, and an English one's glossary words (the ranker's coverage reads them)
    answer_type: str = "span"
    record_numbers: tuple[int, ...] = ()


_DEFAULT_RANKER = object()


class HybridSearcher:
    """`ranker`: the learned ranker of qa/data/ranker.json by default; None ranks by the fused score alone.
    `query_embedder`: the model a question is embedded with; None, the index's own (benchmarks/retrieval.py
    times the fp32 variant beside it)."""

    def __init__(self, index: Index, segmenter: Segmenter | None = None, weights: dict[str, float] | None = None,
                 ranker: Any = _DEFAULT_RANKER, query_embedder: Any = None) -> None:
        self.index = index
        self.query_embedder = query_embedder or index.embedder
        self.segmenter = segmenter or Segmenter()
        self.weights = weights or load_weights()
        self.ranker: LinearRanker | None = LinearRanker.from_file() if ranker is _DEFAULT_RANKER else ranker
        self._facts: UnitFacts | None = None
        self.catalog = catalog()
        chunks = index.chunks
        self._change_rows = np.array([c.is_change_history for c in chunks], dtype=bool)
        self._risk_rows = np.array([c.section.startswith(("III ", "IV ")) and "リスク" in c.section for c in chunks], dtype=bool)
        self._label_keys = [
            {label_key(line.split(":", 1)[0].split(" ")[-1]) for line in c.text.split("\n") if ":" in line}
            | {label_key(c.label)}
            for c in chunks
        ]
        self._kinds = [c.record_kind for c in chunks]
        # Which units hold each label and each block kind, so a question's structure is scored on those alone.
        self._units_with_label: dict[str, list[int]] = {}
        for i, keys in enumerate(self._label_keys):
            for key in keys:
                self._units_with_label.setdefault(key, []).append(i)
        kinds = np.array([k or "" for k in self._kinds])
        self._units_of_kind = {k: np.flatnonzero(kinds == k) for k in set(self._kinds) if k}
        self._field_vectors: tuple[np.ndarray, np.ndarray] | None = None
        self._query_cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Ready for a stream of questions: the question path traced and frozen (qa.query_graph, 1–2 s,
        about half the time per question after) and the catalog's field names embedded."""
        from qa.query_graph import compile_queries

        compile_queries(self.query_embedder)
        self.field_vectors()

    # -- the question -----------------------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        """The question as a query vector; remembered, since a question is often asked again (and fitted)."""
        cached = self._query_cache.get(text)
        if cached is not None:
            return cached
        vector = self._embed_query(text)
        if len(self._query_cache) > 4096:
            self._query_cache.clear()
        self._query_cache[text] = vector
        return vector

    def forget_questions(self) -> None:
        """Empty the cache of question vectors (a benchmark times every question's embedding)."""
        self._query_cache.clear()

    def _embed_query(self, text: str) -> np.ndarray:
        return encode_queries(self.query_embedder, [text])[0]

    def field_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every name of every catalog field embedded as a query (a name is asked like a question), and the
        field each row belongs to. Built once per model and catalog, kept as .npy beside the model cache."""
        with self._lock:
            if self._field_vectors is None:
                self._field_vectors = self._load_or_embed_names()
            return self._field_vectors

    def _load_or_embed_names(self) -> tuple[np.ndarray, np.ndarray]:
        import hashlib

        from qa.embeddings import default_cache_dir

        names: list[str] = []
        owner: list[int] = []
        for i, spec in enumerate(self.catalog.fields):
            for name in dict.fromkeys((*spec.labels, *spec.ja, *spec.en)):
                names.append(normalize(name))
                owner.append(i)
        way = f"{model_id(self.query_embedder)}\0{precision(self.query_embedder)}\0{bf16_matmuls()}"
        digest = hashlib.sha256(("\n".join(names) + "\0" + way).encode("utf-8")).hexdigest()[:16]
        path = default_cache_dir() / f"catalog-names-{digest}.npy"
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape[0] == len(names):
                return vectors.astype(np.float32), np.asarray(owner)
        except (OSError, ValueError):
            pass
        vectors = np.vstack([self._embed_query(n) for n in names]) if len(names) < 8 else self._embed_queries(names)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs the embedding again next time
        return vectors, np.asarray(owner)

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        return encode_queries(self.query_embedder, texts, batch_size=64)

    def dense_text(self, text: str) -> str:
        """What is embedded for a question: the question; an English one followed by its words in the reports'
        Japanese (the catalog's glossary), as its BM25 query is, so that e5 meets the passages' own words."""
        norm = normalize(text)
        words = glossed_words(norm.lower(), self.catalog) if is_english(norm) else ()
        return f"{norm} ({' '.join(words)})" if words else norm

    def understand(self, text: str, cards: list[str] | None = None) -> tuple[Question, np.ndarray]:
        only = tuple(cid for c in cards for cid in self.resolve(c)) if cards else None
        vector = self.embed_query(self.dense_text(text))
        names, owner = self.field_vectors()
        sims = names @ vector
        best = np.full(len(self.catalog.fields), -1.0)
        np.maximum.at(best, owner, sims)
        dense = {f.id: float(s) for f, s in zip(self.catalog.fields, best)}
        q = understand(text, self.index.cards, only=only, dense_scores=dense, weights=self.weights)
        return q, vector

    def query_for(self, q: Question, vector: np.ndarray | None = None, cards: tuple[str, ...] | None = None) -> Query:
        labels: dict[str, list[tuple[str | None, float]]] = {}
        kinds: dict[str, float] = {}
        for m in q.fields[:3]:
            for label in m.spec.labels:
                key = label_key(label)
                labels.setdefault(key, []).append((m.spec.section, m.score))
            if m.spec.record:
                kinds[m.spec.record] = max(kinds.get(m.spec.record, 0.0), m.score)
        if q.record is not None:
            kinds[q.record.kind] = max(kinds.get(q.record.kind, 0.0), 1.0)
            # How many blocks, or whether any: the form states it in the kind's count field (提供・移転の有無),
            # and a scrambled layout may leave the blocks themselves miscounted.
            spec = self.catalog.record(q.record.kind)
            count = spec.count_field if spec is not None and q.answer_type in ("number", "yesno") else None
            if count:
                # A weak match of the same field (a few shared words) must not cap it.
                labels[label_key(count)] = [(None, 1.0)]
        # The form's own words for what the question names, so BM25 meets the report's vocabulary; an English
        # question's words also in the reports' Japanese (the catalog's glossary), for BM25 and the ranker.
        extra = " ".join(m.spec.label for m in q.fields[:2] if m.spec.label not in q.norm)
        glossed = " ".join(q.glossed)
        return Query(
            text=f"{q.norm} {extra} {glossed}".strip(),
            cards=cards if cards is not None else q.cards,
            labels=labels,
            kinds=kinds,
            changes=q.changes,
            risks=q.risks,
            vector=vector,
            question=f"{q.norm} {glossed}".strip(),
            answer_type=q.answer_type,
            record_numbers=tuple(q.record_numbers),
        )

    def scope(self, question: str, cards: list[str] | None = None) -> Scope:
        """Which reports a question is about, without embedding it: the caller's filter, else those it names
        (inferred=False); all reports when it names none (inferred=True)."""
        from qa.question import scope as scope_of

        only = tuple(cid for c in cards for cid in self.resolve(c)) if cards else None
        found = scope_of(normalize(question).strip(), self.index.cards, self.catalog, only)
        return Scope(found.cards, inferred=not found.named, unknown_place=found.unknown_place)

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
        q, vector = self.understand(question, cards)
        return self.search_query(self.query_for(q, vector), k)

    def search_query(self, query: Query, k: int) -> list[Hit]:
        cand = self.fuse(query)
        if cand is None:
            return []
        final = cand.fused
        if self.ranker is not None and len(cand.rows):
            # The ranker decides the order; the scores are reciprocal ranks on the fused scale (1/(k+1+rank)),
            # since the reader's fitted ratios (second passage, ties) were measured on that scale.
            matrix = self.feature_matrix(query, cand)
            picked = cand.rows[self.ranker.order(matrix, self._change_rows[cand.rows], k, query.changes)]
            final = np.zeros(len(cand.fused))
            final[picked] = 1.0 / (cand.rrf_k + 1 + np.arange(len(picked)))
        top = [int(i) for i in np.argsort(-final, kind="stable")[:k] if final[i] > 0]
        return [
            Hit(
                chunk=self.index.chunks[i],
                score=float(final[i]),
                bm25_rank=int(cand.bm25_rank[i]) + 1 if cand.bm25_rank[i] >= 0 else None,
                dense_rank=int(cand.dense_rank[i]) + 1 if cand.dense_rank[i] >= 0 else None,
                dense=float(cand.dense[i]) if np.isfinite(cand.dense[i]) else 0.0,
                bm25=float(cand.bm25[i]) if np.isfinite(cand.bm25[i]) else 0.0,
            )
            for i in top
        ]

    def fuse(self, query: Query) -> Candidates | None:
        """Both legs, their fusion and the structure priors; the units with a fused score are the candidates."""
        index = self.index
        n = len(index)
        if n == 0 or not query.cards:
            return None
        w = self.weights
        allowed = np.isin(index.card_of_chunk, [index.card_ids.index(c) for c in query.cards if c in index.card_ids])
        if query.only_kind is not None:
            allowed &= np.array([k == query.only_kind for k in self._kinds], dtype=bool)
        bm25_scores = self._bm25(query.text, n)
        bm25_scores[~allowed] = -np.inf
        vector = query.vector if query.vector is not None else self.embed_query(query.text)
        dense_scores = self._dense(vector, n)
        dense_scores[~allowed] = -np.inf
        fused = np.zeros(n, dtype=np.float64)
        ranks: dict[str, np.ndarray] = {}
        rrf_k = w["rrf_k"]
        for name, scores in (("bm25", bm25_scores), ("dense", dense_scores)):
            order = np.argsort(-scores, kind="stable")[:CANDIDATES]
            order = order[np.isfinite(scores[order]) & (scores[order] > 0)]
            rank = np.full(n, -1)
            rank[order] = np.arange(len(order))
            ranks[name] = rank
        if w["fusion"] >= 0.5:
            # Weighted fusion of scores scaled to [0, 1] within the allowed units (measured best held out:
            # benchmarks/notes/e5-retrieval.md); the weight of BM25 is fitted.
            wb = w["w_bm25_share"]
            fused[allowed] = wb * _minmax(bm25_scores[allowed]) + (1 - wb) * _minmax(dense_scores[allowed])
        else:
            for name, weight in (("bm25", w["w_bm25"]), ("dense", w["w_dense"])):
                order = np.flatnonzero(ranks[name] >= 0)
                fused[order] += weight / (rrf_k + 1 + ranks[name][order])
        labels, kinds = self._structure_scores(query, allowed)
        scale = w["bonus_scale"] if w["fusion"] >= 0.5 else 1.0 / (rrf_k + 1)
        fused += scale * (w["w_struct"] * labels + w["w_kind"] * kinds)
        if not query.changes:
            # The change history repeats every section's name and vocabulary; it answers questions about changes.
            fused[self._change_rows] *= w["change_weight"]
        if not query.risks:
            # III リスク対策 repeats II's headings (4. 委託, 5. 提供・移転); the facts asked about sit in II.
            fused[self._risk_rows] *= w["risk_weight"]
        fused[~allowed] = 0
        rows = np.flatnonzero(fused > 0)
        return Candidates(rows, fused, bm25_scores, dense_scores, ranks["bm25"], ranks["dense"], labels[rows],
                          kinds[rows], query.changes, query.risks, rrf_k)

    def facts(self) -> UnitFacts:
        with self._lock:
            if self._facts is None:
                self._facts = UnitFacts.of(self.index.chunks, self.index.tokens, self.segmenter,
                                           self._change_rows, self._risk_rows)
            return self._facts

    def feature_matrix(self, query: Query, cand: Candidates) -> np.ndarray:
        return features(self.facts(), cand, query.answer_type, query.record_numbers,
                        self.segmenter.tokens(query.question or query.text))

    def _bm25(self, text: str, n: int) -> np.ndarray:
        vocab = self.index.bm25.vocab_dict
        tokens = [t for t in self.segmenter.tokens(text) if t in vocab]
        if not tokens:
            return np.zeros(n)
        return np.asarray(self.index.bm25.get_scores(tokens), dtype=np.float64)

    def dense_standing(self, vector: np.ndarray | None, card: str, score: float) -> float:
        """How far `score` stands above the card's units, in standard deviations of their similarity to the
        query. Language-neutral where the raw cosine is not: e5 scores an English question against Japanese
        text about 0.1 lower (median of the best passage 0.81 against 0.92 on eval/gold.jsonl)."""
        if vector is None or not np.any(vector) or card not in self.index.card_ids:
            return float("inf")
        rows = self.index.card_of_chunk == self.index.card_ids.index(card)
        sims = np.einsum("ij,j->i", self.index.embeddings[rows], vector)
        spread = float(sims.std())
        return (score - float(sims.mean())) / spread if spread > 0 else float("inf")

    def _dense(self, vector: np.ndarray, n: int) -> np.ndarray:
        if not np.any(vector):
            return np.zeros(n)
        if n <= 50_000:
            # einsum, not BLAS: a 384-wide product over a few thousand rows is faster on one thread than it is
            # when OpenBLAS's threads wait for cores that torch or another process holds (5.8 ms vs 0.3 ms).
            return np.einsum("ij,j->i", self.index.embeddings, vector).astype(np.float64)
        scores = np.zeros(n)
        found, ids = self.index.dense.search(vector[None, :], min(n, CANDIDATES * 5))
        valid = ids[0] >= 0
        scores[ids[0][valid]] = found[0][valid]
        return scores

    def _structure_scores(self, query: Query, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How surely each unit holds a field (label) or a block kind the question asks about, 0 to 1."""
        labels = np.zeros(len(self.index))
        kinds = np.zeros(len(self.index))
        if not query.labels and not query.kinds:
            return labels, kinds
        chunks = self.index.chunks
        for key, asked in query.labels.items():
            for i in self._units_with_label.get(key, ()):
                if not allowed[i]:
                    continue
                # A label the catalog places in a named section (法令上の根拠 of 個人番号の利用, not of a 提供先)
                # counts only in a unit whose breadcrumb or text names that section.
                unit = chunks[i]
                for home, score in asked:
                    if score > labels[i] and (home is None or home in unit.section or home in unit.text):
                        labels[i] = score
        for kind, score in query.kinds.items():
            rows = self._units_of_kind.get(kind)
            if rows is not None:
                kinds[rows[allowed[rows]]] = score
        return labels, kinds


def _minmax(scores: np.ndarray) -> np.ndarray:
    finite = np.isfinite(scores)
    out = np.zeros_like(scores, dtype=np.float64)
    if not finite.any():
        return out
    lo, hi = float(scores[finite].min()), float(scores[finite].max())
    if hi > lo:
        out[finite] = (scores[finite] - lo) / (hi - lo)
    return out


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
        page_content=c.verbatim or c.text,
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
