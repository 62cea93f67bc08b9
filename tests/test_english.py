"""English questions over Japanese reports: their words reach the reports' vocabulary through the catalog's
glossary, the weak-evidence check does not hold them to a Japanese question's cosine, and a question about
nothing in the reports is not stated in either language. The questions are written for this test, not taken
from either gold file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.catalog import catalog
from qa.question import glossed_words
from qa.reading import normalize, read_source

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


def test_every_glossary_word_is_a_word_of_the_reports() -> None:
    """The glossary is the reports' vocabulary in English; an entry no report holds would only add noise."""
    text = "".join("\n".join(read_source(p).norm_lines) for p in sorted(CORPORA.glob("*.txt")))
    cat = catalog()
    assert len(cat.glossary) >= 200
    assert [ja for ja, _ in cat.glossary if ja not in text] == []


def test_english_words_and_their_plurals_map_to_the_reports_words() -> None:
    cat = catalog()
    found = glossed_words(normalize("Were any applications lost, and which contractors handle backups?").lower(), cat)
    assert {"紛失", "委託先", "バックアップ", "申請"} <= set(found)
    # Whole words only: "cost" inside "costume", "log" inside "logical" are not the reports' 費用, ログ.
    assert glossed_words("a costume and a logical order", cat) == ()


def test_an_english_question_meets_the_japanese_units(assistant) -> None:
    searcher = assistant.searcher
    q, vector = searcher.understand("Where is the childcare support data of Kumagaya stored?")
    assert q.english and "保管" in q.glossed
    query = searcher.query_for(q, vector)
    assert "保管" in query.text and "保管" in query.question
    hits = searcher.search_query(query, 3)
    assert hits and all(h.chunk.card == "001_fea63e88436e34da" for h in hits)
    assert any("保管" in h.chunk.section for h in hits)


def test_an_english_question_is_answered_though_its_cosine_is_lower(assistant) -> None:
    """e5 scores an English question about 0.1 lower against Japanese text than the same question in Japanese:
    the weak-evidence check reads how far the best passage stands above the report's other units."""
    searcher = assistant.searcher
    standing = {}
    raw = {}
    for text in ("Where is the childcare support data of Kumagaya stored?", "熊谷市の子育て支援のデータはどこに保管されていますか"):
        q, vector = searcher.understand(text)
        hits = searcher.search_query(searcher.query_for(q, vector), 3)
        raw[q.english] = max(h.dense for h in hits)
        standing[q.english] = searcher.dense_standing(vector, "001_fea63e88436e34da", raw[q.english])
    assert raw[True] < raw[False] - 0.03
    assert standing[True] > 1.0 and standing[False] > 1.0
    assert np.isinf(searcher.dense_standing(None, "001_fea63e88436e34da", 0.5))
    answer = assistant.ask("Where is the childcare support data of Kumagaya stored?")
    assert not answer.abstained and "保管" in answer.answer


def test_a_question_about_nothing_in_the_reports_is_not_stated(assistant) -> None:
    for text in ("What will the weather be in Kumagaya tomorrow?", "明日の熊谷市の天気は？"):
        answer = assistant.ask(text)
        assert answer.abstained, text
        assert answer.cards == ["001_fea63e88436e34da"]
    # A question whose words are in the report is read, not refused.
    answer = assistant.ask("How is the backup of Matsudo's resident data protected?")
    assert not answer.abstained and "バックアップ" in answer.answer


def test_it_in_an_english_field_name_stands_for_what_the_question_names() -> None:
    """「when is it provided」 only matched those very words; a question names the data ("when is the child
    allowance data provided") and was matched to 提供する情報 by its words 'data provided'."""
    from qa.question import lexical_field_scores

    cat = catalog()
    for question, field in [
        ("how often is the child allowance data provided in kawasaki?", "provision_timing"),
        ("where is the resident register file stored in matsudo?", "storage_place"),
        ("how is the public assistance data deleted once the period ends?", "erasure"),
    ]:
        scores = lexical_field_scores(question, cat)
        assert max(scores, key=scores.get) == field, (question, sorted(scores.items(), key=lambda x: -x[1])[:3])
    # At most four words stand for it, and "it" opening a name is the word (IT systems).
    assert "provision_timing" not in lexical_field_scores("how often is a form that a resident hands in at the desk transferred", cat)
    assert "system_name" in lexical_field_scores("which it systems are used?", cat)


def test_an_english_question_is_embedded_with_its_words_in_the_reports_japanese(assistant) -> None:  # type: ignore[no-untyped-def]
    """e5 met an English question to Japanese passages on its English words alone; its BM25 query already held
    the glossary's Japanese for them. The embedded text now holds them too. A Japanese question is embedded as it is."""
    searcher = assistant.searcher
    english = "Where does Toyonaka keep the records of its child medical subsidy?"
    text = searcher.dense_text(english)
    assert text.startswith(english) and text != english
    assert all(word in text for word in glossed_words(english.lower(), catalog()))
    japanese = "豊中市の子ども医療費の記録はどこに保管されていますか"
    assert searcher.dense_text(japanese) == normalize(japanese)


def test_a_public_body_named_in_english_reaches_its_japanese_name(assistant) -> None:  # type: ignore[no-untyped-def]
    """Official English names of the bodies the reports name: whole, so the longer name wins over its words,
    and the search then finds the unit that names the body."""
    cat = catalog()
    found = glossed_words("does the japan pension service get data from kawasaki's child allowance file?", cat)
    assert "日本年金機構" in found and "機構" not in found
    hits = assistant.searcher.search("Does the Japan Pension Service receive data from Kawasaki's child allowance file?", k=5)
    assert any("日本年金機構" in h.chunk.text for h in hits)


def test_data_and_information_stand_for_each_other_in_english_field_names() -> None:
    """The catalog's english_equivalents: a name written with "information" is found by a question that says
    "data", and the other way round; the word alone still has to stand at word boundaries."""
    from qa.question import lexical_field_scores

    cat = catalog()
    scores = lexical_field_scores("in toyonaka, whose data is held in the file?", cat)
    assert max(scores, key=scores.get) == "people_scope"
    assert "people_scope" not in lexical_field_scores("whose databases are these?", cat)
