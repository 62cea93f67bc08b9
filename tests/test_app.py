"""The web app's handlers, called in-process (no browser, no server): what a reader sees for each turn."""

from __future__ import annotations

import argparse
import html
import re
import threading
from dataclasses import replace

import pytest

from qa.webapp import (
    EXAMPLES,
    NOT_STATED,
    AssistantLoader,
    ChatHandlers,
    build_app,
    highlight,
    md_escape,
    parse_auth,
    question_terms,
    render_answer_message,
    render_sources,
)

SEIKATSU = "004_f28069411e69241a"
MATSUDO = "003_5fcca4f6e38d6e1a"
JIDO = "000_8d285adb8fa87899"


@pytest.fixture(scope="module")
def demo(app_assistant):  # type: ignore[no-untyped-def]
    return build_app(app_assistant)


@pytest.fixture()
def handlers(demo) -> ChatHandlers:  # type: ignore[no-untyped-def]
    return demo.qa_handlers


def turn(handlers: ChatHandlers, question, history=None, selected=None, session=None):  # type: ignore[no-untyped-def]
    """Run one chat turn to the end; returns (all yielded steps, final history, sources, session, textbox)."""
    steps = list(handlers.respond(question, history or [], selected or [], session or {}))
    assert steps, "the handler must yield at least once"
    history, sources, session, box = steps[-1]
    return steps, history, sources, session, box


def last_text(history: list) -> str:
    return history[-1]["content"]


# -- the example question ----------------------------------------------------------------------------------


def test_example_question_lists_recipients_with_sources(handlers: ChatHandlers) -> None:
    question = "生活保護関係情報を受け取る提供先はどこか"
    assert question in EXAMPLES
    steps, history, sources, session, box = turn(handlers, question)

    assert [m["role"] for m in history] == ["user", "assistant"]
    answer = last_text(history)
    for recipient in ("都道府県知事", "市町村長", "文部科学大臣"):
        assert recipient in answer
    assert NOT_STATED not in answer
    # Streamed: partial answers came before the final one.
    assert len(steps) > 3
    assert any("▌" in s[0][-1]["content"] for s in steps[:-1])
    # The viewer: citation [1] in its report (title, breadcrumb, quote, file, line, the lines around it).
    assert 'class="qa-viewer" data-ref="1-1"' in sources and 'class="qa-cite' in sources
    assert "川崎市 生活保護" in sources and "corpora/004_f28069411e69241a.txt" in sources
    assert "II 特定個人情報ファイルの概要 &gt; 5. 特定個人情報の提供・移転" in sources
    assert re.search(r'<div class="qa-section">[^<]*&gt; 提供先\d+</div>', sources)
    assert re.search(r'<blockquote class="qa-quote">[^<]*(都道府県知事|市町村長)', sources)
    assert re.search(r'<span class="qa-line">\d+ 行目</span>', sources)
    assert '<div class="qa-ctx-line qa-hit" data-line="' in sources and '<mark class="qa-q">' in sources
    assert "<mark>提供先</mark>" in sources or "<mark>生活保護関係情報</mark>" in sources
    assert "スコア" not in sources and "ブロック" not in sources and "ブロック" not in answer
    # Every citation of the answer is listed, each an [n] link of this answer, with its quote and line.
    answer = handlers.loader.assistant.ask(question)
    assert answer.citations
    for n, c in enumerate(answer.citations, start=1):
        assert f'href="#qa-cite-1-{n}"' in sources and f'href="#qa-cite-1-{n}"' in last_text(history)
        assert html.escape(c.quote[:60]) in sources
        assert f'<span class="qa-line">{c.line} 行目</span>' in sources
    # The session remembers the card; the textbox is cleared.
    assert session["cards"] == [SEIKATSU]
    assert box == ""


