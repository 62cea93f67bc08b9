"""Passages embedded by one worker thread per core, each with one intra-op thread.

With one model forward split over both cores, every op waits for the slower core. On a shared host one core is
often slowed by another tenant, and then all the work goes at its pace. Two workers that each take whole
batches let the free core keep going (256 report units, the same batches: 8.3 s vs 10.1 s on an idle machine,
12.3 s vs 15.3 s with one core kept busy; the vectors are identical; benchmarks/notes/embedding-speed.md).

torch releases the GIL inside its ops, so threads are enough; the model is shared. Only the tokenizer is not safe
to share (each call resets its padding state), so texts are turned into features under a lock. A worker's
thread count is its own (OpenMP's is per thread), so the rest of the process keeps its setting.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MAX_WORKERS = 4  # measured at 2; beyond that, more threads per worker rather than more workers


def document_prompt(model: Any) -> str | None:
    """The prompt sentence-transformers' `encode_document` would prepend (e5: "passage: ")."""
    prompts = getattr(model, "prompts", None) or {}
    for name in ("document", "passage", "corpus"):
        if name in prompts:
            return prompts[name]
    default = getattr(model, "default_prompt_name", None)
    return prompts.get(default) if default else None


def worker_plan() -> tuple[int, int]:
    """(workers, intra-op threads each): one worker per core, up to MAX_WORKERS; a user's OMP_NUM_THREADS
    means one worker with that many threads, as they asked."""
    if os.environ.get("OMP_NUM_THREADS"):
        return 1, 0  # 0: leave torch's count alone
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    workers = max(1, min(cores, MAX_WORKERS))
    return workers, max(1, cores // workers)


def embed_batches(
    model: Any,
    texts: Sequence[str],
    batches: Sequence[np.ndarray],
    prompt: str | None,
    context: Callable[[], Any],
    workers: int,
    threads: int,
) -> np.ndarray:
    """Unit-length float32 vectors of `texts` (each batch a row list, longest first), by `workers` threads
    that each run the model's own forward on whole batches under `context()` (the bf16 autocast)."""
    import torch

    dim = int(model.get_embedding_dimension())
    out = np.empty((len(texts), dim), dtype=np.float32)
    todo: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
    for rows in batches:
        todo.put(rows)
    tokenizing = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        if threads:
            torch.set_num_threads(threads)
        try:
            while not failures:
                try:
                    rows = todo.get_nowait()
                except queue.Empty:
                    return
                with tokenizing:
                    features = model.preprocess([texts[i] for i in rows], prompt=prompt)
                with torch.inference_mode(), context():
                    vectors = model(features)["sentence_embedding"].float()
                out[rows] = torch.nn.functional.normalize(vectors, dim=-1).numpy()
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    before = torch.get_num_threads()
    pool = [threading.Thread(target=work, name=f"qa-embed-{n}", daemon=True) for n in range(workers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if threads:
        torch.set_num_threads(before)  # the count threads made later start from (the workers changed it)
    if failures:
        raise failures[0]
    return out
