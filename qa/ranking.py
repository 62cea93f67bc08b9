"""A learned linear ranker over the hybrid search's candidates: features of (question, unit), one weight each.

The fused score (RRF of BM25 and e5 plus the structure bonus) orders units by two similarities and a few priors.
What it cannot see is measured here per candidate, and weighed by a listwise softmax model fitted on gold
questions (`qa fit-ranker`; the weights are JSON in qa/data/ranker.json, with the split they were fitted on):

    fused · bm25_rrf · dense_rrf · bm25_scaled · dense_scaled · dense_gap · label · kind · change_unasked ·
    change_asked · risk_unasked · heading_cover · length · block_number · prose · block_best · typed_value · cover ·
    change_heading · change_cover

A unit is a positive for a gold question when it holds the evidence or overlaps its lines (the retrieval
benchmark's hit). Ranking is one matrix product over a few hundred candidates; the per-unit facts (token sets,
heading tokens, typed values) are computed once per index.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.answering.extract import extract

if TYPE_CHECKING:
    from qa.chunking import Chunk
    from qa.segment import Segmenter

RANKER_PATH = Path(__file__).resolve().parent / "data" / "ranker.json"
FEATURES: tuple[str, ...] = (
    "fused", "bm25_rrf", "dense_rrf", "bm25_scaled", "dense_scaled", "dense_gap", "label", "kind",
    "change_unasked", "change_asked", "risk_unasked", "heading_cover", "length", "block_number", "prose",
    "block_best", "typed_value", "cover", "change_heading", "change_cover",
)
TYPED = ("duration", "frequency", "date", "number")  # answer types whose values extract() finds
LAMBDAS = (0.03, 0.01, 0.003, 0.001)  # L2 strengths tried by cross-validation
SLOTS_FITTED_ON = 10  # the change-history places are chosen on top-10 lists
MAX_SLOTS = 2


@dataclass
class Candidates:
    """What the searcher knows of its candidates for one query; the ranker turns it into features."""

    rows: np.ndarray  # unit indices
    fused: np.ndarray  # the fused score of every unit (after the change/risk weights)
    bm25: np.ndarray  # raw scores, -inf outside the allowed units
    dense: np.ndarray
    bm25_rank: np.ndarray  # 0-based rank among the leg's candidates, -1 if not among them
    dense_rank: np.ndarray
    label: np.ndarray  # per candidate row
    kind: np.ndarray
    changes: bool
    risks: bool
    rrf_k: float


@dataclass
class UnitFacts:
    """Per-unit facts the features read, computed once per index."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # per vocabulary entry
    tokens: Any  # scipy CSR, units × vocabulary, 1 where the unit holds the token
    heading_tokens: Any  # the same for the unit's breadcrumb and label
    length: np.ndarray
    prose: np.ndarray
    change: np.ndarray
    risk: np.ndarray
    block: list[tuple[str, str, int] | None]
    block_rows: dict[tuple[str, str, int], list[int]]
    numbers: np.ndarray  # block number or -1
    _typed: dict[str, np.ndarray] = field(default_factory=dict)
    _texts: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, chunks: Sequence[Chunk], tokens: Sequence[Sequence[str]], segmenter: Segmenter,
           change: np.ndarray, risk: np.ndarray) -> UnitFacts:
        n = len(chunks)
        df = Counter(t for ts in tokens for t in set(ts))
        vocabulary = {t: j for j, t in enumerate(df)}
        idf = np.array([math.log((n + 1) / (df[t] + 0.5)) for t in df])
        heads: dict[str, list[str]] = {}
        for c in chunks:
            key = f"{c.section} {c.label}"
            if key not in heads:
                heads[key] = segmenter.tokens(key)
        heading_tokens = [heads[f"{c.section} {c.label}"] for c in chunks]
        block = [(c.card, c.record_kind, c.record_number) if c.record_kind and c.record_number is not None else None
                 for c in chunks]
        block_rows: dict[tuple[str, str, int], list[int]] = {}
        for i, key in enumerate(block):
            if key is not None:
                block_rows.setdefault(key, []).append(i)
        return cls(
            vocabulary=vocabulary,
            idf=idf,
            tokens=_presence(tokens, vocabulary),
            heading_tokens=_presence(heading_tokens, vocabulary),
            length=np.array([math.log(10 + len(c.text)) for c in chunks]),
            prose=np.array([c.kind == "prose" for c in chunks], dtype=float),
            change=change,
            risk=risk,
            block=block,
            block_rows=block_rows,
            numbers=np.array([c.record_number if c.record_number is not None else -1 for c in chunks]),
            _texts=[c.text for c in chunks],
        )

    def question_weights(self, question_tokens: Sequence[str]) -> np.ndarray:
        """The IDF of each distinct question token, as a share of their sum; a token no unit holds weighs 0."""
        weights = np.zeros(len(self.vocabulary))
        for j in {self.vocabulary[t] for t in question_tokens if t in self.vocabulary}:
            weights[j] = self.idf[j]
        total = float(weights.sum())
        return weights / total if total else weights

    def typed(self, answer_type: str) -> np.ndarray:
        """1 for units holding a value of `answer_type` (a date, a count, …); computed on first use."""
        found = self._typed.get(answer_type)
        if found is None:
            found = np.array([bool(extract(t, answer_type)) for t in self._texts], dtype=float)
            self._typed[answer_type] = found
        return found