def test_sources_show_each_quote_in_its_file_context(handlers: ChatHandlers, app_assistant) -> None:  # type: ignore[no-untyped-def]
    _, _, sources, _, _ = turn(handlers, "松戸市の住民基本台帳の委託先はどこですか")
    answer = app_assistant.ask("松戸市の住民基本台帳の委託先はどこですか")
    lines = app_assistant.source(MATSUDO).lines
    first = answer.citations[0]
    assert first.quote in lines[first.line - 1]  # the cited line really holds the quote
    assert f'<span class="qa-lineno">{first.line}</span>' in sources
    assert "日本電気" in sources


# -- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["", "   \n\t ", "a" * 2001, "あ" * 5000, "\x00\x07\x1b\u200b", None, 42],
    ids=["empty", "blank", "2001-chars", "5000-chars", "control-only", "none", "not-text"],
)
def test_bad_input_gets_a_message_not_a_stack_trace(handlers: ChatHandlers, bad) -> None:  # type: ignore[no-untyped-def]
    steps, history, sources, session, _ = turn(handlers, bad, session={"cards": [SEIKATSU]})
    assert len(steps) == 1
    message = last_text(history)
    assert message.startswith("【入力エラー】")
    assert "Traceback" not in message and "Error(" not in message
    if isinstance(bad, str) and len(bad) > 2000:
        assert "2000" in message or "2,000" in message
    assert session == {"cards": [SEIKATSU]}  # unchanged
    assert 'class="qa-cite"' not in sources


def test_control_characters_are_removed_and_said_so(handlers: ChatHandlers) -> None:
    _, history, _, _, _ = turn(handlers, "松戸市の\x00住民基本台帳の\x1b委託先は？")
    message = last_text(history)
    assert "日本電気" in message
    assert "制御文字" in message
    assert "\x00" not in history[0]["content"] and "\x1b" not in history[0]["content"]


def test_exactly_2000_characters_is_accepted(handlers: ChatHandlers) -> None:
    question = "松戸市の住民基本台帳の委託先は？"
    question = question + "x" * (2000 - len(question))
    assert len(question) == 2000
    _, history, _, _, _ = turn(handlers, question)
    assert not last_text(history).startswith("【入力エラー】")


def test_markup_in_a_question_is_shown_literally(handlers: ChatHandlers) -> None:
    _, history, _, _, _ = turn(handlers, "<script>alert(1)</script> 松戸市の委託先は？")
    assert "<script>" not in history[0]["content"]
    assert "&lt;script&gt;" in history[0]["content"]


