"""Several users at once: the app on a local port, questions sent simultaneously through gradio_client."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from qa.webapp import NOT_STATED

from conftest import text_of

# gradio's queue statistics use pandas options that pandas 3 deprecates; not this app's concern.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")

MATSUDO = "003_5fcca4f6e38d6e1a"
JIDO = "000_8d285adb8fa87899"

# question, filter, words the answer must contain (checked against the reports), file the sources must cite
CASES: list[tuple[str, list[str], list[str], str | None]] = [
    ("生活保護関係情報を受け取る提供先はどこか", [], ["都道府県知事", "市町村長", "文部科学大臣"], "004_f28069411e69241a"),
    ("松戸市の住民基本台帳の委託先は？", [], ["日本電気", "キャリアリンク"], MATSUDO),
    ("熊谷市の子育て支援に関する事務の評価書の公表日は", [], ["令和7年8月27日"], "001_fea63e88436e34da"),
    ("川崎市の児童手当の評価書はいつ公表されましたか", [], ["令和7年7月31日"], JIDO),
    ("豊中市の子ども医療費の事務の委託先をすべて教えてください", [], ["富士通Japan", "NTTデータ関西", "パソナ"], "002_eeb43361c0371a47"),
    ("公表日が最も新しい評価書はどれ？", [], ["熊谷市", "令和7年8月27日"], "001_fea63e88436e34da"),
    ("委託先は？", [JIDO], ["アイネス", "日立製作所"], JIDO),
    ("委託先は？", [MATSUDO], ["日本電気"], MATSUDO),
    ("名古屋市の住民基本台帳の評価書で委託先はどこ？", [], [NOT_STATED], None),
    ("生活保護関係情報を受け取る提供先はどこか", [], ["都道府県知事", "市町村長"], "004_f28069411e69241a"),
]


def client(url: str):  # type: ignore[no-untyped-def]
    from gradio_client import Client

    return Client(url, verbose=False)


def test_ten_simultaneous_questions_are_all_answered(server_url: str) -> None:
    assert len(CASES) == 10
    start = threading.Barrier(len(CASES))
    results: dict[int, Any] = {}
    timings: dict[int, float] = {}

    def user(i: int) -> None:
        try:
            c = client(server_url)  # one client = one browser session
            question, only, _, _ = CASES[i]
            start.wait(timeout=60)
            t = time.perf_counter()
            results[i] = c.predict(question, [], only, api_name="/chat")
            timings[i] = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 - reported below with the question
            results[i] = exc

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(len(CASES))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - t0
    print(f"\n10 simultaneous questions: {wall:.1f} s in all; each {min(timings.values(), default=0):.2f}–"
          f"{max(timings.values(), default=0):.2f} s")

    for i, (question, only, expected, source) in enumerate(CASES):
        result = results.get(i)
        assert not isinstance(result, Exception) and result is not None, f"{question!r}: {result!r}"
        history, sources, box = result
        assert text_of(history[0]) and history[0]["role"] == "user"
        answer = text_of(history[-1])
        for word in expected:
            assert word in answer or word in sources, f"{question!r} ({only}): {word!r} missing from {answer[:300]!r}"
        if source:
            assert f"corpora/{source}.txt" in sources, question
            assert 'class="qa-viewer"' in sources and 'class="qa-ctx-line qa-hit"' in sources
        assert box == ""


def test_each_session_keeps_its_own_conversation(server_url: str) -> None:
    """Two users ask a follow-up at the same time: each gets the report of their own conversation."""
    pairs = [
        ("松戸市の住民基本台帳の事務について教えて", ["日本電気"]),
        ("川崎市の児童手当の評価書はいつ公表されましたか", ["アイネス", "日立製作所"]),
    ] * 2
    start = threading.Barrier(len(pairs))
    answers: dict[int, Any] = {}

    def user(i: int) -> None:
        try:
            c = client(server_url)
            first, _ = pairs[i]
            start.wait(timeout=60)
            history, _, _ = c.predict(first, [], [], api_name="/chat")
            history, _, _ = c.predict("委託先は？", history, [], api_name="/chat")
            answers[i] = history
        except Exception as exc:  # noqa: BLE001
            answers[i] = exc

    threads = [threading.Thread(target=user, args=(i,)) for i in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for i, (first, expected) in enumerate(pairs):
        history = answers.get(i)
        assert isinstance(history, list), f"{first!r}: {history!r}"
        assert len(history) == 4
        follow_up = text_of(history[-1])
        for word in expected:
            assert word in follow_up, f"after {first!r}, 委託先は？ answered {follow_up[:300]!r}"
        assert "前の質問と同じ評価書" in follow_up


def test_bad_input_through_the_api_is_a_message(server_url: str) -> None:
    c = client(server_url)
    for bad in ("", "x" * 2001, "\x00\x01\x02"):
        history, sources, box = c.predict(bad, [], [], api_name="/chat")
        assert text_of(history[-1]).startswith("【入力エラー】")


def test_the_json_endpoint(server_url: str) -> None:
    c = client(server_url)
    out = c.predict("松戸市の住民基本台帳の委託先は？", None, api_name="/ask")
    assert "日本電気" in out["answer"] and out["citations"][0]["line"] > 0
    assert "error" in c.predict("", None, api_name="/ask")