def features(facts: UnitFacts, cand: Candidates, answer_type: str, record_numbers: Sequence[int],
             question_tokens: Sequence[str]) -> np.ndarray:
    """The feature matrix (candidates × FEATURES) of one query."""
    rows = cand.rows
    k1 = cand.rrf_k + 1
    weights = facts.question_weights(question_tokens)
    finite_b = np.where(np.isfinite(cand.bm25[rows]), cand.bm25[rows], 0.0)
    finite_d = np.where(np.isfinite(cand.dense[rows]), cand.dense[rows], 0.0)
    fused = cand.fused * k1
    best_block = np.zeros(len(rows))
    for j, i in enumerate(rows):
        key = facts.block[i]
        if key is not None:
            best_block[j] = max((fused[r] for r in facts.block_rows[key] if r != i), default=0.0)
    cover = facts.tokens[rows] @ weights
    heading = facts.heading_tokens[rows] @ weights
    typed = facts.typed(answer_type)[rows] if answer_type in TYPED else np.zeros(len(rows))
    numbers = np.isin(facts.numbers[rows], list(record_numbers)).astype(float) if record_numbers else np.zeros(len(rows))
    change = facts.change[rows].astype(float)
    columns = {
        "fused": fused[rows],
        "bm25_rrf": np.where(cand.bm25_rank[rows] >= 0, k1 / (k1 + cand.bm25_rank[rows]), 0.0),
        "dense_rrf": np.where(cand.dense_rank[rows] >= 0, k1 / (k1 + cand.dense_rank[rows]), 0.0),
        "bm25_scaled": _scaled(finite_b),
        "dense_scaled": _scaled(finite_d),
        "dense_gap": finite_d - (finite_d.max() if len(rows) else 0.0),
        "label": cand.label,
        "kind": cand.kind,
        "change_unasked": change * (not cand.changes),
        "change_asked": change * cand.changes,
        "risk_unasked": facts.risk[rows].astype(float) * (not cand.risks),
        "heading_cover": heading,
        "length": facts.length[rows],
        "block_number": numbers,
        "prose": facts.prose[rows],
        "block_best": best_block,
        "typed_value": typed,
        "cover": cover,
        # A change row's heading and text name the section it changed, so their words mean less there.
        "change_heading": heading * change,
        "change_cover": cover * change,
    }
    return np.column_stack([columns[name] for name in FEATURES]) if len(rows) else np.zeros((0, len(FEATURES)))


def _presence(token_lists: Sequence[Sequence[str]], vocabulary: dict[str, int]) -> Any:
    """Units × vocabulary, 1 where the unit holds the token (sparse: a unit holds a few dozen of 10,000)."""
    from scipy.sparse import csr_matrix

    indptr, indices = [0], []
    for ts in token_lists:
        indices.extend(sorted({vocabulary[t] for t in ts if t in vocabulary}))
        indptr.append(len(indices))
    data = np.ones(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(token_lists), len(vocabulary)))


def _scaled(x: np.ndarray) -> np.ndarray:
    if not len(x):
        return x
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


@dataclass(frozen=True)
class LinearRanker:
    """score = features · weights; `from_file` reads JSON only (names → numbers), never code.

    `change_slots`: places at the end of a top-k list kept for the best rows of the change history when none
    ranks above them. 別添2 is the report's second account of the same fields (the old and the new text, and
    in a scrambled PDF the only clean one); a reader should see its best row beside the current text.
    """

    weights: np.ndarray
    change_slots: int = 0

    @classmethod
    def from_file(cls, path: Path = RANKER_PATH) -> LinearRanker | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            named = {str(k): float(v) for k, v in data["weights"].items()}
            slots = int(data.get("change_slots", 0))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if set(named) != set(FEATURES) or not 0 <= slots <= MAX_SLOTS:
            return None  # fitted on another feature set: rank by the fused score rather than guess
        return cls(np.array([named[name] for name in FEATURES]), slots)

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        return matrix @ self.weights

    def order(self, matrix: np.ndarray, change: np.ndarray, k: int, changes_asked: bool) -> np.ndarray:
        """Candidate positions best first: the top k, the change history in its places."""
        order = np.argsort(-self.scores(matrix), kind="stable")
        return with_change_slots(order, change, k, self.change_slots, changes_asked)


