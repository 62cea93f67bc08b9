"""Load: 20 users at once through the Gradio API (gradio_client, loopback only), 3 questions each.

Every answer must be right (the expected values were checked in the reports); latency is reported
(p50/p95/max, printed with -s or in the captured output), not asserted, apart from an overall bound that
only catches a hang.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from qa.eval_metrics import percentile

from conftest import text_of

# gradio's queue statistics use pandas options that pandas 3 deprecates; not this app's concern.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")

USERS = 20
QUESTIONS_PER_USER = 3
OVERALL_SECONDS = 600  # a hang, not slowness

# question → (words the answer must contain, report file the sources must cite); verified in the reports.
KNOWN = {
    "全項目評価書はどれか": (["松戸市"], "003_5fcca4f6e38d6e1a"),
    "熊谷市の子育て支援の評価書の公表日は": (["令和7年8月27日"], "001_fea63e88436e34da"),
    "松戸市の住民基本台帳の委託先は？": (["日本電気"], "003_5fcca4f6e38d6e1a"),
    "生活保護関係情報を受け取る提供先はどこか": (["独立行政法人日本学生支援機構"], "004_f28069411e69241a"),
    "川崎市の児童手当の評価書はいつ公表されましたか": (["令和7年7月31日"], "000_8d285adb8fa87899"),
}


def test_twenty_users_three_questions_each(server_url: str) -> None:
    from gradio_client import Client

    assert server_url.startswith("http://127.0.0.1:")
    questions = list(KNOWN)
    plan = {u: random.Random(u).sample(questions, QUESTIONS_PER_USER) for u in range(USERS)}
    results: list[tuple[int, str, Any, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(USERS)

    def user(u: int) -> None:
        try:
            client = Client(server_url, verbose=False)  # one client = one browser session
            start.wait(timeout=120)
            for question in plan[u]:
                t = time.perf_counter()
                # A new conversation per question: each is asked on its own, not as a follow-up.
                out = client.predict(question, [], [], api_name="/chat")
                with lock:
                    results.append((u, question, out, time.perf_counter() - t))
        except Exception as exc:  # noqa: BLE001 - reported below with the user
            with lock:
                errors.append(f"user {u}: {type(exc).__name__}: {exc}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, OVERALL_SECONDS - (time.perf_counter() - t0)))
    wall = time.perf_counter() - t0
    assert not any(t.is_alive() for t in threads), f"users still waiting after {OVERALL_SECONDS} s"
    assert not errors, errors

    latencies = [r[3] for r in results]
    print(
        f"\n{USERS} users x {QUESTIONS_PER_USER} questions through the Gradio API: {len(results)} answers in "
        f"{wall:.1f} s; latency p50 {percentile(latencies, 50):.2f} s, p95 {percentile(latencies, 95):.2f} s, "
        f"max {max(latencies):.2f} s"
    )
    assert len(results) == USERS * QUESTIONS_PER_USER
    wrong = []
    for u, question, (history, sources, box), _ in results:
        words, source = KNOWN[question]
        answer = text_of(history[-1])
        if not all(w in answer for w in words) or f"corpora/{source}.txt" not in sources or box != "":
            wrong.append(f"user {u}, {question!r}: {answer[:200]!r}")
    assert not wrong, "\n".join(wrong)
