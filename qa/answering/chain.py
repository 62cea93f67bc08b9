"""The retrieval chain as a langchain-core Runnable: prepare → retrieve → answer.

Users compose it like any Runnable (`chain.invoke({"question": …})`, `.batch`, `| other`). The default
answer step is extractive and offline; with a chat model configured, the model writes the answer from the
retrieved context and the extractive citations are still attached and verified.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableLambda

from qa.answering.answer import Answer
from qa.answering.extractive import Context, ExtractiveAnswerer
from qa.answering.understanding import understand

if TYPE_CHECKING:
    from qa.api import Assistant
    from qa.parsing.card import Card
    from qa.segment import Segmenter


def report_names(cards: Iterable[Card], segmenter: Segmenter) -> set[str]:
    """Words that only name a report (川崎市, 生活保護, 児童手当): they pick the card, they are not asked about."""
    import re

    from qa.reading import normalize

    names: set[str] = set()
    for card in cards:
        for name in (card.municipality, card.title, card.affair):
            if not name:
                continue
            names.add(normalize(name).lower())
            for tok in segmenter.surface_tokens(normalize(name), normalize=False):
                names.add(tok.surface.lower())
                names.add(tok.normalized.lower())
        if card.municipality:
            names.add(re.sub(r"(市|町|村|区)$", "", card.municipality))
    return names


def build_chain(assistant: Assistant, chat_model: Any | None = None) -> Runnable[dict[str, Any], Answer]:
    searcher = assistant.searcher
    answerer = ExtractiveAnswerer(Context(cards=assistant.cards, source=assistant.source, searcher=searcher))

    identity = report_names(assistant.cards.values(), searcher.segmenter)

    def prepare(inp: dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(inp, str):
            inp = {"question": inp}
        q = understand(inp["question"], searcher.segmenter, identity)
        cards = inp.get("cards")
        scope = searcher.scope(q.text, cards, q.expansion)
        return {**inp, "parsed": q, "scope": scope, "k": inp.get("k") or assistant.settings.k}

    def retrieve(state: dict[str, Any]) -> dict[str, Any]:
        hits = searcher.search_in(state["parsed"].expansion, state["scope"].cards, state["k"])
        return {**state, "hits": hits}

    def answer(state: dict[str, Any]) -> Answer:
        scope = state["scope"]
        result = answerer.answer(state["parsed"], state["hits"], scope.cards, explicit=not scope.inferred)
        if chat_model is not None and not result.abstained:
            from qa.answering.llm import generate

            result = generate(chat_model, state["parsed"], state["hits"], result)
        return result

    chain = RunnableLambda(prepare) | RunnableLambda(retrieve) | RunnableLambda(answer)
    return chain.with_config(run_name="pia_qa")
