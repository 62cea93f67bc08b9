#!/usr/bin/env python3
"""Index build speed: embedding variants side by side with the plain fp32 path, in one run (issue 12).

    python benchmarks/embedding_speed.py [--rounds 2] [--variants prev,bs16,int8,int8-ffn-fp32,ort-int8,ov-bf16]
                                         [--external ../shared/eval-external/gold.jsonl] [--gold eval/gold.jsonl]
                                         [--out benchmarks/results/embedding_speed.md]

Each round, in an order that alternates between rounds (the two cores are shared, so figures are noisy:
baseline and variants run interleaved and medians are reported):

* builds corpora/ from scratch, each time with an empty embedding cache, with the default embedder ("e5":
  bf16 matmuls, batches by token count) and with the plain fp32 path ("e5-fp32"); prints each build's
  total and its per-stage split (load model, parse, chunk, tokenize, embed, bm25 + faiss, write);
* embeds every distinct unit text of the five reports (what a build embeds) with each extra variant:
    prev           bf16 autocast in sentence-transformers' own batches (sorted by characters): the default
                   before this benchmark
    bs16           the default with batches of 16
    int8           torch.ao.quantization.quantize_dynamic (per-channel weights) on every Linear of the
                   encoder, applied at load time, texts in token-count batches
    int8-ffn-fp32  the same, the FFN output projections (12 of 72) kept fp32
    ort-int8       onnxruntime (only if importable): torch.onnx export, onnxruntime's BERT fusions,
                   dynamic int8 (per-channel); run directly: sentence-transformers' backend="onnx" needs
                   optimum-onnx, which does not import with transformers 5.x
    ov-bf16        OpenVINO (only if importable), same export, bf16 inference precision; run directly for
                   the same reason (optimum-intel)

Then, per variant: units/s (median over rounds), build seconds (measured for the two real builds; for the
others, the median of the default builds' other stages plus the variant's embedding time, marked "est."),
cosine to the fp32 vectors (min / median, over all units and over every question of both gold files), and
retrieval on both gold files as benchmarks/retrieval.py scores it: e5 alone, the fitted weighted fusion, and
the HybridSearcher with the index's vectors swapped for the variant's (sentence-transformers variants only).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import Report, gold_arguments, parse_gold_arguments  # noqa: E402

from retrieval import (  # noqa: E402
    WEIGHTS,
    Scorer,
    evaluate,
    evaluate_searcher,
    questions_of,
    weighted,
)

from qa.eval_metrics import load_gold, read_corpus_text  # noqa: E402

EXTRA = ("prev", "bs16", "int8", "int8-ffn-fp32", "ort-int8", "ov-bf16")
DEFAULT_NAME = "e5: bf16 + token batches (default)"
FP32_NAME = "e5-fp32: plain fp32 (baseline)"


@dataclass
class Variant:
    name: str
    passages: Callable[[list[str]], np.ndarray]
    queries: Callable[[list[str]], np.ndarray]
    model: Any = None  # a SentenceTransformer the HybridSearcher can use, else None
    seconds: list[float] = field(default_factory=list)  # embedding all units, per round
    builds: list[dict[str, float]] = field(default_factory=list)  # real builds: total + stages
    vectors: np.ndarray | None = None


# -- variants -----------------------------------------------------------------------------------------------


def _in_token_batches(model: Any, texts: list[str], batch_size: int, autocast: bool) -> np.ndarray:
    import torch

    from qa.embeddings import token_batches

    out = np.empty((len(texts), int(model.get_embedding_dimension())), dtype=np.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for rows in token_batches(model, texts, batch_size):
            out[rows] = model.encode_document([texts[i] for i in rows], batch_size=len(rows),
                                              normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return out


def _queries_of(model: Any) -> Callable[[list[str]], np.ndarray]:
    from qa.embeddings import encode_queries

    return lambda texts: encode_queries(model, texts)


def _int8(fp32: Any, keep_ffn_output: bool) -> Any:
    """A copy of the model with its encoder's Linear layers dynamically quantised (per-channel int8)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = copy.deepcopy(fp32)
    bert = model[0].model  # `auto_model` is a read-only alias: assigning to it would quantise nothing
    spec = {name: per_channel_dynamic_qconfig for name, m in bert.named_modules()
            if isinstance(m, torch.nn.Linear) and name.startswith("encoder.")
            and not (keep_ffn_output and name.endswith(".output.dense") and ".attention." not in name)}
    quantize_dynamic(bert, spec, dtype=torch.qint8, inplace=True)
    return model


