"""Build, save and load the hybrid index: parsed cards, chunks, Sudachi tokens, BM25 (bm25s), vectors (FAISS).

Layout of `index/`: a `CURRENT` file naming the live generation folder `gen-…/`, which holds
manifest.json, cards.jsonl, chunks.jsonl, tokens.jsonl, embeddings.npy, dense.faiss, bm25/ and (for the
built-in embedder) model/. A build writes a new generation and only then replaces CURRENT, so a crash
mid-build leaves the previous index usable. Nothing is pickled: JSON, .npy (allow_pickle=False), FAISS.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import CHUNKER_VERSION, Chunk, chunk_card
from qa.errors import CorpusFileError, CorruptIndexError, IndexNotFoundError, QAError, StaleIndexError
from qa.parsing import CORPUS_SUFFIXES, Card, parse_card
from qa.parsing.card import card_from_dict
from qa.reading import read_source
from qa.segment import Segmenter, dictionary_version

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FLAT_LIMIT = 200_000  # exact search up to here; HNSW beyond
Progress = Callable[[str, int, int], None]


@dataclass
class CardEntry:
    source: str
    sha256: str
    chunks: int


@dataclass
class Manifest:
    format_version: int
    chunker_version: str
    embedding_model: str
    embedding_dim: int
    sudachi_dictionary: str
    faiss_index: str
    built_at: str
    build_seconds: float
    cards: dict[str, CardEntry] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    reembedded: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["cards"] = {k: CardEntry(**v) for k, v in data.get("cards", {}).items()}
        return cls(**data)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def corpus_files(corpus_dir: Path) -> list[Path]:
    if not corpus_dir.is_dir():
        raise QAError(f"no corpus folder at {corpus_dir}: put the reports there or pass --corpora")
    return sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES)


def card_id_for(path: Path) -> str:
    return path.stem


# -- the loaded index -----------------------------------------------------------------------------------


class Index:
    """A loaded generation. Holds everything retrieval and answering need; built or loaded, never at import."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        cards: list[Card],
        chunks: list[Chunk],
        tokens: list[list[str]],
        embeddings: np.ndarray,
        dense: Any,
        bm25: Any,
        embedder: Any,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.cards = {c.id: c for c in cards}
        self.chunks = chunks
        self.tokens = tokens
        self.embeddings = embeddings
        self.dense = dense
        self.bm25 = bm25
        self.embedder = embedder
        self.card_of_chunk = np.array([list(self.cards).index(c.card) for c in chunks], dtype=np.int32)
        self.card_ids = list(self.cards)

    def __len__(self) -> int:
        return len(self.chunks)

    # -- staleness -------------------------------------------------------------------------------------
    def stale_reasons(self, corpus_dir: Path, root: Path | None = None) -> list[str]:
        """Why this index no longer matches the corpus folder (empty list: it matches)."""
        reasons: list[str] = []
        current: dict[str, str] = {}
        for path in corpus_files(corpus_dir):
            current[card_id_for(path)] = file_sha256(path)
        indexed = {k: v.sha256 for k, v in self.manifest.cards.items()}
        skipped = {Path(s.split(":")[0]).stem for s in self.manifest.skipped}
        for cid, digest in current.items():
            if cid in indexed and indexed[cid] != digest:
                reasons.append(f"{cid} changed")
            elif cid not in indexed and cid not in skipped:
                reasons.append(f"{cid} is new")
        for cid in indexed:
            if cid not in current:
                reasons.append(f"{cid} was removed")
        if self.manifest.chunker_version != CHUNKER_VERSION:
            reasons.append(f"chunker {self.manifest.chunker_version} → {CHUNKER_VERSION}")
        if self.manifest.sudachi_dictionary != dictionary_version():
            reasons.append(f"Sudachi dictionary {self.manifest.sudachi_dictionary} → {dictionary_version()}")
        return reasons


# -- reading and writing generations --------------------------------------------------------------------


