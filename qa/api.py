"""The Python API: what the CLI, the app and the evaluation call.

    from qa import Assistant
    assistant = Assistant.load()                    # index/ of the project; builds it with build=True
    answer = assistant.ask("生活保護関係情報を受け取る提供先はどこか")
    answer.answer, answer.citations[0].quote
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.config import Settings
from qa.errors import (
    CardNotFoundError,
    CorruptIndexError,
    IndexNotFoundError,
    QAError,
    QuestionError,
    StaleIndexError,
)
from qa.reading import SourceText, read_source

# Imported where used, not here: `qa inspect` and `qa --help` import this module and must not pay for
# numpy/FAISS/LangChain (retrieval) or torch (embeddings), which only answering and building need.
if TYPE_CHECKING:
    from qa.answering.answer import Answer
    from qa.build import BuildReport
    from qa.index import Index
    from qa.parsing import Card, Corpus
    from qa.retrieval import HybridSearcher

log = logging.getLogger(__name__)
# Control and invisible formatting characters, and lone surrogates (from JSON "\ud800" escapes), which no
# encoder accepts and Sudachi refuses: removed from a question before anything else sees it.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff\ud800-\udfff]")


def load_cards(settings: Settings) -> Corpus:
    """Parse every report of the corpus folder; bad files are skipped with a warning naming them."""
    from qa.parsing import load_corpus

    return load_corpus(settings.corpus_dir, root=settings.root)


def clean_question(question: Any, max_chars: int = 2000) -> str:
    """The question as the answerer sees it, or QuestionError saying what is wrong with it."""
    if not isinstance(question, str):
        raise QuestionError(f"a question must be text, not {type(question).__name__}")
    text = _CONTROL.sub("", question).strip()
    if not text:
        raise QuestionError("the question is empty: type a question about the reports (評価書についての質問を入力してください)")
    if len(text) > max_chars:
        raise QuestionError(
            f"the question is {len(text):,} characters long; ask in at most {max_chars:,} (質問は{max_chars}文字以内で)"
        )
    return text


def clean_cards(cards: Any) -> list[str] | None:
    """A card filter as the searcher takes it: None (all cards) or a list of non-empty card specs.

    One spec may be given as a plain string; anything else but a list of strings is a QuestionError.
    """
    if cards is None:
        return None
    if isinstance(cards, str):
        cards = [cards]
    if not isinstance(cards, (list, tuple)) or not all(isinstance(c, str) for c in cards):
        raise QuestionError(
            f"cards must be a list of card ids (e.g. [\"003\"]) or none, not {type(cards).__name__}"
        )
    kept = [c.strip() for c in (_CONTROL.sub("", c) for c in cards) if c.strip()]
    return kept or None


def chain_input(inp: Any, max_chars: int = 2000) -> dict[str, Any]:
    """What the answer chain accepts, checked: a question (text) or {"question": …, "cards": …, "k": …}."""
    if isinstance(inp, str):
        inp = {"question": inp}
    if not isinstance(inp, dict):
        raise QuestionError(f'the chain takes a question or {{"question": …}}, not {type(inp).__name__}')
    k = inp.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise QuestionError(f"k must be a positive whole number of passages, not {k!r}")
    return {**inp, "question": clean_question(inp.get("question"), max_chars), "cards": clean_cards(inp.get("cards"))}


def build(settings: Settings, full: bool = False, progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
    """Update the index; when nothing changed, say so from the manifest alone (no model is loaded)."""
    from qa.build import build_index, unchanged_report

    if not full:
        report = unchanged_report(settings.index_dir, settings.corpus_dir, settings.embedding_model)
        if report is not None:
            return report
    return build_index(
        settings.corpus_dir,
        settings.index_dir,
        embedding_model=settings.embedding_model,
        full=full,
        root=settings.root,
        progress=progress,
    )


@dataclass(frozen=True)
class _Generation:
    """What the answer chain reads from the Assistant, fixed to one index generation."""

    settings: Settings
    cards: dict[str, Card]
    searcher: HybridSearcher
    source: Callable[[str], SourceText]


def _pointer_stamp(index_dir: Path) -> tuple[int, int, int] | None:
    """What identifies the CURRENT file's version cheaply (a build replaces it: a new inode)."""
    try:
        st = (index_dir / "CURRENT").stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class Assistant:
    """Owns the index, the searcher and the answer chain; thread-safe for concurrent `ask` calls."""

    def __init__(self, settings: Settings, index: Index) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._switching = threading.Lock()
        self._chat = None
        if settings.chat_model:
            from qa.answering.llm import load_chat_model

            self._chat = load_chat_model(settings.chat_model, settings.chat_base_url)
        # None: the first question reads CURRENT's name once (a build may have published since `index` loaded).
        self._pointer: tuple[int, int, int] | None = None
        self._warm = False
        self._use(index, None)

    def _use(self, index: Index, segmenter: Any) -> None:
        """Serve `index` from now on: its searcher, its chain, an empty cache of sources."""
        from langchain_core.runnables import RunnableLambda

        from qa.answering.chain import build_chain
        from qa.retrieval import HybridSearcher

        settings = self.settings
        searcher = HybridSearcher(index, segmenter=segmenter)
        sources: dict[str, SourceText] = {}
        view = _Generation(settings, index.cards, searcher, lambda cid: self._source_in(index, sources, cid))
        # A checking step first, so that `chain.invoke` with any input returns an Answer (or abstains) or
        # raises QuestionError, as `ask` does.
        check = RunnableLambda(lambda inp: chain_input(inp, settings.max_question_chars), name="check_input")
        chain = (check | build_chain(view, chat_model=self._chat)).with_config(run_name="pia_qa")  # type: ignore[arg-type]
        self.index, self.searcher, self._sources, self.chain = index, searcher, sources, chain

    def warm_up(self) -> None:
        """Ready for a stream of questions (the app, a batch): see `HybridSearcher.warm_up`. A generation
        switched to later is warmed before it serves."""
        self._warm = True
        self.searcher.warm_up()

    def refresh(self) -> bool:
        """Switch to the generation CURRENT names when a build published a new one (True if switched).

        Called before each question; costs one stat of CURRENT when nothing changed. Questions already
        being answered finish on the generation they started with; one that cannot be loaded is logged and
        the current one kept.
        """
        index_dir = self.index.folder.parent
        stamp = _pointer_stamp(index_dir)
        if stamp == self._pointer or stamp is None:
            return False
        if not self._switching.acquire(blocking=False):
            return False  # another question is switching already; this one uses the current generation
        try:
            if _pointer_stamp(index_dir) == self._pointer:
                return False
            try:
                name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
            except OSError:
                return False
            if name == self.index.folder.name:
                self._pointer = stamp
                return False
            from qa.index import load_index

            try:
                index = load_index(index_dir, self.settings.embedding_model)
            except QAError as exc:
                log.warning("new index generation %s not loaded (%s); answering from %s", name, exc,
                            self.index.folder.name)
                self._pointer = stamp
                return False
            if self._warm:
                from qa.query_graph import compile_queries

                compile_queries(index.embedder)  # the new generation loaded its own model
            with self._lock:
                self._use(index, self.searcher.segmenter)
            if self._warm:
                self.searcher.field_vectors()
            self._pointer = stamp
            log.info("switched to index generation %s", index.folder.name)
            return True
        finally:
            self._switching.release()

    @classmethod
    def load(
        cls,
        index_dir: Path | str | None = None,
        *,
        settings: Settings | None = None,
        build_if_needed: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
        **overrides: Any,
    ) -> Assistant:
        """Load the index; with build_if_needed, build it first when missing or out of date."""
        from qa.index import load_index

        settings = settings or Settings.load(**overrides)
        if index_dir is not None:
            settings = settings.with_(index_dir=Path(index_dir))
        try:
            index = load_index(settings.index_dir, settings.embedding_model)
            reasons = index.stale_reasons(settings.corpus_dir)
            if reasons:
                raise StaleIndexError(settings.index_dir, "; ".join(reasons[:5]))
        except (IndexNotFoundError, StaleIndexError) as exc:
            if not build_if_needed:
                raise
            log.warning("%s; building", exc)
            build(settings, progress=progress)
            index = load_index(settings.index_dir, settings.embedding_model)
        return cls(settings, index)

    # -- data ----------------------------------------------------------------------------------------
    @property
    def cards(self) -> dict[str, Card]:
        return self.index.cards

    def card(self, spec: str) -> Card:
        ids = self.searcher.resolve(spec)
        return self.index.cards[ids[0]]

    def source(self, card_id: str) -> SourceText:
        """The card's file as read now, for verbatim quotes; refuses a file that changed since indexing."""
        return self._source_in(self.index, self._sources, card_id)

    def _source_in(self, index: Index, sources: dict[str, SourceText], card_id: str) -> SourceText:
        """`source` for one generation (a question started before a switch keeps quoting from its own)."""
        with self._lock:
            cached = sources.get(card_id)
            if cached is not None:
                return cached
            card = index.cards.get(card_id)
            if card is None:
                raise CardNotFoundError(f"no card {card_id!r} in the index; known cards: {', '.join(self.cards)}")
            path = Path(card.source)
            path = path if path.is_absolute() else self.settings.root / path
            # Only files of the corpus folder are ever read: a tampered cards.jsonl naming ../../etc/passwd
            # (or a corpus file that is a link leading out) is refused before anything is opened.
            corpus = self.settings.corpus_dir.resolve()
            try:
                path = path.resolve()
                path.relative_to(corpus)
            except (ValueError, OSError) as exc:
                raise CorruptIndexError(
                    self.settings.index_dir,
                    f"card {card_id} names {card.source!r}, which is not a file of the corpus folder {corpus}",
                ) from exc
            source = read_source(path)
            expected = index.manifest.cards[card_id].sha256
            if source.sha256 != expected:
                raise StaleIndexError(self.settings.index_dir, f"{path.name} changed since it was indexed")
            sources[card_id] = source
            return source

    # -- asking --------------------------------------------------------------------------------------
    def ask(self, question: str, cards: list[str] | None = None, k: int | None = None) -> Answer:
        started = time.perf_counter()
        text = clean_question(question, self.settings.max_question_chars)
        self.refresh()
        answer: Answer = self.chain.invoke({"question": text, "cards": cards, "k": k or self.settings.k})
        answer.latency_ms = (time.perf_counter() - started) * 1000
        return answer

    def ask_batch(
        self, questions: Iterable[str], cards: list[str] | None = None, progress: bool | None = None
    ) -> list[Answer | Exception]:
        """Answer many questions; a bad question yields its QuestionError in place, the rest are answered."""
        items = list(questions)
        show = progress if progress is not None else len(items) > 20
        out: list[Answer | Exception] = []
        iterator: Iterable[str] = items
        if show:
            from tqdm import tqdm

            iterator = tqdm(items, desc="questions", unit="q")
        for q in iterator:
            try:
                out.append(self.ask(q, cards=cards))
            except QuestionError as exc:
                out.append(exc)
        return out

    def stream(self, question: str, cards: list[str] | None = None) -> Iterator[str | Answer]:
        """Text pieces as they are ready, then the full Answer (with citations) last."""
        answer = self.ask(question, cards=cards)
        text = answer.answer
        step = max(1, len(text) // 24)
        for i in range(step, len(text) + step, step):
            yield text[:i]
        yield answer
