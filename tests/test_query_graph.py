"""The traced question graph (qa.query_graph): the built-in model's own modules, traced and frozen in this
process, embed questions as the eager model does; it is checked before use, refused when it disagrees, and
never made for the fp32 reference or a user's folder.
"""

from __future__ import annotations

import numpy as np
import pytest

from qa import query_graph
from qa.embeddings import bf16_matmuls, default_cache_dir, encode_queries, load_embedder
from qa.query_graph import compile_queries, graph_of, trace_queries

pytestmark = pytest.mark.skipif(not bf16_matmuls(), reason="the graph is made only where the CPU has bf16 matmuls")

QUESTIONS = [
    "障害者福祉の事務で特定個人情報を扱う職員は何人か",
    "When was the assessment last revised, and why?",
    "評価書に書かれている再委託の条件を教えてください。委託先が再委託するときに何を確認するのか",
    "保存",
]


@pytest.fixture(scope="module")
def traced():  # type: ignore[no-untyped-def]
    """The default model, and its eager vectors of QUESTIONS taken before the graph exists."""
    model = load_embedder(None, cache_dir=default_cache_dir())
    eager = encode_queries(model, QUESTIONS)
    assert graph_of(model) is None
    graph = compile_queries(model)
    return model, graph, eager


def test_the_graph_embeds_questions_as_the_eager_model(traced) -> None:  # type: ignore[no-untyped-def]
    model, graph, eager = traced
    assert graph is not None and graph_of(model) is graph
    assert graph.prompt == "query: " and "input_ids" in graph.keys
    one_by_one = np.vstack([encode_queries(model, [q]) for q in QUESTIONS])
    batched = encode_queries(model, QUESTIONS, batch_size=3)  # padded, over two calls
    for vectors in (one_by_one, batched):
        assert vectors.shape == eager.shape and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
        assert (vectors * eager).sum(1).min() >= 0.9999
    direct = graph.encode(model, QUESTIONS[:1])
    assert direct is not None and float(direct[0] @ eager[0]) >= 0.9999


def test_compiling_again_keeps_the_graph(traced) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = traced
    assert compile_queries(model) is graph


def test_a_graph_that_disagrees_with_the_eager_model_is_refused(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """The check is real: with a bar no trace can pass, the graph is not made and questions embed eagerly."""
    model = load_embedder(None, cache_dir=default_cache_dir())
    monkeypatch.setattr(query_graph, "MIN_COSINE", 1.5)
    with caplog.at_level("WARNING", logger="qa.query_graph"):
        assert trace_queries(model) is None
        assert compile_queries(model) is None
    assert "not used" in caplog.text and graph_of(model) is None
    eager = encode_queries(model, QUESTIONS[:2])
    assert np.allclose(np.linalg.norm(eager, axis=1), 1, atol=1e-4)


def test_no_graph_for_the_fp32_reference_or_a_users_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fp32 = load_embedder("e5-fp32", cache_dir=default_cache_dir())
    assert compile_queries(fp32) is None and graph_of(fp32) is None
    folder = tmp_path / "own-model"
    load_embedder(None, cache_dir=default_cache_dir()).save(str(folder))
    own = load_embedder(str(folder))
    assert compile_queries(own) is None and graph_of(own) is None


def test_warm_up_traces_the_question_path_and_answers_stay_the_same(settings) -> None:  # type: ignore[no-untyped-def]
    """The app and batches warm their assistant: its model then embeds questions through the graph, and the
    answers are the ones an assistant left eager gives (each loads its own model)."""
    from qa.api import Assistant

    warm, eager = Assistant.load(settings=settings), Assistant.load(settings=settings)
    warm.warm_up()
    assert graph_of(warm.index.embedder) is not None and graph_of(eager.index.embedder) is None
    for question in ("豊中市の評価書で特定個人情報の保管期間は？", "Who is the personal information outsourced to in Matsudo?"):
        a, b = warm.ask(question), eager.ask(question)
        assert a.answer == b.answer and [c.line for c in a.citations] == [c.line for c in b.citations]
