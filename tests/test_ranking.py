"""The learned ranker on the real index: its file is data, its features read the question, fitting improves the
order it was fitted on, and a file fitted on other features falls back to the fused order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ranker_file_is_numbers_for_every_feature_with_its_split_stated() -> None:
    from qa.ranking import FEATURES, RANKER_PATH, LinearRanker

    data = json.loads(RANKER_PATH.read_text(encoding="utf-8"))
    assert set(data["weights"]) == set(FEATURES)
    assert all(isinstance(v, float) and np.isfinite(v) for v in data["weights"].values())
    assert data["train_file"] == "eval/gold.jsonl" and "held_out_file" in data
    ranker = LinearRanker.from_file()
    assert ranker is not None and ranker.weights.shape == (len(FEATURES),)


@pytest.mark.parametrize("content", ['{"weights": {"fused": 1.0}}', "not json", '{"weights": ["fused"]}', ""])
def test_a_ranker_file_for_other_features_or_damaged_is_not_used(tmp_path: Path, content: str) -> None:
    from qa.ranking import LinearRanker

    path = tmp_path / "ranker.json"
    path.write_text(content, encoding="utf-8")
    assert LinearRanker.from_file(path) is None


def test_without_a_ranker_the_order_is_the_fused_order(assistant) -> None:
    from qa.retrieval import HybridSearcher

    plain = HybridSearcher(assistant.index, segmenter=assistant.searcher.segmenter, ranker=None)
    question = "熊谷市の子育て支援の委託先はどこですか"
    hits = plain.search(question, k=10)
    cand = plain.fuse(plain.query_for(*plain.understand(question)))
    order = cand.rows[np.argsort(-cand.fused[cand.rows], kind="stable")][:10]
    assert [h.chunk.id for h in hits] == [assistant.index.chunks[i].id for i in order]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_block_named_by_number_ranks_first(assistant) -> None:
    """The fused order put 委託事項2 first for this question (the blocks share their words); the ranker reads the
    number the question names."""
    hits = assistant.searcher.search("豊中市の委託事項3の委託先はどこですか", k=5)
    assert hits[0].chunk.card.startswith("002_")
    assert hits[0].chunk.record_kind == "委託事項" and hits[0].chunk.record_number == 3
    assert hits[0].score == 1 / (assistant.searcher.weights["rrf_k"] + 1)


def test_features_read_the_question(assistant) -> None:
    from qa.ranking import FEATURES

    searcher = assistant.searcher
    q, vector = searcher.understand("熊谷市の子育て支援の特定個人情報ファイルはいつから保有していますか")
    query = searcher.query_for(q, vector)
    cand = searcher.fuse(query)
    matrix = searcher.feature_matrix(query, cand)
    assert matrix.shape == (len(cand.rows), len(FEATURES)) and np.isfinite(matrix).all()
    column = dict(zip(FEATURES, matrix.T))
    chunks = [assistant.index.chunks[i] for i in cand.rows]
    # A question asking when: units holding a date are marked, units without one are not.
    dated = [c for c, v in zip(chunks, column["typed_value"]) if v]
    assert any("平成30年12月" in c.text for c in dated)
    assert all(v == 0 for c, v in zip(chunks, column["typed_value"]) if "年" not in c.text and "月" not in c.text)
    # Coverage is a share of the question's IDF: within [0, 1], highest where the question's words stand.
    assert (column["cover"] >= 0).all() and (column["cover"] <= 1 + 1e-9).all()
    assert column["cover"].max() > 0.5
    assert (column["change_unasked"] == [float(c.is_change_history) for c in chunks]).all()


def test_fitting_improves_the_order_it_is_fitted_on_and_the_command_writes_nothing_on_a_dry_run(
    assistant, settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qa.cli import main
    from qa.fitting import ranker_examples
    from qa.ranking import RANKER_PATH, fit_weights, rank_metrics

    lines = (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()[:60]
    small = tmp_path / "gold.jsonl"
    small.write_text("\n".join(lines) + "\n", encoding="utf-8")
    examples = ranker_examples(assistant.searcher, small, settings.corpus_dir)
    assert len(examples) >= 40 and all(e.matrix.shape[0] == len(e.positive) for e in examples)
    assert sum(e.positive.any() for e in examples) >= 0.8 * len(examples)
    weights = fit_weights(examples, 0.003)
    assert rank_metrics(examples, weights)["mrr"] > rank_metrics(examples, None)["mrr"]

    before = RANKER_PATH.read_bytes()
    assert main(["--index", str(settings.index_dir), "fit-ranker", "--train", str(small), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "training questions" in out and "MRR@10" in out
    assert RANKER_PATH.read_bytes() == before


def test_change_rows_keep_their_places_for_questions_not_about_changes(assistant) -> None:
    """別添2 repeats every section's words: for an ordinary question its rows stand only in the last fitted places of
    a top 10 (none in a shorter list); a question about changes ranks them freely."""
    from qa.ranking import SLOTS_FITTED_ON

    searcher = assistant.searcher
    slots = searcher.ranker.change_slots
    ordinary = searcher.search("川崎市の児童手当の特定個人情報の使用開始日はいつですか", k=SLOTS_FITTED_ON)
    places = [i for i, h in enumerate(ordinary) if h.chunk.is_change_history]
    assert all(i >= SLOTS_FITTED_ON - slots for i in places), places
    assert not any(h.chunk.is_change_history for h in searcher.search("川崎市の児童手当の特定個人情報の使用開始日はいつですか", k=5))
    about = searcher.search("豊中市の評価書で令和4年6月30日に変更された項目は何ですか", k=SLOTS_FITTED_ON)
    assert sum(h.chunk.is_change_history for h in about[:5]) >= 3
    assert all(h.chunk.card.startswith("002_") for h in about)


def test_a_count_whose_best_passages_hold_no_value_is_not_stated(assistant) -> None:
    """Asked how many, a passage that holds no count, range or other value is not an answer."""
    answer = assistant.ask("豊中市の子ども医療費の評価書で、苦情は何件寄せられましたか")
    assert answer.abstained and answer.cards == ["002_eeb43361c0371a47"]
    assert "近い記載" in answer.answer
