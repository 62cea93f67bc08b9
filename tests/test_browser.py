"""The app in a real browser: Debian's chromium driven by Playwright (never a downloaded browser).

The app runs as `python app.py` in a subprocess on a free local port, reading the session's temporary
index (QA_INDEX_DIR), so the time measured from launch to the first answer is what a user waits for.
Screenshots go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
QUESTION = "生活保護関係情報を受け取る提供先はどこか"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (`make setup-test` installs it)",
    ),
]


@pytest.fixture(scope="module")
def app_server(app_settings, free_port, tmp_path_factory):  # type: ignore[no-untyped-def]
    """`python app.py --port N` on 127.0.0.1; yields (url, launch time, log path)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = {**os.environ, "QA_INDEX_DIR": str(app_settings.index_dir), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("QA_AUTH", None)
    launched = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer on {url} within 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url, launched, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_example_question_in_the_browser(app_server, browser) -> None:  # type: ignore[no-untyped-def]
    url, launched, log_path = app_server
    up = time.perf_counter() - launched
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)

    page.locator("#qa-status").get_by_text("準備完了").wait_for(timeout=180_000)
    ready = time.perf_counter() - launched
    asked = time.perf_counter()
    page.get_by_text(QUESTION, exact=True).first.click()  # an example: clicking it asks it
    page.locator("#qa-sources .qa-cite").first.wait_for(timeout=120_000)
    first_answer = time.perf_counter() - launched
    answer_wait = time.perf_counter() - asked
    timing = (
        f"launch → server up {up:.1f} s → index ready {ready:.1f} s → first answer {first_answer:.1f} s "
        f"(the answer itself: {answer_wait:.1f} s)"
    )
    print("\n" + timing)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "timing.txt").write_text(timing + "\n", encoding="utf-8")

    chat = page.locator("#qa-chat").inner_text()
    for recipient in ("都道府県知事", "市町村長"):
        assert recipient in chat
    sources = page.locator("#qa-sources")
    assert sources.locator(".qa-section").first.inner_text().startswith("節: II 特定個人情報ファイルの概要")
    assert "5. 特定個人情報の提供・移転" in sources.inner_text()
    assert re.search(r"> 提供先\d+", sources.inner_text())
    assert sources.locator(".qa-quote mark, .qa-context mark").count() > 0 or sources.locator("mark").count() > 0
    assert "行目" in sources.inner_text()
    page.screenshot(path=str(SHOTS / "chat_example.png"), full_page=True)

    # The quote's context in the file opens in place.
    sources.locator("details summary").first.click()
    assert sources.locator(".qa-ctx-line.qa-hit").first.is_visible()

    # A follow-up naming no report keeps the conversation's report.
    page.locator("#qa-question textarea").fill("委託先は？")
    page.locator("#qa-send").click()
    page.get_by_text("前の質問と同じ評価書").first.wait_for(timeout=60_000)
    assert "前の質問と同じ評価書（川崎市 生活保護" in page.locator("#qa-chat").inner_text()

    # Bad input: a message in the chat, the page keeps working.
    page.locator("#qa-question textarea").fill("x" * 2001)
    page.locator("#qa-send").click()
    page.get_by_text("【入力エラー】").first.wait_for(timeout=30_000)
    assert "2000" in page.locator("#qa-chat").inner_text()
    assert not errors, errors


def test_report_browser_tab(app_server, browser) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = app_server
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(url)
    page.locator("#qa-status").get_by_text("準備完了").wait_for(timeout=180_000)
    page.get_by_role("tab", name="評価書の中身 / Reports").click()
    page.locator("#qa-card-pick input").click()
    page.get_by_role("option", name="生活保護").first.click()
    page.locator("#qa-meta").get_by_text("川崎市", exact=True).wait_for(timeout=30_000)
    page.locator("#qa-kind-pick input").click()
    page.get_by_role("option", name="提供先", exact=True).click()
    page.locator("#qa-records").get_by_text("提供先1 都道府県知事").first.wait_for(timeout=30_000)
    assert "特定個人情報の提供・移転" in page.locator("#qa-tree").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "reports_tab.png"), full_page=False)
