"""The Gradio app: a chat over the reports with a source viewer beside it, a browser of the parsed
reports, and a page to add a report.

    python app.py [--host 127.0.0.1] [--port 7860]        # or: qa serve
    QA_AUTH="user:password" python app.py                  # optional login

One `Assistant` per process, shared by every session (it is thread-safe); what belongs to one user
(the chat, each answer's citations, the reports the conversation is about) lives in that session's
`gr.State`. The index is loaded (or built, when missing or stale) in a background thread while the page
already answers, with a status line; questions asked meanwhile wait for it. Everything on the page is in
Japanese; every piece of report or user text is escaped (see qa.webapp_text).

Modules: webapp_loader (the background Assistant), webapp_text (escaping, highlighting), webapp_viewer
(chat bubble, source viewer, CSS/JS), webapp_reports (report browser), webapp_export (Markdown/CSV).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qa.webapp_handlers import EXAMPLES, SCOPE_NONE, ChatHandlers, question_error  # noqa: F401 - re-exported
from qa.webapp_loader import AssistantLoader
from qa.webapp_reports import ALL_KINDS
from qa.webapp_text import CONTROL, highlight, md_escape, question_terms  # noqa: F401 - re-exported
from qa.webapp_viewer import (  # noqa: F401 - re-exported
    CSS, EMPTY_VIEWER, NOT_STATED, VIEWER_JS, answer_record, card_choices, card_label, parse_ref,
    render_answer_message, render_sources,
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from a tool for privacy officers

if TYPE_CHECKING:
    import argparse

    import gradio as gr

    from qa.api import Assistant
    from qa.config import Settings

log = logging.getLogger(__name__)

MAX_UPLOAD = "20mb"


# -- the Blocks app -----------------------------------------------------------------------------------------


def build_app(
    assistant_factory: Callable[..., Assistant] | Assistant | AssistantLoader,
    *,
    concurrency: int = 8,
    max_queue: int = 200,
    console: bool = False,
    start: bool = True,
) -> gr.Blocks:
    """The app. `assistant_factory` is called once, in the background (see AssistantLoader).

    With start=False the caller starts `demo.qa_loader` itself (serve() does, once the server is up:
    loading competes with the server's start-up for the interpreter). The handlers are reachable as
    `demo.qa_handlers` (a ChatHandlers) for in-process use.
    """
    import gradio as gr

    from qa.ingest import MAX_UPLOAD_BYTES, accepted_suffixes

    loader = assistant_factory if isinstance(assistant_factory, AssistantLoader) else AssistantLoader(
        assistant_factory, console=console
    )
    if start:
        loader.start()
    handlers = ChatHandlers(loader)
    ready_now = loader.wait(0.05 if start else 0) is not None
    choices = card_choices(loader.assistant) if ready_now and loader.assistant is not None else []

    with gr.Blocks(title="特定個人情報保護評価書 QA", analytics_enabled=False) as demo:
        gr.Markdown(
            "## 特定個人情報保護評価書 QA\n"
            "自治体の特定個人情報保護評価書の記載から答えます。回答の [1] [2] … を押すと、右側にその評価書の原文が表示されます。"
            f"評価書に記載がなければ「{NOT_STATED}」と答えます。"
        )
        status = gr.Markdown(loader.status(), elem_id="qa-status", elem_classes=["qa-status"])
        session = gr.State({})
        with gr.Tab("質問", id="chat"):
            with gr.Row(elem_id="qa-layout", equal_height=False):
                with gr.Column(scale=6, min_width=420):
                    chatbot = gr.Chatbot(
                        label="会話", show_label=False, elem_id="qa-chat", height=None, min_height=420, max_height=720, latex_delimiters=[], sanitize_html=True,
                        feedback_options=None, buttons=["copy", "copy_all"],
                        placeholder="評価書について質問してください（下に質問の例があります）。",
                    )
                    scope = gr.Markdown(SCOPE_NONE, elem_id="qa-scope", elem_classes=["qa-scope"])
                    with gr.Row():
                        question = gr.Textbox(
                            label="質問", placeholder="質問を入力（Enter で送信、Shift+Enter で改行）", lines=1, max_lines=6,
                            scale=5, elem_id="qa-question", submit_btn=False,
                        )
                        with gr.Column(scale=1, min_width=130):
                            send = gr.Button("送信", variant="primary", elem_id="qa-send")
                            clear = gr.Button("新しい会話", elem_id="qa-clear")
                    cards = gr.Dropdown(
                        choices=choices, value=[], multiselect=True, label="評価書で絞り込む（空なら質問から判断）",
                        info="選ぶと、その評価書だけから答えます。空のままなら、質問に含まれる自治体名・事務名から判断し、続けての質問では前の回答の評価書を引き継ぎます。",
                        elem_id="qa-cards",
                    )
                    examples = gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question], label="質問の例（クリックで質問）")
                    with gr.Row():
                        save_md = gr.DownloadButton("回答を Markdown で保存", visible=False, elem_id="qa-save-md", size="sm")
                        save_csv = gr.DownloadButton("一覧を CSV で保存", visible=False, elem_id="qa-save-csv", size="sm")
                with gr.Column(scale=5, min_width=380, elem_id="qa-side"):
                    sources = gr.HTML(EMPTY_VIEWER, elem_id="qa-sources", label="出典と原文")
            open_ref = gr.Textbox(elem_id="qa-open-ref", elem_classes=["qa-hidden"], show_label=False, container=False)

        with gr.Tab("評価書の中身", id="reports"):
            gr.Markdown(
                "評価書がどう読み取られたか: 表紙の情報、節の構成、提供先・移転先・委託事項などの記録。行番号は評価書ファイルの行です。"
                "原文のレイアウトが崩れていて読み取れなかった箇所は「読み取れません」と示し、右端の列に原文を載せています。"
            )
            with gr.Row():
                card_pick = gr.Dropdown(choices=choices, label="評価書", elem_id="qa-card-pick", scale=3)
                kind_pick = gr.Dropdown(choices=[ALL_KINDS], value=ALL_KINDS, label="記録の種類", scale=2,
                                        elem_id="qa-kind-pick")
            summary = gr.Markdown(elem_id="qa-summary")
            meta = gr.Dataframe(headers=["項目", "値"], datatype=["str", "str"], label="表紙の情報", interactive=False,
                                wrap=True, elem_id="qa-meta", column_widths=["20%", "80%"])
            with gr.Accordion("節の構成", open=True):
                tree = gr.Dataframe(
                    headers=["節", "パス", "開始行", "終了行", "項目数", "記録数"],
                    datatype=["str", "str", "number", "number", "number", "number"],
                    interactive=False, wrap=True, max_height=420, elem_id="qa-tree",
                    column_widths=["30%", "40%", "7%", "7%", "8%", "8%"],
                )
            with gr.Accordion("記録（提供先・移転先・委託事項・システムなど）", open=True):
                records = gr.Dataframe(
                    headers=["記録", "パス", "項目", "値", "選択", "行", "読み取りの注記（原文）"],
                    datatype=["str", "str", "str", "str", "str", "number", "str"],
                    interactive=False, wrap=True, max_height=900, elem_id="qa-records",
                    column_widths=["11%", "15%", "13%", "25%", "11%", "5%", "20%"],
                )
            with gr.Accordion("節の項目", open=False):
                fields = gr.Dataframe(
                    headers=["節", "項目", "値", "選択", "行", "読み取りの注記（原文）"],
                    datatype=["str", "str", "str", "str", "number", "str"],
                    interactive=False, wrap=True, max_height=520, elem_id="qa-fields",
                    column_widths=["22%", "15%", "30%", "11%", "5%", "17%"],
                )

        with gr.Tab("評価書を追加", id="add"):
            kinds = "・".join(accepted_suffixes())
            gr.Markdown(
                f"評価書のファイル（{kinds}、{MAX_UPLOAD_BYTES // (1024 * 1024)} MB まで）を追加します。"
                "ファイルは評価書フォルダにそのままの名前でコピーされ、索引に登録されると「質問」の絞り込みと「評価書の中身」に表示されます。"
                "読み取れないファイル（空、バイナリ、評価書でないもの）は追加されません。"
            )
            upload = gr.File(label="評価書のファイル", file_count="single", file_types=accepted_suffixes(),
                             type="filepath", elem_id="qa-upload")
            add_btn = gr.Button("追加する", variant="primary", elem_id="qa-add")
            add_status = gr.Markdown(elem_id="qa-add-status")
        timer = gr.Timer(1.0, active=not loader.settled)

        def _set_choices(assistant: Assistant) -> None:
            # New sessions (and API clients, which never see the page's load event) validate against these.
            cards.choices = card_pick.choices = card_choices(assistant)

        loader.on_ready(_set_choices)

        after = dict(api_visibility="private", queue=False)
        chat_io = dict(
            fn=handlers.respond,
            inputs=[question, chatbot, cards, session],
            outputs=[chatbot, sources, session, question],
            show_progress="minimal",
            concurrency_id="chat",
        )
        for event in (gr.on([question.submit, send.click], api_name="chat", **chat_io),
                      examples.load_input_event.then(api_visibility="private", **chat_io)):
            event.then(handlers.scope, [session], [scope], **after).then(handlers.exports, [session], [save_md, save_csv], **after)
        open_ref.change(handlers.open_citation, [open_ref, session], [sources, session], **after).then(
            handlers.exports, [session], [save_md, save_csv], **after)
        reset_io = dict(fn=handlers.reset, inputs=None, outputs=[chatbot, sources, session, cards], **after)
        for event in (clear.click(**reset_io), chatbot.clear(**reset_io)):
            event.then(handlers.scope, [session], [scope], **after).then(handlers.exports, [session], [save_md, save_csv], **after)

        refresh_io = dict(fn=handlers.refresh, inputs=None, outputs=[status, cards, card_pick, timer],
                          show_progress="hidden", api_visibility="private", concurrency_limit=None)
        demo.load(**refresh_io)
        timer.tick(**refresh_io)

        browse_io = dict(fn=handlers.browse, inputs=[card_pick, kind_pick],
                         outputs=[meta, tree, records, fields, kind_pick, summary],
                         show_progress="minimal", concurrency_limit=None)
        card_pick.change(api_visibility="private", **browse_io)
        kind_pick.input(api_visibility="private", **browse_io)

        def add_report(file: Any, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
            return handlers.add(file, progress)

        add_btn.click(add_report, [upload], [add_status, cards, card_pick], api_visibility="private",
                      show_progress="full", concurrency_limit=1).then(lambda: loader.status(), None, [status], **after)

        # A plain endpoint for scripts: the Answer as JSON.
        def ask_json(q: str, only: list[str] | None = None) -> dict:
            from qa.errors import QAError

            assistant = loader.wait(600)
            if assistant is None:
                return {"error": loader.status()}
            if only is not None and not (isinstance(only, list) and all(isinstance(c, str) for c in only)):
                return {"error": "only: a list of card ids, e.g. [\"003\"], or null"}
            try:
                return assistant.ask(q, cards=only or None).to_dict()
            except QAError as exc:
                return {"error": str(exc)}

        api_q = gr.Textbox(visible=False)
        api_cards = gr.JSON(visible=False)
        api_out = gr.JSON(visible=False)
        api_btn = gr.Button(visible=False)
        api_btn.click(ask_json, [api_q, api_cards], api_out, api_name="ask", concurrency_id="chat")

    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    demo.qa_handlers = handlers  # type: ignore[attr-defined]
    demo.qa_loader = loader  # type: ignore[attr-defined]
    return demo


# -- launching ---------------------------------------------------------------------------------------------


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """QA_AUTH: "user:password", several separated by commas; None or empty: no login."""
    if not value or not value.strip():
        return None
    pairs = []
    for item in value.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            from qa.errors import QAError

            raise QAError('QA_AUTH must be "user:password" (several separated by commas)')
        pairs.append((user, password))
    return pairs


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    auth: list[tuple[str, str]] | None = None,
    block: bool = True,
    quiet: bool = False,
) -> Any:
    """Start the server: local only unless told, never shared publicly, no telemetry; uploads up to 20 MB."""
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        auth_message="評価書 QA にログインしてください" if auth else None,
        prevent_thread_lock=not block,
        inbrowser=False,
        show_error=False,
        quiet=quiet,
        css=CSS,
        js=VIEWER_JS,
        footer_links=["api"],
        run_history=False,
        enable_monitoring=False,
        mcp_server=False,
        ssr_mode=False,
        max_file_size=MAX_UPLOAD,  # a report added from the page (qa.ingest.MAX_UPLOAD_BYTES)
        # Request bodies limited (1 MiB; uploads their own size) and logins throttled per client (qa/webguard.py).
        app_kwargs={"middleware": [_guard_middleware()]},
    )


def _guard_middleware() -> Any:
    from starlette.middleware import Middleware

    from qa.ingest import MAX_UPLOAD_BYTES
    from qa.webguard import RequestGuard

    return Middleware(RequestGuard, max_upload_bytes=MAX_UPLOAD_BYTES + 1024 * 1024)


def serve(
    settings: Settings | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    auth: list[tuple[str, str]] | None | str = "env",
    concurrency: int = 8,
    block: bool = True,
    quiet: bool = False,
) -> gr.Blocks:
    """Load (or build) the index in the background, and serve the app on host:port.

    auth="env" reads QA_AUTH; a list of (user, password) pairs or None sets it directly.
    """
    from qa.api import Assistant
    from qa.config import Settings

    settings = settings or Settings.load()
    if auth == "env":
        auth = parse_auth(os.environ.get("QA_AUTH"))
    if host not in ("127.0.0.1", "localhost", "::1") and not auth:
        log.warning("serving on %s without a login: anyone who can reach this host can use the app (set QA_AUTH)", host)

    def factory(progress: Callable[[str, int, int], None]) -> Assistant:
        assistant = Assistant.load(settings=settings, build_if_needed=True, progress=progress)
        assistant.warm_up()  # before the first question, not during it
        return assistant

    if not quiet:
        sys.stderr.write(f"loading the index from {settings.index_dir} (built first if missing or stale)\n")
    demo = build_app(factory, concurrency=concurrency, console=not quiet, start=False)
    launch(demo, host, port, auth=auth, block=False, quiet=quiet)  # type: ignore[arg-type]
    demo.qa_loader.start()  # type: ignore[attr-defined]
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("QA_HOST", "127.0.0.1"),
                        help="address to bind (default 127.0.0.1: this computer only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("QA_PORT", "7860")), help="default 7860")
    parser.add_argument("--concurrency", type=int, default=8, help="questions answered at once (default 8)")


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qa.config import Settings

    settings = Settings.load(
        root=Path(args.root) if getattr(args, "root", None) else None,
        corpus_dir=getattr(args, "corpora", None),
        index_dir=getattr(args, "index", None),
        embedding_model=getattr(args, "embedding_model", None),
    )
    serve(settings, args.host, args.port, concurrency=args.concurrency)
    return 0


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    """`qa serve`: wire into qa.cli's subparsers (`add_serve_command(sub)`)."""
    p = subparsers.add_parser("serve", help="start the web app (chat with a source viewer, report browser, adding reports)")
    _add_arguments(p)
    p.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    """`python app.py`: same as `qa serve`, with --root/--index too."""
    import argparse

    from qa.errors import QAError

    parser = argparse.ArgumentParser(prog="app.py", description="Web app: questions over 特定個人情報保護評価書")
    parser.add_argument("--root", help="project folder (default: found from the current folder)")
    parser.add_argument("--corpora", help="folder of reports (default: <root>/corpora)")
    parser.add_argument("--index", help="index folder (default: <root>/index)")
    parser.add_argument("-v", "--verbose", action="store_true")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return cmd_serve(args)
    except QAError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
