"""Unit tests of the evaluation metrics (qa.evaluation): each metric on right and on wrong input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa.eval_metrics import (
    Span,
    abstention_accuracy,
    answer_correct,
    card_rank,
    citation_supports,
    citation_valid,
    contains_gold,
    dump_limit,
    false_abstention_rate,
    find_evidence,
    hit_rate,
    is_context_dump,
    latency_summary,
    lines_of,
    load_gold,
    mean_reciprocal_rank,
    normalize_for_match,
    percentile,
    polarity,
    read_corpus_text,
    reciprocal_rank,
    section_rank,
)
from qa.evaluation import add_eval_command, failure_cause, run_evaluation, summarize, worst_questions

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "gold.jsonl"
CORPORA = ROOT / "corpora"


@dataclass(frozen=True)
class H:
    card: str
    line: int
    end_line: int


# -- normalisation ---------------------------------------------------------------------------------------


def test_normalize_removes_spaces_and_folds_width_and_case() -> None:
    assert normalize_for_match("株式会社 アイネス") == normalize_for_match("株式会社アイネス")
    assert normalize_for_match("ＮＥＣ　２５件\n") == "nec25件"
    assert normalize_for_match("2〜5") == normalize_for_match("2～5") == "2~5"


def test_normalize_keeps_different_text_different() -> None:
    assert normalize_for_match("株式会社アイネス") != normalize_for_match("株式会社アイネスリレーションズ")
    assert normalize_for_match("") == ""


# -- answer correctness ----------------------------------------------------------------------------------


def test_contains_gold_substring_after_normalisation() -> None:
    assert contains_gold("委託先は株式会社　アイネスです", "株式会社アイネス")
    assert not contains_gold("委託先は株式会社日立製作所です", "株式会社アイネス")


def test_contains_gold_ascii_boundaries() -> None:
    assert contains_gold("評価書番号は27です", "27")
    assert not contains_gold("評価書番号は127です", "27")
    assert not contains_gold("提供先は45件", "4")
    assert contains_gold("提供先は4件", "4")
    assert contains_gold("死者の番号は5年間保管", "5年間")
    assert not contains_gold("死者の番号は15年間保管", "5年間")


def test_yes_no_gold_matches_by_polarity() -> None:
    assert polarity("はい、再委託します") == "yes"
    assert polarity("いいえ。再委託しない") == "no"
    assert polarity("No, it does not.") == "no"
    assert polarity("None of the reports") is None
    assert contains_gold("はい、委託する", "はい")
    assert contains_gold("はい、提供している", "yes")  # Japanese answer to an English yes/no question
    assert not contains_gold("いいえ、再委託しない", "はい")
    assert not contains_gold("It is not stated (no)", "yes")
    assert not contains_gold("Not applicable", "no")  # "no" must be a word, not the start of "not"


def test_answer_correct_requires_every_gold_string() -> None:
    gold = ["アイネス", "日立製作所"]
    assert answer_correct("株式会社 アイネス、株式会社日立製作所", gold, False, "list")
    assert not answer_correct("株式会社 アイネス", gold, False, "list")


def test_answer_correct_rejects_abstention_on_answerable() -> None:
    assert not answer_correct("アイネス 日立製作所", ["アイネス"], True, "span")


def test_answer_correct_unanswerable_iff_abstained() -> None:
    assert answer_correct("記載がありません", [], True, "unanswerable")
    assert not answer_correct("令和7年7月31日", [], False, "unanswerable")


def test_context_dump_long_answer_rejected() -> None:
    dump = "評価書番号 27 児童手当法による児童手当又は特例給付の支給に関する事務 重点項目評価書 " * 12
    assert is_context_dump(dump, ["27"])
    assert not answer_correct(dump, ["27"], False, "number")
    assert answer_correct("川崎市の児童手当の評価書の評価書番号は27です。", ["27"], False, "number")


def test_context_dump_limits() -> None:
    """The external set's rule: at most 300 + 120·n characters for n gold strings."""
    assert dump_limit(["a", "b"]) == 540
    assert dump_limit([f"x{i}" for i in range(10)]) == 1500
    assert dump_limit(["27"]) == 420
    assert not is_context_dump("あ" * 420, ["27"])
    assert is_context_dump("あ" * 421, ["27"])
    assert not is_context_dump("あ" * 540, ["a", "b"])
    assert is_context_dump("あ" * 541, ["a", "b"])
    # whitespace does not count
    assert not is_context_dump("あ " * 420, ["27"])