class _Exported:
    """The encoder exported once with torch.onnx (mean pooling inside), for onnxruntime and OpenVINO."""

    def __init__(self, fp32: Any, folder: Path) -> None:
        import torch

        self.folder = folder
        self.tokenizer = fp32.tokenizer
        self.path = folder / "e5.onnx"
        bert = copy.deepcopy(fp32[0].model).eval()
        bert.set_attn_implementation("eager")

        class Pooled(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                out = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(out.dtype)
                return (out * mask).sum(1) / mask.sum(1)

        ids = torch.ones(2, 16, dtype=torch.long)
        axes = {"input_ids": {0: "b", 1: "l"}, "attention_mask": {0: "b", 1: "l"}, "emb": {0: "b"}}
        torch.onnx.export(Pooled(bert), (ids, ids), str(self.path), input_names=["input_ids", "attention_mask"],
                          output_names=["emb"], dynamic_axes=axes, opset_version=17, dynamo=False)

    def encoder(self, run: Callable[[dict[str, np.ndarray]], np.ndarray], prompt: str,
                model: Any) -> Callable[[list[str]], np.ndarray]:
        from qa.embeddings import token_batches

        def encode(texts: list[str]) -> np.ndarray:
            out = np.empty((len(texts), 384), dtype=np.float32)
            for rows in token_batches(model, texts, 32):
                enc = self.tokenizer([prompt + texts[i] for i in rows], padding=True, truncation=True,
                                     max_length=512, return_tensors="np")
                v = run({"input_ids": enc["input_ids"].astype(np.int64),
                         "attention_mask": enc["attention_mask"].astype(np.int64)})
                out[rows] = v / np.linalg.norm(v, axis=1, keepdims=True)
            return out

        return encode


def _ort_int8(exported: _Exported) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    fused = exported.folder / "e5-fused.onnx"
    int8 = exported.folder / "e5-fused-int8.onnx"
    optimizer.optimize_model(str(exported.path), model_type="bert", num_heads=12, hidden_size=384,
                             opt_level=0).save_model_to_file(str(fused))
    quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Attention"], extra_options={"DefaultTensorType": 1})
    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


def _ov_bf16(exported: _Exported) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(exported.path)), "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": len(os.sched_getaffinity(0))})
    request = compiled.create_infer_request()
    return lambda feed: request.infer(feed)[0]


def make_variants(wanted: Sequence[str], tmp: Path) -> list[Variant]:
    import importlib.util

    import torch

    from qa.embeddings import encode_passages, load_embedder

    default = load_embedder("e5")
    fp32 = load_embedder("e5-fp32")
    out = [
        Variant(DEFAULT_NAME, lambda t: encode_passages(default, t), _queries_of(default), default),
        Variant(FP32_NAME, lambda t: encode_passages(fp32, t), _queries_of(fp32), fp32),
    ]

    def prev(texts: list[str]) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fp32.encode_document(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)

    if "prev" in wanted:
        out.append(Variant("bf16, sentence-transformers' batches (before)", prev, _queries_of(fp32), fp32))
    if "bs16" in wanted:
        out.append(Variant("e5 default, batch 16", lambda t: encode_passages(default, t, batch_size=16),
                           _queries_of(default), default))
    for key, keep, label in (("int8", False, "int8 dynamic, all Linear"),
                             ("int8-ffn-fp32", True, "int8 dynamic, FFN output fp32")):
        if key in wanted:
            model = _int8(fp32, keep)
            out.append(Variant(label, lambda t, m=model: _in_token_batches(m, t, 32, False), _queries_of(model), model))
    runtimes = [k for k, mod in (("ort-int8", "onnxruntime"), ("ov-bf16", "openvino"))
                if k in wanted and importlib.util.find_spec(mod) is not None]
    if runtimes:
        exported = _Exported(fp32, tmp)
        for key in runtimes:
            run = _ort_int8(exported) if key == "ort-int8" else _ov_bf16(exported)
            label = "onnxruntime int8 (fused, direct)" if key == "ort-int8" else "OpenVINO bf16 (direct)"
            out.append(Variant(label, exported.encoder(run, "passage: ", fp32), exported.encoder(run, "query: ", fp32)))
    for key in wanted:
        if key in ("ort-int8", "ov-bf16") and key not in runtimes:
            print(f"({key}: its runtime is not installed; skipped)", flush=True)
    return out


# -- measuring ----------------------------------------------------------------------------------------------