def test_an_internal_failure_becomes_a_message(app_assistant) -> None:  # type: ignore[no-untyped-def]
    class Broken:
        cards = app_assistant.cards
        settings = app_assistant.settings
        searcher = app_assistant.searcher

        def stream(self, question, cards=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom: secret internals")
            yield  # pragma: no cover

    handlers = ChatHandlers(AssistantLoader(Broken()))
    _, history, _, session, _ = turn(handlers, "松戸市の委託先は？")
    assert "内部エラー" in last_text(history)
    assert "boom" not in last_text(history) and "Traceback" not in last_text(history)
    assert "cards" not in session


# -- follow-up questions -------------------------------------------------------------------------------------


def test_follow_up_reuses_the_previous_answers_cards(handlers: ChatHandlers, app_assistant) -> None:  # type: ignore[no-untyped-def]
    _, history, _, session, _ = turn(handlers, "松戸市の住民基本台帳の事務について教えて")
    assert session["cards"] == [MATSUDO]
    plan = handlers.plan(app_assistant, "委託先は？", [], session)
    assert plan.cards == [MATSUDO]
    _, history, sources, session, _ = turn(handlers, "委託先は？", history, [], session)
    message = last_text(history)
    assert "日本電気" in message  # 松戸市's contractor, not another report's
    assert "前の質問と同じ評価書" in message
    assert "corpora/003_5fcca4f6e38d6e1a.txt" in sources
    assert len(history) == 4 and session["cards"] == [MATSUDO]


def test_follow_up_in_the_issue(handlers: ChatHandlers, app_assistant) -> None:  # type: ignore[no-untyped-def]
    _, history, _, session, _ = turn(handlers, "川崎市の生活保護の事務で特定個人情報を提供する先はどこか")
    assert session["cards"] == [SEIKATSU]
    assert handlers.plan(app_assistant, "委託先は？", [], session).cards == [SEIKATSU]
    _, history, _, session, _ = turn(handlers, "委託先は？", history, [], session)
    assert session["cards"] == [SEIKATSU]
    assert "前の質問と同じ評価書" in last_text(history)


def test_naming_another_report_leaves_the_previous_one(handlers: ChatHandlers, app_assistant) -> None:  # type: ignore[no-untyped-def]
    session = {"cards": [JIDO]}
    assert handlers.plan(app_assistant, "松戸市の委託先は？", [], session).cards is None
    _, history, _, session, _ = turn(handlers, "松戸市の委託先は？", session=session)
    assert "日本電気" in last_text(history)
    assert "前の質問と同じ評価書" not in last_text(history)
    assert session["cards"] == [MATSUDO]


def test_a_question_across_reports_is_not_narrowed(handlers: ChatHandlers, app_assistant) -> None:  # type: ignore[no-untyped-def]
    assert handlers.plan(app_assistant, "公表日が最も新しい評価書はどれ？", [], {"cards": [JIDO]}).cards is None


def test_the_filter_wins_over_the_conversation(handlers: ChatHandlers) -> None:
    _, history, _, session, _ = turn(handlers, "委託先は？", selected=[MATSUDO], session={"cards": [SEIKATSU]})
    assert "日本電気" in last_text(history)
    assert "絞り込み" in last_text(history)
    assert session["cards"] == [MATSUDO]


def test_sessions_do_not_share_state(handlers: ChatHandlers) -> None:
    a: dict = {}
    _, _, _, a2, _ = turn(handlers, "松戸市の住民基本台帳の委託先は？", session=a)
    assert a == {}  # the handler returns a new state, it never mutates the one it was given
    assert a2["cards"] == [MATSUDO]


def test_reset_clears_the_conversation(handlers: ChatHandlers) -> None:
    # Four outputs: the question box is not among them, so text typed meanwhile stays (see qa.webapp).
    history, sources, session, selected = handlers.reset()
    assert history == [] and session == {} and selected == []
    assert "qa-cite" not in sources


# -- rendering: abstention, escaping, highlighting ---------------------------------------------------------


def test_an_abstention_is_marked_and_shows_the_nearest_sections(app_assistant) -> None:  # type: ignore[no-untyped-def]
    answer = app_assistant.ask("豊中市の子ども医療費の評価書で、特定個人情報の提供先はどこですか")
    answer = replace_answer(answer, abstained=True, citations=[])
    html_out = render_sources(answer, app_assistant, answer.question)
    message = render_answer_message(answer, app_assistant)
    assert NOT_STATED in html_out and NOT_STATED in message
    assert 'class="qa-abstain"' in html_out
    assert "近い記載" in html_out and 'class="qa-near"' in html_out
    assert "<details open>" in html_out


def replace_answer(answer, **changes):  # type: ignore[no-untyped-def]
    try:
        return replace(answer, **changes)
    except TypeError:  # not a dataclass any more: copy by attributes
        import copy

        out = copy.copy(answer)
        for k, v in changes.items():
            setattr(out, k, v)
        return out


def test_report_text_is_escaped_everywhere(app_assistant) -> None:  # type: ignore[no-untyped-def]
    from qa.answering.answer import Answer, Citation, Retrieved

    evil = '<img src=x onerror="alert(1)"> & <選択肢> *太字* [link](javascript:x)'
    answer = Answer(
        question="<b>選択肢</b>は？",
        answer=evil,
        abstained=False,
        citations=[Citation(card="zzz", title="<i>t</i>", source="corpora/<x>.txt", section="A > <B>", quote=evil, line=3)],
        retrieved=[Retrieved(card="zzz", source="s", section="<s>", score=1.0, text=evil, line=3)],
        cards=["zzz"],
    )
    out = render_sources(answer, None, answer.question)
    assert "<img" not in out and "<選択肢>" not in out and "<i>" not in out and "<B>" not in out
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    assert "&lt;<mark>選択肢</mark>&gt;" in out
    message = render_answer_message(answer, None)
    assert "<img" not in message and "<選択肢>" not in message
    assert "\\*太字\\*" in message and "\\[link\\]\\(javascript:x\\)" in message


def test_highlight_matches_width_variants_and_keeps_the_raw_text() -> None:
    assert highlight("番号法第１９条第８号", ["19条"]) == "番号法第<mark>１９条</mark>第８号"
    assert highlight("a<b>c", ["b"]) == "a&lt;<mark>b</mark>&gt;c"
    assert highlight("提供先と提供", ["提供先", "提供"]) == "<mark>提供先</mark>と<mark>提供</mark>"
    assert highlight("text", []) == "text"


def test_question_terms_are_content_words() -> None:
    terms = question_terms("生活保護関係情報を受け取る提供先はどこか")
    assert "生活保護関係情報" in terms and "提供先" in terms and "生活保護" in terms
    assert not {"を", "は", "どこ", "か"} & set(terms)
    assert question_terms("") == []
    assert "report" not in question_terms("Which report was published most recently?")


def test_md_escape() -> None:
    assert md_escape("1. a_b *c* <d> & $x$") == "1\\. a\\_b \\*c\\* &lt;d&gt; &amp; \\$x\\$"


# -- loading, status, report browser -----------------------------------------------------------------------


def test_questions_wait_for_the_index_with_a_status_line(app_assistant) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()

    def factory(progress):  # type: ignore[no-untyped-def]
        progress("embedding", 2, 5)
        release.wait(30)
        return app_assistant

    loader = AssistantLoader(factory).start()
    handlers = ChatHandlers(loader, wait_step=0.05)
    assert "ベクトル化中 2/5" in loader.status() or "2/5" in loader.status()
    status, *_ = handlers.refresh()
    assert "準備中" in status
    steps = handlers.respond("松戸市の委託先は？", [], [], {})
    first = next(steps)
    assert "準備" in first[0][-1]["content"]
    release.set()
    *_, final = steps
    assert "日本電気" in final[0][-1]["content"]
    status, cards, picker, timer = handlers.refresh()
    assert "準備完了" in status and "5 件" in status
    assert len(cards.choices) == 5 and timer.active is False


def test_a_failed_load_is_reported_in_the_page(app_assistant) -> None:  # type: ignore[no-untyped-def]
    from qa.errors import IndexNotFoundError

    def factory():  # type: ignore[no-untyped-def]
        raise IndexNotFoundError("/nowhere")

    loader = AssistantLoader(factory).start()
    loader.wait(5)
    assert loader.failed and "索引を読み込めませんでした" in loader.status()
    _, history, _, _, _ = turn(ChatHandlers(loader), "松戸市の委託先は？")
    assert "索引を読み込めませんでした" in last_text(history) and "qa index" in last_text(history)


def test_report_browser_shows_metadata_sections_and_records(handlers: ChatHandlers) -> None:
    meta, sections, records, fields, kinds, summary = handlers.browse(SEIKATSU, None)
    assert ["自治体", "川崎市"] in meta
    assert any(row[0] == "公表日" for row in meta)
    assert any("5. 特定個人情報の提供・移転" in row[1] for row in sections)
    assert all(isinstance(row[2], int) for row in sections)
    recipients = {row[0] for row in records if row[0].startswith("提供先")}
    assert "提供先1 都道府県知事" in recipients and "提供先2 市町村長" in recipients
    assert any(row[2].endswith("提供先における用途") and "小児慢性特定疾病" in row[3] for row in records)
    assert not any(row[0].startswith("変更箇所") for row in records)
    assert "提供先 35" in summary
    assert "委託事項" in kinds.choices[1:] or ("委託事項", "委託事項") in kinds.choices
    _, _, only, _, _, _ = handlers.browse(SEIKATSU, "委託事項")
    assert only and all(row[0].startswith("委託事項") for row in only)
    _, _, changes, _, _, _ = handlers.browse(SEIKATSU, "変更箇所")
    assert changes and all(row[0].startswith("変更箇所") for row in changes)


def test_report_browser_without_a_choice(handlers: ChatHandlers) -> None:
    *_, message = handlers.browse(None, None)
    assert "選んで" in message
    *_, message = handlers.browse("999_nope", None)
    assert "ありません" in message


def test_card_choices_label_every_card(demo, app_assistant) -> None:  # type: ignore[no-untyped-def]
    status, cards, picker, timer = demo.qa_handlers.refresh()
    labels = dict((v, k) for k, v in cards.choices)
    assert set(labels) == set(app_assistant.cards)
    assert "熊谷市" in labels["001_fea63e88436e34da"]


# -- launching ------------------------------------------------------------------------------------------------


def test_launch_is_local_and_private(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from qa import webapp

    seen: dict = {}
    monkeypatch.setattr(demo, "launch", lambda **kw: seen.update(kw))
    webapp.launch(demo)
    assert seen["server_name"] == "127.0.0.1" and seen["server_port"] == 7860
    assert seen["share"] is False and seen["auth"] is None
    assert seen["enable_monitoring"] is False and seen["mcp_server"] is False


def test_parse_auth() -> None:
    from qa.errors import QAError

    assert parse_auth(None) is None and parse_auth(" ") is None
    assert parse_auth("officer:s3cret") == [("officer", "s3cret")]
    assert parse_auth("a:1, b:pa:ss") == [("a", "1"), ("b", "pa:ss")]
    for bad in ("nopassword", ":x", "user:"):
        with pytest.raises(QAError):
            parse_auth(bad)


def test_serve_command_is_wired_with_safe_defaults(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from qa import webapp

    monkeypatch.delenv("QA_HOST", raising=False)
    monkeypatch.delenv("QA_PORT", raising=False)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    webapp.add_serve_command(sub)
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.func) == ("127.0.0.1", 7860, webapp.cmd_serve)
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "8000"])
    assert (args.host, args.port) == ("0.0.0.0", 8000)

    called: dict = {}
    monkeypatch.setattr(webapp, "serve", lambda settings, host, port, **kw: called.update(host=host, port=port))
    assert webapp.main(["--port", "7999"]) == 0
    assert called == {"host": "127.0.0.1", "port": 7999}


