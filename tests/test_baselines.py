"""The two baselines (qa.baselines), built once on the real corpus: hits come from real files at the right lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.baselines import FixedBM25, LangChainRecipe, corpus_files, fixed_pieces, line_range
from qa.eval_metrics import citation_valid, read_corpus_text

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
QUESTIONS = [
    "川崎市の児童手当の特定個人情報ファイルの取扱いの委託先は",
    "松戸市の住民基本台帳の評価書で死者の個人番号の保管期間は",
    "熊谷市の子育て支援の開示請求先はどこですか",
    "生活保護関係情報の提供先",
]


@pytest.fixture(scope="module")
def files():  # type: ignore[no-untyped-def]
    return corpus_files(CORPORA, ROOT)


@pytest.fixture(scope="module")
def bm25(files) -> FixedBM25:  # type: ignore[no-untyped-def]
    return FixedBM25(CORPORA, ROOT, files=files)


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from qa.embeddings import load_embedder

    return load_embedder(None)  # the default model, converted by `make setup` into the user's cache


@pytest.fixture(scope="module")
def recipe(files, embedder) -> LangChainRecipe:  # type: ignore[no-untyped-def]
    # The two shortest reports (140 of the corpus's 956 KB): every piece is embedded afresh, without the
    # index's embedding cache, and the whole corpus took two minutes of the suite.
    return LangChainRecipe(CORPORA, embedder, ROOT, files=[f for f in files if f.card.startswith(("001", "002"))])


@pytest.fixture(scope="module")
def file_lines() -> dict[str, list[str]]:
    return {p.stem: read_corpus_text(p).split("\n") for p in CORPORA.glob("*.txt")}


def _assert_hits_are_real(hits, file_lines) -> None:  # type: ignore[no-untyped-def]
    assert hits
    for h in hits:
        assert h.card in file_lines
        assert h.source == f"corpora/{h.card}.txt"
        lines = file_lines[h.card]
        assert 1 <= h.line <= h.end_line <= len(lines)
        # lines line..end_line with their line ends (a chunk may end on the newline closing end_line)
        block = "\n".join(lines[h.line - 1 : h.end_line]) + ("\n" if h.end_line < len(lines) else "")
        assert h.text in block, f"{h.card}:{h.line}-{h.end_line} does not hold the hit text"
        # the range is tight: the text starts on the first line and ends on the last one
        assert h.text[:-1].count("\n") == h.end_line - h.line


def test_line_range() -> None:
    raw = "ab\ncd\nef"
    assert line_range(raw, 0, 2) == (1, 1)
    assert line_range(raw, 0, 3) == (1, 1)
    assert line_range(raw, 1, 4) == (1, 2)
    assert line_range(raw, 6, 8) == (3, 3)


def test_fixed_pieces_cover_the_file(files) -> None:  # type: ignore[no-untyped-def]
    f = files[2]
    pieces = fixed_pieces(f, 500)
    assert all(len(p.text) <= 500 for p in pieces)
    assert all(p.text == f.text.raw[p.start : p.end] for p in pieces)
    assert "".join(p.text for p in pieces).strip() == f.text.raw.strip() or len(pieces) > 1
    assert pieces[0].start == 0 and pieces[-1].end == len(f.text.raw)


def test_bm25_hits_are_verbatim_at_their_lines(bm25: FixedBM25, file_lines) -> None:  # type: ignore[no-untyped-def]
    assert len(bm25) > 500
    for q in QUESTIONS:
        hits = bm25.search(q, k=5)
        _assert_hits_are_real(hits, file_lines)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_bm25_finds_the_right_report(bm25: FixedBM25) -> None:
    hits = bm25.search("松戸市 住民基本台帳 死者の個人番号", k=5)
    assert any(h.card.startswith("003") for h in hits)


def test_recipe_hits_are_verbatim_at_their_lines(recipe: LangChainRecipe, file_lines) -> None:  # type: ignore[no-untyped-def]
    assert len(recipe) > 150
    for q in QUESTIONS:
        hits = recipe.search(q, k=5)
        _assert_hits_are_real(hits, file_lines)
        assert all(len(h.text) <= 500 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_answers_are_top_chunks_with_verbatim_citations(bm25: FixedBM25, recipe: LangChainRecipe) -> None:
    for baseline in (bm25, recipe):
        text, citations = baseline.answer(QUESTIONS[0])
        top = baseline.search(QUESTIONS[0], k=1)[0]
        assert text == top.text
        (cite,) = citations
        assert cite.quote == text and cite.line == top.line and cite.card == top.card
        assert citation_valid(cite.quote, read_corpus_text(ROOT / cite.source))


def test_nothing_matches_gives_no_answer(bm25: FixedBM25) -> None:
    assert bm25.search("qzxv", k=5) == []
    assert bm25.answer("qzxv") == ("", [])


def test_recipe_uses_a_langchain_embeddings(recipe: LangChainRecipe) -> None:
    from langchain_core.embeddings import Embeddings

    assert isinstance(recipe.embeddings, Embeddings)
    v = recipe.embeddings.embed_query("委託先")
    assert len(v) == recipe.faiss.d


def test_save_reports_bytes(bm25: FixedBM25, recipe: LangChainRecipe, tmp_path: Path) -> None:
    assert bm25.save(tmp_path / "bm25") > 10_000
    assert recipe.save(tmp_path / "lc") > len(recipe) * recipe.faiss.d * 4
