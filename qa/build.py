"""Build or update the index (qa.index) from the corpus folder: only reports whose file changed are parsed
again, only text the embedding cache has not seen is embedded, and a build with nothing to do writes nothing.

A build writes a new generation beside the live one and only then points CURRENT at it (qa.generations);
reused reports' lines are copied from the previous generation's files rather than serialised again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import CHUNKER_VERSION, Chunk, chunk_card
from qa.errors import CorpusFileError, IndexNotFoundError, QAError, WriteError, os_reason
from qa.generations import (
    BuildLock,
    current_generation,
    fsync_tree,
    new_generation_name,
    reader_lock_path,
    remove_leftovers,
    remove_superseded,
    verify_files,
    write_jsonl,
)
from qa.index import (
    FLAT_LIMIT,
    FORMAT_VERSION,
    CardEntry,
    Index,
    Manifest,
    Progress,
    build_versions,
    card_id_for,
    corpus_files,
    embedder_for,
    load_index,
    stale_reasons,
)
from qa.parsing import Card, parse_card
from qa.reading import file_sha256, read_source
from qa.reading import outside_folder as outside_corpus
from qa.segment import Segmenter, dictionary_version

log = logging.getLogger("qa.index")  # the build's messages keep the index's logger


@dataclass
class BuildReport:
    index_dir: Path
    cards: int
    chunks: int
    reembedded: list[str]
    reused: list[str]
    skipped: list[str]
    seconds: float
    bytes: int
    unchanged: bool = False  # nothing changed: no generation written
    embedded_texts: int = 0  # passages embedded (the others came from the embedding cache)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # parse, chunk, tokenize, embed, index, write


def _try_previous(index_dir: Path, spec: str | None, model_cache: Path | None, trust: bool) -> Index | None:
    try:
        previous = load_index(index_dir, spec, model_cache, trust_remote_code=trust)
        previous.tokens  # noqa: B018 - read now: a damaged tokens.jsonl means a full rebuild, not a failed one
        return previous
    except QAError as exc:
        if not isinstance(exc, IndexNotFoundError):
            log.warning("previous index not reused (%s); rebuilding everything", exc)
        return None


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    *,
    embedding_model: str | None = None,
    full: bool = False,
    root: Path | None = None,
    model_cache: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = 32,
    embedding_cache: Path | bool | None = None,
    trust_remote_code: bool = False,
) -> BuildReport:
    """Build or update the index; only cards whose file changed are parsed again, and only text the embedding
    cache has not seen is embedded. With nothing changed, nothing is written (not even a new generation).

    `model_cache`: where the built-in model is converted (default: qa.embeddings.default_cache_dir()).
    `embedding_cache`: folder of the passage-vector cache (default: `<model_cache>/embeddings`; False: none).
    Holds a lock on `index_dir` while it runs, and first removes what an interrupted build left there.
    """
    from qa.embeddings import default_cache_dir

    index_dir.mkdir(parents=True, exist_ok=True)
    model_cache = model_cache or default_cache_dir()
    if embedding_cache is None or embedding_cache is True:
        embedding_cache = model_cache / "embeddings"
    opts = _Options(embedding_model, full, root, model_cache, embedding_cache or None, progress, batch_size,
                    trust_remote_code)
    with BuildLock(index_dir):
        # After an interrupted build, publish afresh (that also clears what it left); otherwise a build with
        # nothing to do returns before writing anything.
        interrupted = remove_leftovers(index_dir)
        if not full and not interrupted and (unchanged := _unchanged(corpus_dir, index_dir, opts)) is not None:
            return unchanged
        return _build(corpus_dir, index_dir, opts)


@dataclass
class _Options:
    embedding_model: str | None
    full: bool
    root: Path | None
    model_cache: Path
    embedding_cache: Path | None
    progress: Progress | None
    batch_size: int
    trust_remote_code: bool


def _unchanged(corpus_dir: Path, index_dir: Path, opts: _Options) -> BuildReport | None:
    """The report of a build that has nothing to do, or None: the live generation is intact, was built with
    the configured model, and matches the corpus. Reads the manifest and hashes files; loads no model."""
    from qa.embeddings import spec_digest, spec_model_id

    started = time.perf_counter()
    try:
        folder = current_generation(index_dir)
        manifest = Manifest.from_json((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.format_version != FORMAT_VERSION or manifest.embedding_model != spec_model_id(opts.embedding_model):
            return None
        if spec_digest(opts.embedding_model, opts.model_cache) != manifest.embedding_digest:
            return None  # the model's files changed (or cannot be told without loading it)
        verify_files(folder, manifest.files)
        if stale_reasons(manifest, corpus_dir):
            return None
    except (QAError, OSError, ValueError, TypeError, KeyError):
        return None
    return BuildReport(
        index_dir=index_dir, cards=len(manifest.cards), chunks=sum(c.chunks for c in manifest.cards.values()),
        reembedded=[], reused=sorted(manifest.cards), skipped=list(manifest.skipped),
        seconds=round(time.perf_counter() - started, 2),
        bytes=sum(int(m["bytes"]) for m in manifest.files.values()), unchanged=True,
    )


def _build(corpus_dir: Path, index_dir: Path, opts: _Options) -> BuildReport:
    import bm25s
    import faiss

    from qa.embeddings import EmbeddingCache, embed_cached, model_digest, model_id

    started = time.perf_counter()
    embedding_model, root, model_cache, progress = opts.embedding_model, opts.root, opts.model_cache, opts.progress
    previous = None if opts.full else _try_previous(index_dir, embedding_model, model_cache, opts.trust_remote_code)
    # Its model is reused either way; its cards only when they were parsed, chunked and segmented as they
    # would be now (a new chunker or Sudachi dictionary reads every report again).
    reuse_cards = previous is not None and previous.manifest.chunker_version == CHUNKER_VERSION \
        and previous.manifest.sudachi_dictionary == dictionary_version()
    files = corpus_files(corpus_dir)
    report = progress or (lambda stage, done, total: None)
    timings: dict[str, float] = defaultdict(float)

    clock = time.perf_counter()
    embedder = (
        previous.embedder if previous is not None
        else embedder_for(index_dir, embedding_model, model_cache, opts.trust_remote_code)
    )
    timings["load model"] += time.perf_counter() - clock
    segmenter = Segmenter()
    pool: dict[str, str] = {}  # each distinct token string stored once
    intern = pool.setdefault

    previous_rows: dict[str, list[int]] = defaultdict(list)
    previous_line: dict[str, int] = {}
    if previous is not None:
        for i, c in enumerate(previous.chunks):
            previous_rows[c.card].append(i)
        previous_line = {cid: i for i, cid in enumerate(previous.card_ids)}
    # Reused cards are written by copying their lines from the previous generation's files.
    copy = _LineCopier(previous) if previous is not None and reuse_cards else None

    cards: list[Card] = []
    chunks_of: dict[str, list[Chunk]] = {}
    tokens_of: dict[str, list[list[str]]] = {}
    vectors_of: dict[str, np.ndarray] = {}
    entries: dict[str, CardEntry] = {}
    skipped: list[str] = []
    skipped_files: dict[str, str] = {}
    todo: list[str] = []
    seen_hashes: dict[str, str] = {}

    def skip(path: Path, why: str, digest: str = "") -> None:
        skipped.append(why)
        skipped_files[path.name] = digest
        log.warning("skipped %s", why)

    for n, path in enumerate(files, start=1):
        report("reading", n, len(files))
        cid = card_id_for(path)
        target = outside_corpus(path, corpus_dir)
        if target is not None:
            skip(path, f"{path.name}: a link to {target}, outside the corpus folder {corpus_dir}; refused")
            continue
        old = previous.manifest.cards.get(cid) if previous else None
        source = None
        clock = time.perf_counter()  # reading and hashing count as parsing
        try:
            if old is not None and cid in previous.cards:  # type: ignore[union-attr]
                digest = file_sha256(path)
            else:  # a new card is read (and hashed) once
                source = read_source(path)
                digest = source.sha256
        except OSError as exc:
            skip(path, f"{path.name}: cannot be read ({exc}); skipped")
            continue
        except CorpusFileError as exc:
            skip(path, str(exc), _digest_or_empty(path))
            continue
        if digest in seen_hashes:
            skip(path, f"{path.name}: same content as {seen_hashes[digest]}; skipped as a duplicate", digest)
            continue
        if reuse_cards and previous is not None and old is not None and old.sha256 == digest and cid in previous.cards:
            rows = previous_rows.get(cid, [])
            cards.append(previous.cards[cid])
            chunks_of[cid] = [previous.chunks[i] for i in rows]
            tokens_of[cid] = [previous.tokens[i] for i in rows]
            vectors_of[cid] = previous.embeddings[rows]
            entries[cid] = old
            if copy is not None:
                copy.reuse(cid, previous_line[cid], rows)
            seen_hashes[digest] = path.name
            continue
        try:
            if source is None:
                source = read_source(path)
                if source.sha256 != digest:  # replaced since we hashed it: index what we read
                    digest = source.sha256
            card = parse_card(source, card_id=cid, relative_to=root)
        except CorpusFileError as exc:
            skip(path, str(exc), digest)
            continue
        seen_hashes[digest] = path.name
        cards.append(card)
        timings["parse"] += time.perf_counter() - clock
        clock = time.perf_counter()
        chunks = chunk_card(card, source)
        chunks_of[cid] = chunks
        timings["chunk"] += time.perf_counter() - clock
        clock = time.perf_counter()
        tokens_of[cid] = [[intern(t, t) for t in segmenter.tokens(c.search_text)] for c in chunks]
        timings["tokenize"] += time.perf_counter() - clock
        entries[cid] = CardEntry(source=card.source, sha256=digest, chunks=len(chunks))
        todo.append(cid)
        del source

    if not cards:
        raise QAError(f"no readable report in {corpus_dir}: nothing to index ({'; '.join(skipped) or 'empty folder'})")

    fresh = previous is None
    # What is reused was copied out above (vectors) or is referenced (cards, chunks, tokens): let the rest of
    # the previous generation go (its FAISS and BM25 indexes are ~1 GB at 1,000 reports) before building new ones.
    if previous is not None and previous.hold is not None:
        previous.hold.release()  # this build removes the previous generation (it is the only writer)
    previous = None
    previous_rows.clear()
    if fresh:
        todo = [c.id for c in cards]
    dim = int(embedder.get_embedding_dimension())
    digest_of_model = model_digest(embedder)
    cache = EmbeddingCache(opts.embedding_cache, model_id(embedder), digest_of_model) if opts.embedding_cache else None

    # Embed the changed cards' chunks, many cards per call (sentence-transformers then batches by length);
    # text the cache has seen is not embedded again. Progress is still reported per card.
    clock = time.perf_counter()
    embedded = 0
    group: list[str] = []
    size = 0
    for n, cid in enumerate(todo, start=1):
        group.append(cid)
        size += len(chunks_of[cid])
        if size >= 2048 or n == len(todo):
            texts = [c.search_text for g in group for c in chunks_of[g]]
            vectors, count = embed_cached(embedder, texts, cache, opts.batch_size)
            embedded += count
            start = 0
            for g in group:
                vectors_of[g] = vectors[start : start + len(chunks_of[g])]
                start += len(chunks_of[g])
            report("embedding", n, len(todo))
            group, size = [], 0
    timings["embed"] += time.perf_counter() - clock
    clock = time.perf_counter()

    order = [c.id for c in cards]
    all_chunks = [c for cid in order for c in chunks_of[cid]]
    all_tokens = [t for cid in order for t in tokens_of[cid]]
    embeddings = np.concatenate([vectors_of[cid] for cid in order]).astype(np.float32, copy=False)
    vectors_of.clear()

    report("bm25", 1, 1)
    bm25 = bm25s.BM25(k1=1.2, b=0.75)
    bm25.index([t if t else ["∅"] for t in all_tokens], show_progress=False)
    report("faiss", 1, 1)
    if len(all_chunks) <= FLAT_LIMIT:
        dense = faiss.IndexFlatIP(dim)
        kind = "IndexFlatIP"
    else:
        dense = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        dense.hnsw.efSearch = 128
        kind = "IndexHNSWFlat(M=32)"
    dense.add(embeddings)
    timings["bm25 + faiss"] += time.perf_counter() - clock
    clock = time.perf_counter()

    report("writing", 1, 1)
    gen = new_generation_name(index_dir)
    tmp = index_dir / f".tmp-{gen.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if copy is not None and copy.write(tmp, order, cards, chunks_of, tokens_of):
            pass  # reused cards' lines copied, the others serialised
        else:
            write_jsonl(tmp / "cards.jsonl", (c.to_dict() for c in cards))
            write_jsonl(tmp / "chunks.jsonl", (c.to_dict() for c in all_chunks))
            write_jsonl(tmp / "tokens.jsonl", all_tokens)
        np.save(tmp / "embeddings.npy", embeddings, allow_pickle=False)
        faiss.write_index(dense, str(tmp / "dense.faiss"))
        bm25.save(str(tmp / "bm25"), allow_pickle=False)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            chunker_version=CHUNKER_VERSION,
            embedding_model=model_id(embedder),
            embedding_dim=dim,
            sudachi_dictionary=dictionary_version(),
            faiss_index=kind,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            build_seconds=round(time.perf_counter() - started, 2),
            cards=entries,
            skipped=skipped,
            reembedded=sorted(todo),
            skipped_files=skipped_files,
            embedding_digest=digest_of_model,
            versions=build_versions(),
        )
        for path in sorted(tmp.rglob("*")):
            if path.is_file():
                rel = path.relative_to(tmp).as_posix()
                manifest.files[rel] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        fsync_tree(tmp)
        tmp.rename(gen)
        reader_lock_path(gen).touch()  # readers take it while they load this generation
        pointer = index_dir / ".CURRENT.tmp"
        pointer.write_text(gen.name, encoding="utf-8")
        with pointer.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(pointer, index_dir / "CURRENT")
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        (index_dir / ".CURRENT.tmp").unlink(missing_ok=True)
        if _is_write_failure(exc):
            raise WriteError(
                index_dir, os_reason(exc), "free some disk space and run `qa index` again (the previous index is unchanged)"
            ) from exc
        raise
    remove_superseded(index_dir, gen)
    size_on_disk = sum(p.stat().st_size for p in gen.rglob("*") if p.is_file())
    return BuildReport(
        index_dir=index_dir,
        cards=len(cards),
        chunks=len(all_chunks),
        reembedded=sorted(todo),
        reused=sorted(set(order) - set(todo)),
        skipped=skipped,
        seconds=round(time.perf_counter() - started, 2),
        bytes=size_on_disk,
        embedded_texts=embedded,
        stage_seconds={**{k: round(v, 2) for k, v in timings.items()}, "write": round(time.perf_counter() - clock, 2)},
    )


class _LineCopier:
    """Writes cards.jsonl, chunks.jsonl and tokens.jsonl of an incremental build, copying the lines of the
    reused cards from the previous generation instead of serialising them again (at 1,000 reports that is
    ~1 GB of JSON, most of the write time). Any doubt about the previous files: write() returns False and
    everything is serialised from the objects, which the build holds anyway."""

    FILES = ("cards.jsonl", "chunks.jsonl", "tokens.jsonl")

    def __init__(self, previous: Index) -> None:
        self.folder = previous.folder
        self.counts = {"cards.jsonl": len(previous.cards), "chunks.jsonl": len(previous.chunks),
                       "tokens.jsonl": len(previous.chunks)}
        self.checksums = {name: previous.manifest.files.get(name, {}).get("sha256") for name in self.FILES}
        self.card_line: dict[str, int] = {}
        self.chunk_rows: dict[str, list[int]] = {}

    def reuse(self, cid: str, card_line: int, chunk_rows: list[int]) -> None:
        self.card_line[cid] = card_line
        self.chunk_rows[cid] = chunk_rows

    def _lines(self, name: str) -> list[bytes] | None:
        try:
            data = (self.folder / name).read_bytes()
        except OSError:
            return None
        if not self.checksums[name] or hashlib.sha256(data).hexdigest() != self.checksums[name]:
            return None
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return lines if len(lines) == self.counts[name] and all(lines) else None

    def write(
        self,
        tmp: Path,
        order: list[str],
        cards: list[Card],
        chunks_of: dict[str, list[Chunk]],
        tokens_of: dict[str, list[list[str]]],
    ) -> bool:
        if not self.card_line:
            return False
        card_of = {c.id: c for c in cards}
        fresh: dict[str, Callable[[str], Iterable[Any]]] = {
            "cards.jsonl": lambda cid: [card_of[cid].to_dict()],
            "chunks.jsonl": lambda cid: (c.to_dict() for c in chunks_of[cid]),
            "tokens.jsonl": lambda cid: tokens_of[cid],
        }
        for name in self.FILES:
            lines = self._lines(name)
            if lines is None:
                log.info("previous %s not copied; serialising every card", name)
                return False
            rows = {cid: [line] for cid, line in self.card_line.items()} if name == "cards.jsonl" else self.chunk_rows
            with (tmp / name).open("wb") as f:
                for cid in order:
                    if cid in rows:
                        for i in rows[cid]:
                            f.write(lines[i])
                            f.write(b"\n")
                    else:
                        for row in fresh[name](cid):
                            f.write(json.dumps(row, ensure_ascii=False).encode("utf-8"))
                            f.write(b"\n")
            del lines
        return True


def _digest_or_empty(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""


def _is_write_failure(exc: BaseException) -> bool:
    """Whether writing a generation failed for the disk's sake (full, read-only, no permission), whichever
    library did the writing: OSError from Python and numpy, SafetensorError or RuntimeError from the
    Rust and C++ writers, which carry the OS message in their text."""
    if isinstance(exc, OSError):
        return True
    if type(exc).__name__ == "SafetensorError" or isinstance(exc, RuntimeError):
        text = str(exc)
        return any(s in text for s in ("No space left", "StorageFull", "IoError", "Permission denied", "fwrite",
                                       "Read-only file system"))
    return False


# -- nothing to do --------------------------------------------------------------------------------------


class _ManifestOnly:
    """What `Index.stale_reasons` reads (the manifest), without loading vectors or the embedding model."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest


def unchanged_report(index_dir: Path, corpus_dir: Path, embedding_model: str | None = None) -> BuildReport | None:
    """The report of a build that would change nothing, read from the manifest alone; None when one is needed.

    Lets `qa index` (and the app's start) return at once, without importing torch, when the corpus folder
    matches the live generation. A configured model (not the generation's own copy) always goes the long way.
    """
    started = time.perf_counter()
    if embedding_model is not None:
        return None
    try:
        folder = current_generation(index_dir)
        manifest = Manifest.from_json((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.format_version != FORMAT_VERSION or not (folder / "model" / "modules.json").is_file():
            return None
        verify_files(folder, manifest.files)
        if Index.stale_reasons(_ManifestOnly(manifest), corpus_dir):  # type: ignore[arg-type]
            return None
    except (QAError, OSError, ValueError, TypeError, KeyError):
        return None
    return BuildReport(
        index_dir=index_dir,
        cards=len(manifest.cards),
        chunks=sum(entry.chunks for entry in manifest.cards.values()),
        reembedded=[],
        reused=sorted(manifest.cards),
        skipped=list(manifest.skipped),
        seconds=round(time.perf_counter() - started, 2),
        bytes=sum(int(meta.get("bytes", 0)) for meta in manifest.files.values()),
    )