def test_serve_reports_a_bad_login_setting(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from qa import webapp

    monkeypatch.setenv("QA_AUTH", "no-colon")
    assert webapp.main(["--port", "7998"]) == 1
    assert "QA_AUTH" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")
def test_serve_builds_a_missing_index_with_progress(app_settings, free_port, tmp_path, capfd) -> None:  # type: ignore[no-untyped-def]
    """`qa serve` on an empty index folder: the page is up at once, the index is built, progress shown."""
    from qa import webapp

    settings = app_settings.with_(index_dir=tmp_path / "fresh-index")
    port = free_port()
    demo = webapp.serve(settings, "127.0.0.1", port, auth=None, block=False)
    try:
        loader = demo.qa_loader
        seen = set()
        while not loader.settled:
            seen.add(loader.status().split("：")[0][:20])
            loader.wait(0.2)
        assert loader.ready, loader.status()
        assert any("索引を作成しています" in s for s in seen) or any("準備中" in s for s in seen)
        assert (settings.index_dir / "CURRENT").is_file()
        err = capfd.readouterr().err
        assert "[index] embedding" in err and "/5" in err
        from gradio_client import Client

        history, sources, _ = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "松戸市の住民基本台帳の委託先は？", [], [], api_name="/chat"
        )
        content = history[-1]["content"]
        text = content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
        assert "日本電気" in text and "corpora/003_5fcca4f6e38d6e1a.txt" in sources
    finally:
        demo.close()


