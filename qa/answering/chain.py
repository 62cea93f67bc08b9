"""The retrieval chain as a langchain-core Runnable: prepare → retrieve → answer.

Users compose it like any Runnable (`chain.invoke({"question": …})`, `.batch`, `| other`). The default
answer step is extractive and offline; with a chat model configured, the model writes the answer from the
retrieved context and the extractive citations are still attached and verified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableLambda

from qa.answering.answer import Answer
from qa.answering.reader import Reader

if TYPE_CHECKING:
    from qa.api import Assistant


def build_chain(assistant: Assistant, chat_model: Any | None = None) -> Runnable[dict[str, Any], Answer]:
    searcher = assistant.searcher
    reader = Reader(assistant.cards, assistant.source, searcher)

    def prepare(inp: dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(inp, str):
            inp = {"question": inp}
        q, vector = searcher.understand(inp["question"], inp.get("cards"))
        q.vector = vector
        return {**inp, "parsed": q, "k": inp.get("k") or assistant.settings.k}

    def retrieve(state: dict[str, Any]) -> dict[str, Any]:
        q = state["parsed"]
        hits = searcher.search_query(searcher.query_for(q, q.vector), state["k"])
        return {**state, "hits": hits}

    def answer(state: dict[str, Any]) -> Answer:
        result = reader.answer(state["parsed"], state["hits"])
        if chat_model is not None and not result.abstained:
            from qa.answering.llm import generate

            result = generate(chat_model, state["parsed"], state["hits"], result)
        return result

    chain = RunnableLambda(prepare) | RunnableLambda(retrieve) | RunnableLambda(answer)
    return chain.with_config(run_name="pia_qa")