def test_yesno_needs_the_gold_polarity_alone() -> None:
    """Both polarities in one answer is no answer (the external set's rule)."""
    assert answer_correct("いいえ。委託しない", ["いいえ"], False, "yesno")
    assert not answer_correct("はい、いいえ", ["いいえ"], False, "yesno")


def test_cross_evidence_list_is_read(tmp_path: Path) -> None:
    """External cross questions carry one evidence string per card; loading them used to raise TypeError."""
    from qa.eval_metrics import find_evidence, load_gold

    row = {"id": "x1", "question": "q", "type": "cross", "answers": ["a"], "cards": ["c1", "c2"],
           "evidence": ["foo bar", "baz"]}
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (item,) = load_gold(path)
    assert item.evidence == ("foo bar", "baz")
    spans = find_evidence(item.evidence, {"c1": "x\nfoo bar\n", "c2": "baz"}, item.cards)
    assert [(s.card, s.line) for s in spans] == [("c1", 2), ("c2", 1)]


# -- abstention -----------------------------------------------------------------------------------------


def test_abstention_metrics() -> None:
    types = ["unanswerable", "unanswerable", "span", "list", "span"]
    abst = [True, False, True, False, False]
    assert abstention_accuracy(types, abst) == 0.5
    assert false_abstention_rate(types, abst) == pytest.approx(1 / 3)
    assert abstention_accuracy(["span"], [True]) is None
    assert false_abstention_rate(["unanswerable"], [True]) is None
    with pytest.raises(ValueError):
        abstention_accuracy(["span"], [True, False])


# -- evidence and retrieval ------------------------------------------------------------------------------


def test_lines_of() -> None:
    text = "a\nbb\nccc\n"
    assert lines_of(text, 0, 1) == (1, 1)
    assert lines_of(text, 2, 4) == (2, 2)
    assert lines_of(text, 2, 5) == (2, 2)  # the newline closing line 2 is still line 2
    assert lines_of(text, 2, 8) == (2, 3)


def test_find_evidence_all_occurrences_with_lines() -> None:
    texts = {"c1": "x\n公表日\n\n令和7年7月31日\ny\n", "c2": "公表日\n\n令和7年7月31日"}
    spans = find_evidence("公表日\n\n令和7年7月31日", texts, ["c1"])
    assert spans == [Span("c1", 2, 4)]
    assert find_evidence("公表日\n\n令和7年7月31日", texts, ["c1", "c2"]) == [Span("c1", 2, 4), Span("c2", 1, 3)]
    assert find_evidence("令和8年", texts, ["c1", "c2"]) == []
    assert find_evidence("", texts, ["c1"]) == []
    assert find_evidence("x", texts, ["missing"]) == []


def test_find_evidence_on_real_gold_line() -> None:
    text = read_corpus_text(CORPORA / "000_8d285adb8fa87899.txt")
    ev = "公表日\n\n令和7年7月31日"
    (span,) = find_evidence(ev, {"000_8d285adb8fa87899": text}, ["000_8d285adb8fa87899"])
    lines = text.split("\n")
    assert lines[span.line - 1] == "公表日"
    assert lines[span.end_line - 1] == "令和7年7月31日"


def test_card_and_section_rank() -> None:
    spans = [Span("A", 10, 12)]
    hits = [H("B", 10, 12), H("A", 1, 5), H("A", 12, 20), H("A", 11, 11)]
    assert card_rank(hits, ["A"]) == 2
    assert card_rank(hits, ["C"]) is None
    assert section_rank(hits, spans) == 3
    assert section_rank(hits, spans, k=2) is None
    assert section_rank(hits[:2], spans) is None  # right card, wrong lines
    assert section_rank([H("B", 10, 12)], spans) is None  # right lines, wrong card
    assert card_rank(hits, ["A"], k=1) is None


def test_hit_rate_and_mrr() -> None:
    ranks = [1, 3, None, 12]
    assert hit_rate(ranks, 1) == 0.25
    assert hit_rate(ranks, 5) == 0.5
    assert hit_rate(ranks, 10) == 0.5
    assert reciprocal_rank(12, 10) == 0.0
    assert reciprocal_rank(None) == 0.0
    assert mean_reciprocal_rank(ranks, 10) == pytest.approx((1 + 1 / 3) / 4)
    assert hit_rate([], 5) is None