def with_change_slots(order: np.ndarray, change: np.ndarray, k: int, slots: int, changes_asked: bool) -> np.ndarray:
    """`order` cut to k places. For a question about changes, as ranked. Otherwise the current text holds the
    first k − slots places and the best `slots` rows of the change history the last ones (lists of at least
    SLOTS_FITTED_ON places; a shorter list is the current text alone): 別添2 repeats every section's words, and
    ranked freely it crowds out the current text of ordinary questions."""
    if changes_asked:
        return order[:k]
    current, history = order[~change[order]], order[change[order]]
    keep = slots if k >= SLOTS_FITTED_ON else 0
    rows = history[:keep]
    return np.concatenate([current[: k - len(rows)], rows]) if len(current) else history[:k]


# -- fitting ---------------------------------------------------------------------------------------------------


@dataclass
class Example:
    """One gold question: its candidates' features and which of them hold the evidence."""

    qid: str
    matrix: np.ndarray
    positive: np.ndarray  # bool per candidate


def _loss(w: np.ndarray, examples: Sequence[Example], lam: float) -> tuple[float, np.ndarray]:
    """Listwise softmax: −log of the probability mass on the positives, plus L2."""
    total, grad = 0.0, np.zeros_like(w)
    used = [e for e in examples if e.positive.any()]
    for e in used:
        s = e.matrix @ w
        p = np.exp(s - s.max())
        p /= p.sum()
        mass = float(p[e.positive].sum()) + 1e-12
        total -= math.log(mass)
        grad -= e.matrix.T @ (p * e.positive / mass - p)
    m = max(1, len(used))
    return total / m + lam * float(w @ w), grad / m + 2 * lam * w


def fit_weights(examples: Sequence[Example], lam: float) -> np.ndarray:
    from scipy.optimize import minimize

    start = np.zeros(len(FEATURES))
    start[FEATURES.index("fused")] = 1.0  # from the fused order
    return minimize(_loss, start, args=(examples, lam), jac=True, method="L-BFGS-B").x


def rank_metrics(examples: Sequence[Example], w: np.ndarray | None, k: int = 10, slots: int = 0) -> dict[str, float]:
    """evidence@1, @10 and MRR@10 over the examples (w None: the fused order)."""
    at1 = at10 = mrr = 0.0
    for e in examples:
        s = e.matrix @ w if w is not None else e.matrix[:, FEATURES.index("fused")]
        order = np.argsort(-s, kind="stable")
        if w is not None:
            order = with_change_slots(order, change_rows(e.matrix), k, slots, changes_asked(e.matrix))
        order = order[:k]
        rank = next((r for r, i in enumerate(order, 1) if e.positive[i]), None)
        if rank is not None:
            at10 += 1
            mrr += 1 / rank
            at1 += rank == 1
    n = max(1, len(examples))
    return {"@1": at1 / n, "@10": at10 / n, "mrr": mrr / n}


def changes_asked(matrix: np.ndarray) -> bool:
    return bool((matrix[:, FEATURES.index("change_asked")] > 0).any())


def change_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix[:, FEATURES.index("change_unasked")] + matrix[:, FEATURES.index("change_asked")]) > 0


def best_slots(examples: Sequence[Example], w: np.ndarray) -> int:
    """The number of change-history places with the best evidence@10 (then MRR) on the training questions;
    the fewest on a tie."""
    scored = {n: rank_metrics(examples, w, slots=n) for n in range(MAX_SLOTS + 1)}
    return max(scored, key=lambda n: (round(scored[n]["@10"], 6), round(scored[n]["mrr"], 6), -n))


def cross_validate(examples: Sequence[Example], folds: int = 5, seed: int = 0) -> tuple[float, dict[float, float]]:
    """The L2 strength with the best mean held-out MRR over `folds` folds of the training questions."""
    order = np.random.default_rng(seed).permutation(len(examples))
    parts = np.array_split(order, folds)
    mean: dict[float, float] = {}
    for lam in LAMBDAS:
        scores = []
        for part in parts:
            held = set(part.tolist())
            train = [examples[i] for i in order if i not in held]
            test = [examples[i] for i in part]
            scores.append(rank_metrics(test, fit_weights(train, lam))["mrr"])
        mean[lam] = float(np.mean(scores))
    return max(LAMBDAS, key=lambda lam: mean[lam]), mean


def write_ranker(path: Path, w: np.ndarray, slots: int, **about: Any) -> None:
    data = {"comment": "Fitted by `qa fit-ranker` (qa/ranking.py) on the training file only; JSON, read as numbers.",
            "fitted_at": _dt.date.today().isoformat(), **about, "change_slots": slots,
            "weights": {name: round(float(v), 6) for name, v in zip(FEATURES, w)}}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
