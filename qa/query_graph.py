"""A question's embedding through the model's own modules, traced once in this process and frozen.

A question is about 25 tokens. Eager, most of its embedding is not the matmuls: it is Python
(transformers' and sentence-transformers' module calls), some 150 dtype casts, and oneDNN reordering each
bf16 weight on every call. Traced with TorchScript and frozen (`torch.jit.freeze` and
`optimize_for_inference`: the weights prepacked once, the casts folded), the same modules embed a question
in about half the wall time (p50 15.9 vs 28.9 ms, alternated question by question;
benchmarks/notes/embedding-speed.md).

The trace is made from the loaded sentence-transformers model (Transformer, Pooling, Normalize) and kept in
memory only. Nothing is saved or loaded, so nothing from disk executes. Before it is used, it must give the
eager model's vectors (cosine ≥ 0.9999) on probe questions of other lengths than the one it was traced on,
one at a time and padded in a batch. Otherwise the eager path stays.

Tracing costs 1–2 s, so it is done for a stream of questions (the app, `qa batch`, `qa eval`, stdin), not
for one question from the command line. Only the built-in model's bf16 path takes it. The fp32 variant is the
exact reference, and a user's own folder may branch on its input in ways a trace cannot see.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ATTRIBUTE = "_qa_query_graph"
MIN_COSINE = 0.9999
# The trace input and the probes: different lengths, so a shape baked into the trace would show.
TRACE_TEXT = "生活保護関係情報の提供先"
PROBES = (
    "住民基本台帳ファイルの記録項目はどの区分に分かれていますか",
    "Who is the information provided to, and how is it transferred?",
    "保管期間",
)
_lock = threading.Lock()


@dataclass(frozen=True)
class QueryGraph:
    """The frozen graph, the prompt it is fed, the tensor features it was traced with (in order), and the
    other features (sentence-transformers' "modality"), held constant in the trace."""

    graph: Any
    prompt: str
    keys: tuple[str, ...]
    constants: tuple[tuple[str, Any], ...]
    seconds: float  # tracing, freezing and checking

    def encode(self, model: Any, texts: Sequence[str]) -> np.ndarray | None:
        """Unit-length float32 vectors of `texts` as queries; None when the tokenizer gives other features."""
        import torch

        features = model.preprocess([self.prompt + t for t in texts])
        if _split(features) != (self.keys, self.constants):
            return None
        with torch.inference_mode(), one_thread():
            vectors = self.graph(*(features[k] for k in self.keys)).float()
        vectors = torch.nn.functional.normalize(vectors, dim=-1)
        return vectors.numpy().astype(np.float32, copy=False)


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread in this thread for the block. A question is too small to split over two cores of a
    shared host: when the host takes one of them away, the other waits at every op (measured with one core
    kept busy: p50 / p95 19.8 / 24.5 ms with one thread, 23.1 / 28.9 with two; 19.9 / 27.3 vs 26.9 / 36.6 on
    an idle machine), and two questions at once in the app each get a core of their own."""
    import torch

    before = torch.get_num_threads()  # OpenMP's count for this thread
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _traceable(model: Any, keys: tuple[str, ...], constants: tuple[tuple[str, Any], ...]) -> Any:
    """What is traced: the model's own forward, from its tensor features to the sentence embedding."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model({**dict(zip(keys, tensors)), **dict(constants)})["sentence_embedding"]

    return SentenceEmbedding().eval()


def _split(features: dict[str, Any]) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """The names of the tensor features, and the other features as (name, value) pairs."""
    import torch

    keys = tuple(k for k, v in features.items() if isinstance(v, torch.Tensor))
    return keys, tuple((k, v) for k, v in features.items() if k not in keys)


def trace_queries(model: Any) -> QueryGraph | None:
    """The model's question path traced and frozen, or None when it cannot be traced or does not agree with
    the eager model on the probes (logged)."""
    import torch

    start = time.perf_counter()
    prompt = (getattr(model, "prompts", None) or {}).get("query", "")
    try:
        sample = model.preprocess([prompt + TRACE_TEXT])
        keys, constants = _split(sample)
        with warnings.catch_warnings():  # torch.jit's deprecation notes and the tracer's shape notes
            warnings.simplefilter("ignore")
            with torch.inference_mode():
                traced = torch.jit.trace(_traceable(model, keys, constants), tuple(sample[k] for k in keys),
                                         check_trace=False)
                graph = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        candidate = QueryGraph(graph, prompt, keys, constants, 0.0)
        eager = model.encode_query(list(PROBES), batch_size=1, normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)
        one_by_one = np.vstack([candidate.encode(model, [p]) for p in PROBES])
        padded = candidate.encode(model, list(PROBES))
    except Exception as exc:  # tracing fails in many ways for models it was not written for
        log.warning("question graph not used (%s: %s); questions embed eagerly", type(exc).__name__, exc)
        return None
    if padded is None:
        log.warning("question graph not used (the tokenizer's features changed); questions embed eagerly")
        return None
    worst = float(min((one_by_one * eager).sum(1).min(), (padded * eager).sum(1).min()))
    if worst < MIN_COSINE:
        log.warning("question graph not used (cosine %.5f to the eager model); questions embed eagerly", worst)
        return None
    return QueryGraph(graph, prompt, keys, constants, time.perf_counter() - start)


def compile_queries(model: Any) -> QueryGraph | None:
    """Trace the question path of the built-in model's bf16 path once per model; the graph, or None where it is
    not used (another model or precision, no bf16 matmuls, or it did not trace faithfully)."""
    from qa.embeddings import bf16_matmuls, builtin_model_id, precision

    if getattr(model, ATTRIBUTE, None) is not None:
        return getattr(model, ATTRIBUTE) or None
    if getattr(model, "_qa_model_id", None) != builtin_model_id("bf16"):
        return None
    if precision(model) != "bf16" or not bf16_matmuls():
        return None
    with _lock:
        if getattr(model, ATTRIBUTE, None) is None:
            graph = trace_queries(model)
            if graph is not None:
                log.info("question graph traced in %.1f s", graph.seconds)
            setattr(model, ATTRIBUTE, graph if graph is not None else False)
    return getattr(model, ATTRIBUTE) or None


def graph_of(model: Any) -> QueryGraph | None:
    """The model's traced question graph, if `compile_queries` made one."""
    return getattr(model, ATTRIBUTE, None) or None