# -- citations -------------------------------------------------------------------------------------------


def test_citation_valid_is_verbatim_only() -> None:
    text = "③委託先名\t株式会社 アイネス\n"
    assert citation_valid("株式会社 アイネス", text)
    assert not citation_valid("株式会社アイネス", text)  # normalised is not verbatim
    assert not citation_valid("", text)
    assert not citation_valid("株式会社 アイネス", None)


def test_citation_valid_against_real_file() -> None:
    text = read_corpus_text(CORPORA / "000_8d285adb8fa87899.txt")
    assert citation_valid("神奈川県川崎市長", text)
    assert not citation_valid("神奈川県横浜市長", text)


def test_citation_supports() -> None:
    spans = [Span("A", 85, 85)]
    ev = "③委託先名\t株式会社 アイネス"
    # quote contains the evidence (after normalisation), even on a line number that is off
    assert citation_supports("A", "③委託先名 株式会社アイネス ④再委託", 1, ev, spans)
    # quote is part of the evidence line
    assert citation_supports("A", "株式会社 アイネス", 85, ev, spans)
    # multi-line quote reaching the evidence line
    assert citation_supports("A", "x\ny\nz", 83, ev, spans)
    # wrong line, unrelated text
    assert not citation_supports("A", "株式会社 日立製作所", 90, ev, spans)
    # right text, wrong card
    assert not citation_supports("B", ev, 85, ev, spans)
    # no evidence location (unanswerable)
    assert not citation_supports("A", ev, 85, ev, [])


# -- latency ---------------------------------------------------------------------------------------------


