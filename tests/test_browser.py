"""The app in a real browser: Debian's chromium driven by Playwright (never a downloaded browser).

The app runs as `python app.py --root <temporary project>` in a subprocess on a free local port. The
temporary project holds four of the five reports (松戸市 is left out, to be added from the page) and its
own index, so the project's corpora/ and index/ are never touched. Full-page screenshots go to
artifacts/screenshots/ (git-ignored): look at them.
"""

from __future__ import annotations

import os
import re
import shutil
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
]
MATSUDO = "003_5fcca4f6e38d6e1a.txt"
QUESTION = "生活保護関係情報を受け取る提供先はどこか"
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e]")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (`make setup-test` installs it)",
    ),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary project: pyproject.toml and corpora/ with every report but 松戸市's."""
    root = tmp_path_factory.mktemp("project")
    (root / "corpora").mkdir()
    for path in (ROOT / "corpora").iterdir():
        if path.name != MATSUDO:
            shutil.copy2(path, root / "corpora" / path.name)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture(scope="module")
def app_server(project: Path, free_port, tmp_path_factory):  # type: ignore[no-untyped-def]
    """`python app.py --root <project> --port N` on 127.0.0.1 (it builds its index first); yields the URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    for name in ("QA_AUTH", "QA_INDEX_DIR", "QA_CORPUS_DIR", "QA_ROOT"):
        env.pop(name, None)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--root", str(project), "--host", "127.0.0.1", "--port", str(port)],
            cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
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
                pytest.fail(f"app.py did not answer on {url} within 240 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
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


def open_page(browser, url: str, errors: list[str] | None = None):  # type: ignore[no-untyped-def]
    # An English-language browser: the page must still be Japanese.
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-US", accept_downloads=True)
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.locator("#qa-status").get_by_text("準備完了").wait_for(timeout=240_000)
    return page


def ask(page, question: str, answers_before: int) -> None:  # type: ignore[no-untyped-def]
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator(f'#qa-chat a[href="#qa-cite-{answers_before + 1}-1"]').first.wait_for(timeout=120_000)


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


CHROME_TEXTS = """
() => {
  const out = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const skip = (el) => el.closest('#qa-chat .message, #qa-sources, .table-wrap, #qa-summary, #qa-meta, #qa-tree, #qa-records, #qa-fields, #qa-status, .qa-hidden');
  document.querySelectorAll('button, label, [placeholder], [title], [aria-label], .tab-nav *, th, footer a, .examples *').forEach((el) => {
    if (!visible(el) || skip(el)) return;
    for (const text of [el.getAttribute('placeholder'), el.getAttribute('title'), el.getAttribute('aria-label'),
                        el.children.length === 0 ? el.textContent : null]) {
      if (text && text.trim()) out.push(text.trim());
    }
  });
  return out;
}
"""


def english_only(texts: list[str]) -> list[str]:
    """Texts with Latin letters and no Japanese; file formats named on their own (CSV) are not words to translate."""
    return sorted({t for t in texts if re.search(r"[A-Za-z]{2,}", t) and not JAPANESE.search(t)
                   and t not in {"CSV", "Markdown", "TSV", "HTML"}})


def test_chat_viewer_follow_up_and_clear(app_server, browser) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = open_page(browser, app_server, errors)
    assert english_only(page.evaluate(CHROME_TEXTS)) == []
    box = page.locator("#qa-question textarea")
    assert "Enter で送信" in box.get_attribute("placeholder") and "Shift+Enter で改行" in box.get_attribute("placeholder")

    # Shift+Enter adds a line, Enter sends.
    box.fill("生活保護関係情報を")
    box.press("Shift+Enter")
    box.type("受け取る提供先はどこか")
    assert box.input_value() == "生活保護関係情報を\n受け取る提供先はどこか"
    box.fill(QUESTION)
    box.press("Enter")
    chat = page.locator("#qa-chat")
    chat.locator('a[href="#qa-cite-1-1"]').wait_for(timeout=120_000)
    assert "都道府県知事" in chat.inner_text() and "ブロック" not in chat.inner_text()

    viewer = page.locator("#qa-sources")
    chat.locator('a[href="#qa-cite-1-3"]').click()
    viewer.locator('.qa-viewer[data-ref="1-3"]').wait_for(timeout=30_000)
    chat.locator('a[href="#qa-cite-1-1"]').click()
    viewer.locator('.qa-viewer[data-ref="1-1"]').wait_for(timeout=30_000)
    hit = viewer.locator(".qa-ctx-line.qa-hit")
    assert hit.count() >= 1 and "都道府県知事" in hit.first.inner_text()
    assert hit.first.locator("mark.qa-q").inner_text() == "都道府県知事"
    line = int(hit.first.get_attribute("data-line"))
    numbers = [int(x) for x in viewer.locator(".qa-ctx-line").evaluate_all("els => els.map(e => e.dataset.line)")]
    assert line - 1 in numbers and line + 1 in numbers  # its neighbours are shown around it
    assert "提供先1" in viewer.locator(".qa-viewer .qa-section").inner_text()  # the breadcrumb above it
    assert "corpora/004_f28069411e69241a.txt" in viewer.inner_text() and f"{line} 行目" in viewer.inner_text()
    assert "川崎市 生活保護" in viewer.locator(".qa-viewer .qa-card").inner_text()  # a title, not the hash name
    assert "川崎市 生活保護" in page.locator("#qa-scope").inner_text()
    shot(page, "chat_viewer.png")

    # Export: the list answer as Markdown and as CSV.
    with page.expect_download() as md_info:
        page.locator("#qa-save-md").click()
    markdown = Path(md_info.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith("# 質問: ") and "## 出典" in markdown and "994 行目" in markdown
    with page.expect_download() as csv_info:
        page.locator("#qa-save-csv").click()
    rows = Path(csv_info.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("番号,値（原文の引用）") and len(rows) >= 15

    # A second answer; the first keeps its own citations.
    ask(page, "川崎市の児童手当の評価書はいつ公表されましたか", 1)
    assert "令和7年7月31日" in chat.inner_text()
    viewer.locator('.qa-viewer[data-ref="2-1"]').wait_for(timeout=30_000)
    chat.locator('a[href="#qa-cite-1-1"]').click()
    viewer.locator('.qa-viewer[data-ref="1-1"]').wait_for(timeout=30_000)
    assert "質問 1" in viewer.locator(".qa-for").inner_text()
    assert "都道府県知事" in viewer.locator(".qa-ctx-line.qa-hit").first.inner_text()

    # The chat's clear button and 新しい会話 both forget the conversation's report.
    assert "児童手当" in page.locator("#qa-scope").inner_text()
    page.locator("#qa-chat").get_by_role("button", name=re.compile("クリア|消去|削除")).first.click()
    page.locator("#qa-scope").get_by_text("すべての評価書").wait_for(timeout=30_000)
    assert not chat.locator("a.qa-ref").count()
    assert "回答の [1] [2]" in viewer.inner_text()
    ask(page, "川崎市の児童手当の評価書はいつ公表されましたか", 0)
    page.locator("#qa-clear").click()
    page.locator("#qa-scope").get_by_text("すべての評価書").wait_for(timeout=30_000)
    box.fill("委託先は？")
    box.press("Enter")
    chat.get_by_text("回答時間").first.wait_for(timeout=60_000)  # the answer is complete
    assert "前の質問と同じ評価書" not in chat.inner_text()

    # Bad input: a Japanese message in the chat; the page keeps working.
    page.locator("#qa-clear").click()
    box.fill("x" * 2001)
    page.locator("#qa-send").click()
    page.get_by_text("【入力エラー】").first.wait_for(timeout=30_000)
    assert "2000 文字以内" in chat.inner_text() and "the question" not in chat.inner_text()
    assert not errors, errors


def test_report_browser_marks_unreadable_parts(app_server, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, app_server)
    page.get_by_role("tab", name="評価書の中身").click()
    page.locator("#qa-card-pick input").click()
    page.get_by_role("option", name=re.compile("生活保護")).first.click()
    page.locator("#qa-meta").get_by_text("川崎市", exact=True).wait_for(timeout=30_000)
    page.locator("#qa-kind-pick input").click()
    page.get_by_role("option", name="委託事項", exact=True).click()
    records = page.locator("#qa-records")
    records.get_by_text("委託事項4").first.wait_for(timeout=30_000)
    text = records.inner_text()
    assert "【読み取れません】" in text and "人数の範囲が、人数ではない項目に付いています" in text
    assert "原文: 923行: ①委託内容 ／ 942行: 1万人以上10万人未満" in text  # the raw lines the parser joined
    assert english_only(page.evaluate(CHROME_TEXTS)) == []
    shot(page, "reports_004.png")
    page.locator("#qa-kind-pick input").click()
    page.get_by_role("option", name="提供先", exact=True).click()
    records.get_by_text("提供先1 都道府県知事").first.wait_for(timeout=30_000)
    assert "読み取れません" in records.inner_text()
    shot(page, "reports_004_recipients.png")


def test_upload_a_report_then_ask_about_it(app_server, browser, project: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = sorted(p.name for p in (project / "corpora").iterdir())
    page = open_page(browser, app_server)
    page.get_by_role("tab", name="評価書を追加").click()
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(21 * 1024 * 1024)
    page.locator("#qa-upload input[type=file]").set_input_files(str(big))
    toast = page.locator('[data-testid="toast-body"]')
    toast.get_by_text("ファイルが大きすぎます").wait_for(timeout=30_000)
    assert "エラー" in toast.inner_text() and "Error" not in toast.inner_text()
    page = open_page(browser, app_server)
    page.get_by_role("tab", name="評価書を追加").click()
    bad = tmp_path / "scan.txt"
    bad.write_bytes(bytes(range(256)) * 64)
    page.locator("#qa-upload input[type=file]").set_input_files(str(bad))
    page.locator("#qa-add").click()
    page.locator("#qa-add-status").get_by_text("追加できません").wait_for(timeout=60_000)
    assert "バイナリ" in page.locator("#qa-add-status").inner_text()
    assert sorted(p.name for p in (project / "corpora").iterdir()) == before  # nothing changed

    page = open_page(browser, app_server)
    page.get_by_role("tab", name="評価書を追加").click()
    copy = tmp_path / "matsudo_copy.txt"
    shutil.copy2(ROOT / "corpora" / MATSUDO, copy)
    page.locator("#qa-upload input[type=file]").set_input_files(str(copy))
    page.locator("#qa-add").click()
    page.locator("#qa-add-status").get_by_text(re.compile("索引を更新|ファイルを確認|新しい索引")).first.wait_for(timeout=120_000)
    shot(page, "upload_progress.png")  # the progress bar while the new report is indexed
    page.locator("#qa-add-status").get_by_text("追加しました").wait_for(timeout=300_000)
    assert "松戸市" in page.locator("#qa-add-status").inner_text()
    assert (project / "corpora" / "matsudo_copy.txt").read_bytes() == copy.read_bytes()
    shot(page, "upload_done.png")

    page.get_by_role("tab", name="質問").click()
    page.locator("#qa-cards input").click()
    assert page.get_by_role("option", name=re.compile("松戸市")).count() == 1
    page.keyboard.press("Escape")
    ask(page, "松戸市の住民基本台帳の委託先は？", 0)
    assert "日本電気" in page.locator("#qa-chat").inner_text()
    assert "corpora/matsudo_copy.txt" in page.locator("#qa-sources").inner_text()
    shot(page, "upload_asked.png")
