"""Optional generation: a LangChain chat model writes the answer from the retrieved context.

Off by default (no model hub or API is reachable offline). The extractive answer's citations are kept and
re-checked, so every quote shown is still a verbatim substring of its source, whatever the model writes.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from qa.answering.answer import Answer
from qa.question import Question
from qa.errors import QAError
from qa.retrieval import Hit

SYSTEM = (
    "あなたは特定個人情報保護評価書を読む専門家です。与えられた抜粋だけを根拠に、簡潔に答えてください。"
    "抜粋にないことは「評価書に記載が見つかりません」と答え、他の評価書の情報を混ぜないでください。"
    "Answer in the language of the question."
)


def load_chat_model(spec: str, base_url: str | None = None) -> BaseChatModel:
    """`provider:model`, e.g. "openai:gpt-4o-mini" (OpenAI-compatible, base_url optional) or "ollama:llama3"."""
    provider, _, name = spec.partition(":")
    try:
        if provider == "openai":
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]

            return ChatOpenAI(model=name, base_url=base_url or os.environ.get("OPENAI_BASE_URL"), temperature=0)
        if provider == "ollama":
            from langchain_ollama import ChatOllama  # type: ignore[import-not-found]

            return ChatOllama(model=name, base_url=base_url or "http://127.0.0.1:11434", temperature=0)
    except ImportError as exc:
        raise QAError(f"chat model {spec!r} needs its LangChain package: pip install langchain-{provider}") from exc
    raise QAError(f"unknown chat model provider {provider!r}; use openai:<model> or ollama:<model>")


def generate(model: BaseChatModel, q: Question, hits: list[Hit], extractive: Answer) -> Answer:
    """The model's wording over the same context, keeping the extractive answer's verified citations."""
    cards = set(extractive.cards) or {h.chunk.card for h in hits[:1]}
    context = "\n\n".join(
        f"[{h.chunk.section}]\n{h.chunk.text}" for h in hits if h.chunk.card in cards
    )
    messages = [
        SystemMessage(SYSTEM),
        HumanMessage(f"質問: {q.text}\n\n抽出された回答: {extractive.answer}\n\n抜粋:\n{context}"),
    ]
    reply: Any = model.invoke(messages)
    text = str(getattr(reply, "content", reply)).strip()
    if not text:
        return extractive
    return Answer(
        question=extractive.question,
        answer=text,
        abstained=extractive.abstained,
        citations=extractive.citations,
        retrieved=extractive.retrieved,
        cards=extractive.cards,
        kind=extractive.kind,
    )