# -- the source viewer: every answer keeps its own citations --------------------------------------------------


def test_each_answer_reopens_its_own_citations(handlers: ChatHandlers, app_assistant) -> None:  # type: ignore[no-untyped-def]
    _, history, _, session, _ = turn(handlers, "生活保護関係情報を受け取る提供先はどこか")
    _, history, sources, session, _ = turn(handlers, "松戸市の住民基本台帳の委託先は？", history, [], session)
    assert session["count"] == 2 and set(session["answers"]) == {"1", "2"}
    assert 'data-ref="2-1"' in sources and "日本電気" in sources
    # The first answer's [2], after the second answer: the first answer's citation, in its report.
    first = app_assistant.ask("生活保護関係情報を受け取る提供先はどこか").citations[1]
    viewer, after = handlers.open_citation("1-2|1733000000000", session)
    assert after["open"] == "1-2" and 'data-ref="1-2"' in viewer and "質問 1" in viewer
    hit = re.search(r'<div class="qa-ctx-line qa-hit" data-line="(\d+)">(.*?)</div>', viewer)
    assert hit and int(hit.group(1)) == first.line and f'<mark class="qa-q">{html.escape(first.quote)}</mark>' in hit.group(2)
    shown = [int(n) for n in re.findall(r'class="qa-ctx-line[^"]*" data-line="(\d+)"', viewer)]
    assert shown == list(range(first.line - 6, first.line + 7))  # the quoted line and six on each side
    lines = app_assistant.source(first.card).lines
    assert html.escape(lines[first.line]) in viewer  # a neighbour, verbatim
    # A reference the session does not know shows the latest answer, never an error.
    for bad in ("9-1", "x", "", None, "1-999"):
        viewer, _ = handlers.open_citation(bad, session)
        assert 'class="qa-viewer"' in viewer