def test_percentiles() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 50) == 30.0
    assert percentile(values, 95) == pytest.approx(48.0)
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None
    assert latency_summary([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": pytest.approx(2.9)}
    with pytest.raises(ValueError):
        percentile(values, 101)
    np = pytest.importorskip("numpy")
    data = [3.5, 1.0, 7.25, 2.0, 9.0, 4.0, 100.0]
    assert percentile(data, 95) == pytest.approx(float(np.percentile(data, 95)))


# -- aggregation, causes ---------------------------------------------------------------------------------


def _row(id_: str, type_: str, correct: bool, abstained: bool = False, card: int | None = 1, sec: int | None = 1) -> dict:
    answerable = type_ != "unanswerable"
    return {
        "id": id_, "type": type_, "cards": ["A"], "gold_answers": ["x"], "question": "q", "answer": "x",
        "correct": correct, "abstained": abstained, "error": None, "latency_ms": 10.0,
        "card_rank": card if answerable else None, "section_rank": sec if answerable else None,
        "citations": [{"valid": True, "supports": True}], "citation_supported": True if answerable and not abstained else None,
        "context_dump": False,
    }


def test_summarize() -> None:
    rows = [
        _row("q1", "span", True),
        _row("q2", "span", False, sec=None),
        _row("q3", "unanswerable", True, abstained=True),
        _row("q4", "list", False, abstained=True, card=3, sec=4),
    ]
    s = summarize(rows)
    assert s["answerable"] == 3
    assert s["card_hit@1"] == pytest.approx(2 / 3)
    assert s["section_hit@5"] == pytest.approx(2 / 3)
    assert s["section_mrr"] == pytest.approx((1 + 0 + 0.25) / 3)
    assert s["answer_accuracy"] == 0.5
    assert s["abstention_accuracy"] == 1.0
    assert s["false_abstention_rate"] == pytest.approx(1 / 3)
    assert s["latency_p50_ms"] == 10.0


def test_failure_causes() -> None:
    assert failure_cause(_row("q", "unanswerable", False)).startswith("abstention")
    assert failure_cause(_row("q", "span", False, sec=None)).startswith("retrieval")
    assert failure_cause(_row("q", "span", False, abstained=True)).startswith("abstention")
    assert failure_cause(_row("q", "span", False)).startswith("answer composition")
    assert failure_cause(_row("q", "span", False), parse_lost=True).startswith("parse")
    assert failure_cause({**_row("q", "span", False), "error": "boom"}).startswith("error")
    worst = worst_questions([_row("a", "span", True), _row("b", "span", False), _row("c", "span", False, sec=None)])
    assert [r["id"] for r in worst] == ["c", "b"]


def test_load_gold_reads_the_real_set() -> None:
    items = load_gold(GOLD)
    assert len(items) >= 120
    assert {i.type for i in items} <= {"span", "list", "number", "date", "yesno", "cross", "unanswerable"}


def test_load_gold_names_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "gold.jsonl"
    bad.write_text('{"id": "q1"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="gold.jsonl:1"):
        load_gold(bad)


# -- the runner with a stand-in assistant ----------------------------------------------------------------


class _FakeSearcher:
    """Returns, for every question, the lines of its gold evidence (so retrieval is perfect)."""

    def __init__(self, hits_of: dict[str, list]) -> None:
        self.hits_of = hits_of

    def search(self, question: str, k: int = 10, cards=None):  # type: ignore[no-untyped-def]
        return self.hits_of.get(question, [])[:k]


class _FakeAssistant:
    def __init__(self, items, texts) -> None:  # type: ignore[no-untyped-def]
        from qa.config import Settings

        self.settings = Settings.load(root=ROOT)
        hits = {}
        self.by_q = {}
        self.line_of = {}
        for it in items:
            spans = find_evidence(it.evidence, texts, it.cards)
            self.line_of[it.question] = spans[0].line if spans else 1
            hits[it.question] = [SimpleNamespace(chunk=SimpleNamespace(card=s.card, line=s.line, end_line=s.end_line)) for s in spans]
            self.by_q[it.question] = it
        self.searcher = _FakeSearcher(hits)
        self.index = SimpleNamespace(chunks=[])

    def ask(self, question: str):  # type: ignore[no-untyped-def]
        from qa.answering.answer import Answer, Citation

        it = self.by_q[question]
        if not it.answerable:
            return Answer(question=question, answer="記載がありません", abstained=True, latency_ms=5.0)
        if it.id.endswith("3"):
            raise NotImplementedError("not yet")
        card = it.cards[0]
        return Answer(
            question=question,
            answer="、".join(it.answers),
            abstained=False,
            citations=[
                Citation(card, card, f"corpora/{card}.txt", it.section, it.evidence.split("\n")[0], self.line_of[question])
            ],
            latency_ms=12.0,
        )


def test_run_evaluation_writes_report(tmp_path: Path) -> None:
    items = load_gold(GOLD)[:12] + [i for i in load_gold(GOLD) if i.type == "unanswerable"][:2]
    gold = tmp_path / "gold.jsonl"
    with gold.open("w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps({"id": it.id, "question": it.question, "type": it.type, "answers": list(it.answers),
                                "cards": list(it.cards), "section": it.section, "evidence": it.evidence},
                               ensure_ascii=False) + "\n")
    texts = {p.stem: read_corpus_text(p) for p in CORPORA.glob("*.txt")}
    result = run_evaluation(_FakeAssistant(items, texts), gold, tmp_path / "out", baselines=False)
    proj = result["systems"]["project"]
    assert proj["section_hit@1"] == 1.0 and proj["card_mrr"] == 1.0
    assert proj["errors"] == 1  # q003 raises
    assert proj["abstention_accuracy"] == 1.0
    assert proj["citation_validity"] == 1.0
    assert proj["citation_support"] == 1.0
    rows = [json.loads(line) for line in (tmp_path / "out" / "project.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(items)
    assert {"id", "question", "type", "gold_answers", "answer", "abstained", "correct", "card_rank", "section_rank",
            "citations_valid", "citation_supported", "latency_ms"} <= set(rows[0])
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Main table" in report and "## By type" in report and "## By card" in report and "15 worst" in report
    assert (tmp_path / "out" / "accuracy_by_type.png").stat().st_size > 1000
    assert (tmp_path / "out" / "latency.png").stat().st_size > 1000


def test_eval_subcommand_parses() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_eval_command(sub)
    args = parser.parse_args(["eval", "--gold", "g.jsonl", "--out", "o/", "--no-baselines", "--limit", "5"])
    assert (args.gold, args.out, args.no_baselines, args.limit) == ("g.jsonl", "o/", True, 5)
    args = parser.parse_args(["eval"])
    assert args.gold is None and args.no_baselines is False and args.limit is None
