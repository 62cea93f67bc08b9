"""The hybrid retriever on the real corpus: the example question, paraphrases, English, filters."""

from __future__ import annotations

import pytest


def test_example_question_reaches_recipient_blocks_of_the_public_assistance_report(assistant) -> None:
    hits = assistant.searcher.search("生活保護関係情報を受け取る提供先はどこか", k=5)
    assert len(hits) == 5
    assert all(h.chunk.card.startswith("004_") for h in hits)
    sections = [h.chunk.section for h in hits]
    assert all("5. 特定個人情報の提供・移転" in s for s in sections), sections
    assert "> 提供先" in sections[0] and sum("> 提供先" in s for s in sections) >= 4, sections
    assert not any("入手" in s or "使用目的" in s for s in sections)


def test_paraphrase_without_the_forms_words_reaches_the_same_blocks(assistant) -> None:
    hits = assistant.searcher.search("川崎市の生活保護の情報は誰に渡されますか", k=5)
    assert hits[0].chunk.card.startswith("004_")
    assert sum("提供先" in h.chunk.section for h in hits) >= 3


def test_english_question_reaches_the_right_section(assistant) -> None:
    hits = assistant.searcher.search("Who are the contractors in Matsudo's resident register report?", k=5)
    assert hits[0].chunk.card.startswith("003_")
    assert any("委託" in h.chunk.section for h in hits[:3])


def test_outsourcing_synonym_finds_the_contract_blocks(assistant) -> None:
    hits = assistant.searcher.search("熊谷市の子育て支援の外注先", k=5)
    assert all(h.chunk.card.startswith("001_") for h in hits)
    assert any("委託事項1" in h.chunk.section for h in hits)


def test_card_filter_narrows_the_search(assistant) -> None:
    hits = assistant.searcher.search("委託先", k=10, cards=["000"])
    assert hits and all(h.chunk.card.startswith("000_") for h in hits)
    by_city = assistant.searcher.search("委託先", k=10, cards=["豊中市"])
    assert by_city and all(h.chunk.card.startswith("002_") for h in by_city)


def test_unknown_card_filter_is_a_clear_error(assistant) -> None:
    from qa.errors import CardNotFoundError

    with pytest.raises(CardNotFoundError, match="no card matches"):
        assistant.searcher.search("委託先", cards=["横浜市"])


def test_langchain_retriever_returns_documents_with_locations(assistant) -> None:
    from qa.retrieval import QARetriever

    retriever = QARetriever(searcher=assistant.searcher, k=3)
    docs = retriever.invoke("生活保護関係情報を受け取る提供先はどこか")
    assert len(docs) == 3
    meta = docs[0].metadata
    assert meta["card"].startswith("004_") and meta["source"] == "corpora/004_f28069411e69241a.txt"
    assert meta["line"] <= meta["end_line"] and "提供先" in meta["section"]
    assert len(retriever.invoke("委託先", k=2)) == 2


async def _ainvoke(retriever, q):  # type: ignore[no-untyped-def]
    return await retriever.ainvoke(q)


def test_langchain_retriever_async(assistant) -> None:
    import asyncio

    from qa.retrieval import QARetriever

    docs = asyncio.run(_ainvoke(QARetriever(searcher=assistant.searcher, k=2), "公表日"))
    assert len(docs) == 2