def test_answer_links_carry_the_answer_number(app_assistant) -> None:  # type: ignore[no-untyped-def]
    answer = app_assistant.ask("松戸市の住民基本台帳の委託先は？")
    message = render_answer_message(answer, app_assistant, answer_no=7)
    assert all(f'href="#qa-cite-7-{n}"' in message for n in range(1, len(answer.citations) + 1))
    assert "松戸市" in message and "003_5fcca4f6e38d6e1a" not in message  # the title, not the hash name


def test_clear_forgets_the_report_scope(handlers: ChatHandlers, app_assistant) -> None:  # type: ignore[no-untyped-def]
    _, _, _, session, _ = turn(handlers, "松戸市の住民基本台帳の委託先は？")
    assert "松戸市" in handlers.scope(session)
    history, sources, session, selected = handlers.reset()
    assert session == {} and selected == [] and handlers.scope(session).startswith("対象: すべての評価書")
    assert handlers.plan(app_assistant, "委託先は？", [], session).cards is None


# -- Japanese first ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", " \n", "a" * 2001, None, 42])
def test_input_errors_are_in_japanese(handlers: ChatHandlers, bad) -> None:  # type: ignore[no-untyped-def]
    _, history, _, _, _ = turn(handlers, bad)
    message = last_text(history)
    assert message.startswith("【入力エラー】") and not re.search(r"[A-Za-z]{3,}", message)


def test_status_and_stages_are_in_japanese(app_assistant) -> None:  # type: ignore[no-untyped-def]
    from qa.webapp_loader import STAGES

    assert all(not re.search(r"[A-Za-z]{3,}", text) for text in STAGES.values())
    assert not re.search(r"[A-Za-z]{3,}", AssistantLoader(app_assistant).status())


# -- export -----------------------------------------------------------------------------------------------------