def build(spec: str, tmp: Path, tag: str, corpora: Path) -> tuple[Path, dict[str, float], int]:
    from qa.build import build_index

    folder = tmp / f"index-{tag}"
    start = time.perf_counter()
    report = build_index(corpora, folder, root=ROOT, embedding_model=spec, embedding_cache=tmp / f"cache-{tag}",
                         full=True)
    total = time.perf_counter() - start
    shutil.rmtree(tmp / f"cache-{tag}", ignore_errors=True)
    return folder, {"total": total, **report.stage_seconds}, report.embedded_texts


def all_questions(paths: Sequence[Path]) -> list[str]:
    return list(dict.fromkeys(item.question for p in paths if p.is_file() for item in load_gold(p)))


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(1)
    return float(c.min()), float(np.median(c))


class VariantScorer(Scorer):
    """benchmarks/retrieval.py's scorer with the variant's passage vectors and pre-embedded questions."""

    def __init__(self, base: Scorer, passages: np.ndarray, questions: dict[str, np.ndarray]) -> None:
        self.__dict__.update(base.__dict__)
        self.passages = passages
        self.questions = questions

    def dense(self, question: str) -> np.ndarray:
        return (self.passages @ self.questions[question]).astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(EXTRA), help=f"extra variants, from {','.join(EXTRA)}")
    gold_arguments(parser, "embedding_speed.md")
    args = parse_gold_arguments(parser, argv)
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(EXTRA))
    if unknown:
        parser.error(f"unknown variants {unknown}; valid: {', '.join(EXTRA)}")
    printed = Report()
    say = printed.say

    import faiss

    from qa.index import load_index
    from qa.retrieval import HybridSearcher

    tmp = Path(tempfile.mkdtemp(prefix="qa-embed-bench-"))
    try:
        started = time.perf_counter()
        variants = make_variants(wanted, tmp)
        say(f"- set-up (models loaded, variants prepared): {time.perf_counter() - started:.1f} s; "
            f"{os.cpu_count()} cores; torch threads {__import__('torch').get_num_threads()}")
        real = {DEFAULT_NAME: "e5", FP32_NAME: "e5-fp32"}
        folders: dict[str, Path] = {}
        texts: list[str] = []
        say("")
        say("## Rounds (builds from scratch with an empty embedding cache; extra variants embed every distinct unit)")
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for v in order:
                load = os.getloadavg()[0]
                if v.name in real:
                    folder, stages, embedded = build(real[v.name], tmp, f"{real[v.name]}-{r}", args.corpora)
                    if v.name in folders:
                        shutil.rmtree(folders[v.name], ignore_errors=True)
                    folders[v.name] = folder
                    v.builds.append(stages)
                    v.seconds.append(stages["embed"])
                    split = ", ".join(f"{k} {s:.1f}" for k, s in stages.items() if k != "total")
                    say(f"- round {r + 1}, {v.name}: build {stages['total']:.1f} s ({split}); {embedded} texts "
                        f"embedded, {embedded / stages['embed']:.1f} units/s; load average {load:.1f}")
                    continue
                if not texts:
                    index = load_index(folders.get(DEFAULT_NAME) or next(iter(folders.values())),
                                       embedding_model="e5" if DEFAULT_NAME in folders else "e5-fp32")
                    texts = list(dict.fromkeys(c.search_text for c in index.chunks))
                    del index
                start = time.perf_counter()
                vectors = np.asarray(v.passages(texts), dtype=np.float32)
                v.seconds.append(time.perf_counter() - start)
                v.vectors = vectors
                say(f"- round {r + 1}, {v.name}: {len(texts)} units in {v.seconds[-1]:.1f} s, "
                    f"{len(texts) / v.seconds[-1]:.1f} units/s; load average {load:.1f}")

        # vectors of the real builds, by distinct text, from their indexes
        indexes = {name: load_index(folders[name], embedding_model=real[name]) for name in real}
        for name, index in indexes.items():
            rows = {c.search_text: i for i, c in enumerate(index.chunks)}
            next(v for v in variants if v.name == name).vectors = index.embeddings[[rows[t] for t in texts]]
        index = indexes[DEFAULT_NAME]
        row_of_text = {t: i for i, t in enumerate(texts)}
        unit_rows = np.asarray([row_of_text[c.search_text] for c in index.chunks])

        reference = next(v for v in variants if v.name == FP32_NAME)
        questions = all_questions([args.gold, args.external])
        query_vectors = {v.name: np.asarray(v.queries(questions), dtype=np.float32) for v in variants}

        other_stages = [b["total"] - b["embed"] for b in next(v for v in variants if v.name == DEFAULT_NAME).builds]
        base_units = len(texts) / statistics.median(reference.seconds)
        say("")
        say(f"## Variants ({len(texts)} distinct unit texts, {len(questions)} questions; medians of {args.rounds} rounds)")
        say("| variant | units/s | vs fp32 | build s | passages cos min / median | queries cos min / median |")
        say("|---|---|---|---|---|---|")
        for v in variants:
            units = len(texts) / statistics.median(v.seconds)
            build_s = (f"{statistics.median(b['total'] for b in v.builds):.1f}" if v.builds
                       else f"{statistics.median(other_stages) + statistics.median(v.seconds):.1f} est.")
            assert v.vectors is not None and reference.vectors is not None
            pmin, pmed = cosines(v.vectors, reference.vectors)
            qmin, qmed = cosines(query_vectors[v.name], query_vectors[FP32_NAME])
            say(f"| {v.name} | {units:.1f} | {units / base_units:.2f}x | {build_s} | {pmin:.5f} / {pmed:.5f} | "
                f"{qmin:.5f} / {qmed:.5f} |")
        say("")
        for v in variants:
            if v.builds:
                med = {k: statistics.median(b[k] for b in v.builds) for k in v.builds[0]}
                say(f"- build split, {v.name} (medians): " + ", ".join(f"{k} {s:.1f} s" for k, s in med.items()))

        # retrieval, as benchmarks/retrieval.py scores it
        texts_of = {p.stem: read_corpus_text(p) for p in sorted(args.corpora.iterdir()) if p.is_file()}
        sets = {"external gold (held out)": questions_of(args.external, texts_of),
                "eval/gold.jsonl (fitting set)": questions_of(args.gold, texts_of)}
        base = Scorer(index)
        q_index = {q: i for i, q in enumerate(questions)}
        bm25 = {name: {q.id: base.bm25(q.text) for q in qs} for name, qs in sets.items()}
        fit_name = "eval/gold.jsonl (fitting set)"
        for name, qs in sets.items():
            n_en = sum(q.english for q in qs)
            say("")
            say(f"## Retrieval, {name}: {len(qs)} answerable single-card questions ({len(qs) - n_en} ja, {n_en} en)")
            say("| variant | e5 ev@10 ja | e5 ev@10 en | e5 MRR ja | e5 MRR en | fusion MRR ja | fusion MRR en "
                "| Hybrid ev@10 ja | Hybrid ev@10 en | Hybrid MRR ja | Hybrid MRR en |")
            say("|---|---|---|---|---|---|---|---|---|---|---|")
            for v in variants:
                assert v.vectors is not None
                passages = v.vectors[unit_rows]
                qv = {q.text: query_vectors[v.name][q_index[q.text]] for q in qs}
                scorer = VariantScorer(base, passages, qv)
                legs = {q.id: (bm25[name][q.id], scorer.dense(q.text)) for q in qs}
                fit_qs = sets[fit_name]
                fit_qv = {q.text: query_vectors[v.name][q_index[q.text]] for q in fit_qs}
                fit_scorer = VariantScorer(base, passages, fit_qv)
                fit_legs = {q.id: (bm25[fit_name][q.id], fit_scorer.dense(q.text)) for q in fit_qs}
                w = max(WEIGHTS, key=lambda w: evaluate(fit_scorer, fit_qs, fit_legs, weighted(w))["all"]["mrr"])
                e5 = evaluate(scorer, qs, legs, lambda b, d: d)
                fused = evaluate(scorer, qs, legs, weighted(w))
                cells = [e5["ja"]["@10"], e5["en"]["@10"], e5["ja"]["mrr"], e5["en"]["mrr"],
                         fused["ja"]["mrr"], fused["en"]["mrr"]]
                if v.model is not None:
                    swapped = copy.copy(index)
                    # its own name, so the HybridSearcher's catalog-name vectors are this variant's too
                    swapped.manifest = dataclasses.replace(index.manifest, embedding_model=f"bench:{v.name}")
                    swapped.embeddings = passages
                    swapped.dense = faiss.IndexFlatIP(passages.shape[1])
                    swapped.dense.add(passages)
                    swapped.embedder = v.model
                    hybrid, _ = evaluate_searcher(scorer, HybridSearcher(swapped), qs)
                    cells += [hybrid["ja"]["@10"], hybrid["en"]["@10"], hybrid["ja"]["mrr"], hybrid["en"]["mrr"]]
                    say(f"| {v.name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
                else:
                    say(f"| {v.name} | " + " | ".join(f"{c:.3f}" for c in cells) + " | – | – | – | – |")
            say(f"(fusion: w_bm25 fitted per variant on {fit_name} over {WEIGHTS})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    printed.write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
