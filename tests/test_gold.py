"""Tests for the gold question/answer set and its checker (eval/check_gold.py)."""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "gold.jsonl"
CORPORA = ROOT / "corpora" if (ROOT / "corpora").is_dir() else Path("/work/shared/corpora")


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_gold", ROOT / "eval" / "check_gold.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["check_gold"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


check_gold = _load_checker()


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cards() -> dict[str, str]:
    return check_gold.load_cards(CORPORA)


@pytest.fixture(scope="module")
def result():
    return check_gold.check_gold(GOLD, CORPORA)


def test_gold_has_enough_questions(records):
    assert len(records) >= 120


def test_gold_has_enough_unanswerable(records):
    assert sum(r["type"] == "unanswerable" for r in records) >= 12


def test_gold_has_enough_english(records):
    english = sum(check_gold.is_english(r["question"]) for r in records)
    assert english * 10 >= len(records)


def test_every_type_present(records):
    assert {r["type"] for r in records} == set(check_gold.KNOWN_TYPES)


def test_every_card_covered(records, cards):
    counts = {card: 0 for card in cards}
    for rec in records:
        for card in rec["cards"]:
            counts[card] = counts.get(card, 0) + 1
    assert all(n >= 15 for n in counts.values()), counts


def test_checker_reports_no_failures(result):
    assert result.failures == []
    assert result.ok


def _good_record(records: list[dict]) -> dict:
    return copy.deepcopy(next(r for r in records if r["type"] == "span"))


def test_checker_flags_evidence_not_in_file(records, cards):
    bad = _good_record(records)
    bad["evidence"] = "この文字列はどの評価書にも存在しない"
    res = check_gold.check_records([bad], cards)
    assert not res.ok
    assert any("evidence not found" in f for f in res.failures)


def test_checker_flags_unknown_type(records, cards):
    bad = _good_record(records)
    bad["type"] = "essay"
    res = check_gold.check_records([bad], cards)
    assert any("unknown type" in f for f in res.failures)


def test_checker_flags_duplicate_id(records, cards):
    first = _good_record(records)
    second = copy.deepcopy(first)
    res = check_gold.check_records([first, second], cards)
    assert any("duplicate id" in f for f in res.failures)


def test_checker_flags_missing_answer_and_unknown_card(records, cards):
    bad = _good_record(records)
    bad["answers"] = ["評価書に書かれていない答え"]
    bad["cards"] = ["999_nonexistent"]
    res = check_gold.check_records([bad], cards)
    assert any("has no file" in f for f in res.failures)
    bad2 = _good_record(records)
    bad2["answers"] = ["評価書に書かれていない答え"]
    res2 = check_gold.check_records([bad2], cards)
    assert any("not found" in f for f in res2.failures)