def test_export_an_answer_as_markdown_and_a_list_as_csv(handlers: ChatHandlers) -> None:
    import csv

    from qa.webapp_export import to_csv, to_markdown

    _, _, _, session, _ = turn(handlers, "豊中市の子ども医療費の事務の委託先をすべて教えてください")
    record = session["answers"]["1"]
    assert record["kind"] == "list"
    md = to_markdown(record)
    assert md.startswith("# 質問: 豊中市") and "## 出典" in md
    for c in record["citations"]:
        assert f"`{c['source']}` {c['line']} 行目" in md
    rows = list(csv.reader(to_csv(record).splitlines()))
    assert rows[0][:2] == ["番号", "値（原文の引用）"] and len(rows) == len(record["citations"]) + 1
    assert {r[1] for r in rows[1:]} == {c["quote"] for c in record["citations"]}
    md_button, csv_button = handlers.exports(session)
    assert md_button.visible and csv_button.visible
    paths = [str(b.value.get("path") if isinstance(b.value, dict) else b.value) for b in (md_button, csv_button)]
    assert paths[0].endswith(".md") and paths[1].endswith(".csv")
    _, _, _, session, _ = turn(handlers, "熊谷市の子育て支援に関する事務の評価書の公表日は")
    md_button, csv_button = handlers.exports(session)
    assert md_button.visible and not csv_button.visible  # a date is not a list


# -- the report browser: what could not be read -----------------------------------------------------------------


def test_unreadable_parts_of_004_are_not_shown_as_values(handlers: ChatHandlers) -> None:
    _, _, records, _, _, summary = handlers.browse(SEIKATSU, "委託事項")
    row = next(r for r in records if r[0] == "委託事項4" and r[2] == "①委託内容")
    assert row[3] == "【読み取れません】" and "1万人以上10万人未満" not in row[3]
    assert "人数ではない項目" in row[6] and "942行: 1万人以上10万人未満" in row[6]  # the raw line it came from
    _, _, records, _, _, summary = handlers.browse(SEIKATSU, "提供先")
    marks = [r for r in records if r[3] == "【読み取れません】" and "選択肢の印" in r[6]]
    assert marks and all(r[3] != "○" for r in records)
    assert "読み取れません" in summary


@pytest.mark.parametrize("card", [JIDO, "001_fea63e88436e34da", "002_eeb43361c0371a47", MATSUDO])
def test_reports_that_parse_cleanly_have_nothing_unreadable(handlers: ChatHandlers, card: str) -> None:
    _, _, records, fields, _, _ = handlers.browse(card, None)
    assert records and not [r for r in records if "読み取れません" in r[2] + r[3]]


# -- adding a report from the page --------------------------------------------------------------------------------


def test_adding_a_report_from_the_page(corpus_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from qa.api import Assistant, build
    from qa.config import Settings

    corpora = corpus_copy / "corpora"
    upload = tmp_path / "upload" / "matsudo.txt"
    upload.parent.mkdir()
    shutil.move(corpora / f"{MATSUDO}.txt", upload)
    settings = Settings.load(root=corpus_copy).with_(index_dir=tmp_path / "idx")
    build(settings)
    handlers = ChatHandlers(AssistantLoader(Assistant.load(settings=settings)))
    before = sorted(p.name for p in corpora.iterdir())
    steps: list[tuple[float, str]] = []

    empty = tmp_path / "upload" / "empty.txt"
    empty.write_bytes(b"")
    message, *_ = handlers.add(str(empty), lambda value, desc="": steps.append((value, desc)))
    assert message.startswith("【追加できません】") and "空のファイル" in message
    assert sorted(p.name for p in corpora.iterdir()) == before

    message, cards, picker = handlers.add(str(upload), lambda value, desc="": steps.append((value, desc)))
    assert message.startswith("**追加しました**") and "松戸市" in message
    assert "matsudo" in handlers.loader.assistant.cards and ("松戸市住民基本台帳に関する事務 全項目評価書", "matsudo") in cards.choices
    assert any("索引を更新" in d for _, d in steps) and [v for v, _ in steps] == sorted(v for v, _ in steps)
    _, history, sources, _, _ = turn(handlers, "松戸市の住民基本台帳の委託先は？")
    assert "日本電気" in last_text(history) and "corpora/matsudo.txt" in sources
    message, *_ = handlers.add(str(upload))
    assert "既に登録されています" in message
