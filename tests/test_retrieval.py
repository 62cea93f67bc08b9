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


def test_a_count_question_about_blocks_also_asks_for_the_kinds_count_field(assistant) -> None:
    """How many 提供先 (or 委託事項): the form states it in the kind's count field (catalog `count_field`),
    which a scrambled layout cannot miscount; the question's structure asks for it, and it ranks at the top."""
    from qa.parsing.card import label_key

    searcher = assistant.searcher
    for text, card, count_label in [
        ("熊谷市の子育て支援で特定個人情報の提供先は何件か", "001_", "提供・移転の有無"),
        ("How many contractors does Kumagaya's childcare support report have?", "001_", "委託の有無"),
    ]:
        q, vector = searcher.understand(text)
        assert q.answer_type == "number" and q.record is not None
        assert label_key(count_label) in searcher.query_for(q, vector).labels
        hits = searcher.search(text, k=3)
        assert all(h.chunk.card.startswith(card) for h in hits)
        assert any(h.chunk.label.startswith(count_label) for h in hits), [h.chunk.label for h in hits]
    # a question that names the blocks without asking how many does not ask for the count field
    q, vector = searcher.understand("熊谷市の子育て支援の提供先はどこか")
    assert label_key("提供・移転の有無") not in searcher.query_for(q, vector).labels


def test_a_word_inside_a_subject_does_not_scope_to_that_subjects_report(assistant) -> None:
    """"High-cost medical expense" (高額療養費) is not the 子ども医療費 subject: no report is named, so all are
    searched; the subject itself still scopes to Toyonaka's report."""
    searcher = assistant.searcher
    assert len(searcher.scope("Which office lost the high-cost medical expense applications?").cards) == 5
    assert searcher.scope("Who is contracted in the child medical expense subsidy report?").cards == ("002_eeb43361c0371a47",)