def _current_generation(index_dir: Path) -> Path:
    pointer = index_dir / "CURRENT"
    if not pointer.is_file():
        raise IndexNotFoundError(index_dir)
    name = pointer.read_text(encoding="utf-8").strip()
    folder = index_dir / name
    if not name or "/" in name or not folder.is_dir():
        raise CorruptIndexError(index_dir, f"CURRENT names {name!r}, which is not a generation folder")
    return folder


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _verify_files(folder: Path, manifest: Manifest) -> None:
    for rel, meta in manifest.files.items():
        path = folder / rel
        if not path.is_file():
            raise CorruptIndexError(folder.parent, f"{rel} is missing")
        if path.stat().st_size != meta["bytes"]:
            raise CorruptIndexError(folder.parent, f"{rel} is {path.stat().st_size} bytes, expected {meta['bytes']}")
        if meta.get("sha256") and file_sha256(path) != meta["sha256"]:
            raise CorruptIndexError(folder.parent, f"{rel} does not match its checksum")


def load_index(index_dir: Path, embedding_model: str | None = None, model_cache: Path | None = None) -> Index:
    """Load the live generation; raise IndexNotFoundError, CorruptIndexError or StaleIndexError saying what to run."""
    import bm25s
    import faiss

    folder = _current_generation(index_dir)
    try:
        manifest = Manifest.from_json((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CorruptIndexError(index_dir, f"manifest.json unreadable: {exc}") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise StaleIndexError(index_dir, f"index format {manifest.format_version}, this version reads {FORMAT_VERSION}")
    _verify_files(folder, manifest)
    embedder = _embedder_for(folder, embedding_model, model_cache)
    from qa.embeddings import model_id

    if model_id(embedder) != manifest.embedding_model:
        raise StaleIndexError(
            index_dir, f"built with embedding model {manifest.embedding_model!r}, configured {model_id(embedder)!r}"
        )
    try:
        cards = [card_from_dict(d) for d in _read_jsonl(folder / "cards.jsonl")]
        chunks = [Chunk.from_dict(d) for d in _read_jsonl(folder / "chunks.jsonl")]
        tokens = [list(row) for row in _read_jsonl(folder / "tokens.jsonl")]
        embeddings = np.load(folder / "embeddings.npy", allow_pickle=False)
        dense = faiss.read_index(str(folder / "dense.faiss"))
        bm25 = bm25s.BM25.load(str(folder / "bm25"), allow_pickle=False)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise CorruptIndexError(index_dir, f"{type(exc).__name__}: {exc}") from exc
    if not (len(chunks) == len(tokens) == embeddings.shape[0] == dense.ntotal):
        raise CorruptIndexError(index_dir, "chunk, token and vector counts disagree")
    return Index(folder, manifest, cards, chunks, tokens, embeddings, dense, bm25, embedder)


def _embedder_for(folder: Path | None, spec: str | None, model_cache: Path | None) -> Any:
    """The generation's own fitted copy of the built-in model, else the configured model."""
    from qa.embeddings import load_embedder

    if spec is None and folder is not None and (folder / "model" / "modules.json").is_file():
        return load_embedder(folder / "model")
    return load_embedder(spec, cache_dir=model_cache)


# -- building -------------------------------------------------------------------------------------------


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


def _try_previous(index_dir: Path, spec: str | None, model_cache: Path | None) -> Index | None:
    try:
        return load_index(index_dir, spec, model_cache)
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
    batch_size: int = 256,
) -> BuildReport:
    """Build or update the index; only cards whose file changed are parsed and embedded again."""
    import bm25s
    import faiss

    from qa.embeddings import ChiVeEmbedding, model_id, save_model

    started = time.perf_counter()
    index_dir.mkdir(parents=True, exist_ok=True)
    model_cache = model_cache or index_dir / "_models"
    previous = None if full else _try_previous(index_dir, embedding_model, model_cache)
    files = corpus_files(corpus_dir)
    report = progress or (lambda stage, done, total: None)

    segmenter = Segmenter()
    cards: list[Card] = []
    chunks_of: dict[str, list[Chunk]] = {}
    tokens_of: dict[str, list[list[str]]] = {}
    vectors_of: dict[str, np.ndarray] = {}
    entries: dict[str, CardEntry] = {}
    skipped: list[str] = []
    todo: list[str] = []
    seen_hashes: dict[str, str] = {}
    for n, path in enumerate(files, start=1):
        report("reading", n, len(files))
        cid = card_id_for(path)
        try:
            digest = file_sha256(path)
        except OSError as exc:
            skipped.append(f"{path.name}: cannot be read ({exc}); skipped")
            continue
        if digest in seen_hashes:
            skipped.append(f"{path.name}: same content as {seen_hashes[digest]}; skipped as a duplicate")
            log.warning("skipped %s", skipped[-1])
            continue
        old = previous.manifest.cards.get(cid) if previous else None
        if previous is not None and old is not None and old.sha256 == digest and cid in previous.cards:
            rows = [i for i, c in enumerate(previous.chunks) if c.card == cid]
            cards.append(previous.cards[cid])
            chunks_of[cid] = [previous.chunks[i] for i in rows]
            tokens_of[cid] = [previous.tokens[i] for i in rows]
            vectors_of[cid] = previous.embeddings[rows]
            entries[cid] = old
            seen_hashes[digest] = path.name
            continue
        try:
            source = read_source(path)
            if source.sha256 != digest:  # replaced while we were reading: take what we read
                digest = source.sha256
            card = parse_card(source, card_id=cid, relative_to=root)
        except CorpusFileError as exc:
            skipped.append(str(exc))
            log.warning("skipped %s", exc)
            continue
        seen_hashes[digest] = path.name
        cards.append(card)
        chunks = chunk_card(card)
        chunks_of[cid] = chunks
        tokens_of[cid] = [segmenter.tokens(c.search_text) for c in chunks]
        entries[cid] = CardEntry(source=card.source, sha256=digest, chunks=len(chunks))
        todo.append(cid)

    if not cards:
        raise QAError(f"no readable report in {corpus_dir}: nothing to index ({'; '.join(skipped) or 'empty folder'})")

    # The embedder: reuse the previous generation's (its IDF was fitted on this corpus) or start fresh.
    if previous is not None:
        embedder = previous.embedder
    else:
        embedder = _embedder_for(None, embedding_model, model_cache)
        first = embedder[0]
        if isinstance(first, ChiVeEmbedding):
            first.fit_idf(c.search_text for cid in chunks_of for c in chunks_of[cid])
        todo = [c.id for c in cards]
    dim = int(embedder.get_embedding_dimension())
    for n, cid in enumerate(todo, start=1):
        report("embedding", n, len(todo))
        texts = [c.search_text for c in chunks_of[cid]]
        vectors = embedder.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        vectors_of[cid] = np.asarray(vectors, dtype=np.float32).reshape(len(texts), dim)

    order = [c.id for c in cards]
    all_chunks = [c for cid in order for c in chunks_of[cid]]
    all_tokens = [t for cid in order for t in tokens_of[cid]]
    embeddings = np.concatenate([vectors_of[cid] for cid in order]).astype(np.float32)

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

    report("writing", 1, 1)
    gen = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    tmp = index_dir / f".tmp-{gen.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_jsonl(tmp / "cards.jsonl", (c.to_dict() for c in cards))
        _write_jsonl(tmp / "chunks.jsonl", (c.to_dict() for c in all_chunks))
        _write_jsonl(tmp / "tokens.jsonl", all_tokens)
        np.save(tmp / "embeddings.npy", embeddings, allow_pickle=False)
        faiss.write_index(dense, str(tmp / "dense.faiss"))
        bm25.save(str(tmp / "bm25"), allow_pickle=False)
        if isinstance(embedder[0], ChiVeEmbedding):
            save_model(embedder, tmp / "model")
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
        )
        for path in sorted(tmp.rglob("*")):
            if path.is_file():
                rel = path.relative_to(tmp).as_posix()
                manifest.files[rel] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        _fsync_tree(tmp)
        tmp.rename(gen)
        pointer = index_dir / ".CURRENT.tmp"
        pointer.write_text(gen.name, encoding="utf-8")
        with pointer.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(pointer, index_dir / "CURRENT")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in index_dir.glob("gen-*"):
        if old != gen and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    size = sum(p.stat().st_size for p in gen.rglob("*") if p.is_file())
    return BuildReport(
        index_dir=index_dir,
        cards=len(cards),
        chunks=len(all_chunks),
        reembedded=sorted(todo),
        reused=sorted(set(order) - set(todo)),
        skipped=skipped,
        seconds=round(time.perf_counter() - started, 2),
        bytes=size,
    )


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
