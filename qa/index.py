"""The hybrid index on disk, and loading it: parsed cards, chunks, Sudachi tokens, BM25 (bm25s), vectors (FAISS).

Layout of `index/`: a `CURRENT` file naming the live generation folder `gen-…/`, which holds
manifest.json, cards.jsonl, chunks.jsonl, tokens.jsonl, embeddings.npy, dense.faiss and bm25/, and nothing else:
the manifest lists and hashes every file, and a file it does not list (or one outside that layout) is refused,
so nothing in an index can bring code. The embedding model is not stored in the index: the manifest records
its id and the digest of its files, and it is loaded from the cache folder (qa.embeddings). A build with
nothing changed writes nothing. A build writes a new generation and only then replaces CURRENT, so a crash
mid-build leaves the previous index usable; the next build removes the `.tmp-gen-*` folder it left. Builds
of one folder take turns (an flock on `.build.lock`). A loaded Index holds a shared flock on
`.readers-gen-…` for as long as it lives (it reads tokens.jsonl on first use); a build removes superseded
generations only when no reader holds them, and leaves held ones to a later build (qa.generations: the pointer,
the locks, the layout). Nothing is pickled: JSON, .npy (allow_pickle=False), FAISS. Corpus files that are links
leading out of the corpus folder are refused (skipped by name). Building it is qa.build.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import CHUNKER_VERSION, Chunk
from qa.errors import CorruptIndexError, QAError, StaleIndexError
from qa.generations import hold_live_generation, read_jsonl, read_tokens, verify_files
from qa.parsing import CORPUS_SUFFIXES, Card
from qa.parsing.card import card_from_dict
from qa.reading import outside_folder as outside_corpus
from qa.reading import file_sha256
from qa.segment import dictionary_version

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: no model/ in the generation; every file listed; embedding_digest
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
    # sha256 of each skipped corpus file (by file name), so that fixing a skipped file makes the index stale.
    skipped_files: dict[str, str] = field(default_factory=dict)
    # sha256 over the embedding model's files (its converter stamp for the built-in model).
    embedding_digest: str = ""
    # Installed versions of what decides tokens, scores and vectors (see `build_versions`).
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["cards"] = {k: CardEntry(**v) for k, v in data.get("cards", {}).items()}
        return cls(**data)


VERSIONED = ("sudachipy", "sudachidict-core", "bm25s", "faiss-cpu", "sentence-transformers", "numpy")


def build_versions() -> dict[str, str]:
    """The installed versions of the libraries whose output an index holds, recorded in its manifest."""
    import importlib.metadata

    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


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
        tokens: list[list[str]] | None,
        embeddings: np.ndarray,
        dense: Any,
        bm25: Any,
        embedder: Any,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        # The reader lock on `folder` (set by load_index): builds keep the generation while this Index lives.
        self.hold: Any = None
        self.cards = {c.id: c for c in cards}
        self.chunks = chunks
        # None: read from the generation's tokens.jsonl on first use. Only an incremental build needs the
        # tokens, and at 1,000 reports they are ~25M strings: answering questions does not pay for them.
        self._tokens = tokens
        self.embeddings = embeddings
        self.dense = dense
        self.bm25 = bm25
        self.embedder = embedder
        self.card_ids = list(self.cards)
        position = {cid: i for i, cid in enumerate(self.card_ids)}
        self.card_of_chunk = np.fromiter((position[c.card] for c in chunks), dtype=np.int32, count=len(chunks))

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def tokens(self) -> list[list[str]]:
        """The BM25 tokens of each chunk (read from disk the first time when the index was loaded)."""
        if self._tokens is None:
            self._tokens = read_tokens(self.folder, len(self.chunks))
        return self._tokens

    @tokens.setter
    def tokens(self, value: list[list[str]]) -> None:
        self._tokens = value

    # -- staleness -------------------------------------------------------------------------------------
    def stale_reasons(self, corpus_dir: Path, root: Path | None = None) -> list[str]:
        """Why this index no longer matches the corpus folder (empty list: it matches)."""
        return stale_reasons(self.manifest, corpus_dir)


def stale_reasons(manifest: Manifest, corpus_dir: Path) -> list[str]:
    """Why an index with this manifest no longer matches the corpus folder; reads no index file but the manifest."""
    reasons: list[str] = []
    current: dict[str, str] = {}
    names: dict[str, str] = {}
    for path in corpus_files(corpus_dir):
        cid = card_id_for(path)
        names[cid] = path.name
        # A link out of the corpus folder is refused by the build; its target is not read here either.
        current[cid] = "" if outside_corpus(path, corpus_dir) is not None else file_sha256(path)
    indexed = {k: v.sha256 for k, v in manifest.cards.items()}
    skipped = {Path(s.split(":")[0]).stem for s in manifest.skipped}
    skipped_files = manifest.skipped_files
    for cid, digest in current.items():
        if cid in indexed and indexed[cid] != digest:
            reasons.append(f"{cid} changed")
        elif cid not in indexed and cid not in skipped:
            reasons.append(f"{cid} is new")
        elif cid in skipped and names[cid] in skipped_files and skipped_files[names[cid]] != digest:
            reasons.append(f"{cid} changed since it was skipped")
    for cid in indexed:
        if cid not in current:
            reasons.append(f"{cid} was removed")
    if manifest.chunker_version != CHUNKER_VERSION:
        reasons.append(f"chunker {manifest.chunker_version} → {CHUNKER_VERSION}")
    if manifest.sudachi_dictionary != dictionary_version():
        reasons.append(f"Sudachi dictionary {manifest.sudachi_dictionary} → {dictionary_version()}")
    return reasons


def load_index(
    index_dir: Path,
    embedding_model: str | None = None,
    model_cache: Path | None = None,
    *,
    trust_remote_code: bool = False,
) -> Index:
    """Load the live generation; raise IndexNotFoundError, CorruptIndexError or StaleIndexError saying what to run.

    The embedding model comes from `embedding_model` (the cache folder for the built-in one), never from the
    index; `trust_remote_code` is the user's opt-in for their own model folder and is ignored inside the index.
    The generation is held (a shared reader lock) for as long as the Index lives, so a build publishing
    meanwhile cannot remove it; a generation superseded before the lock was taken is skipped for the newer one.
    """
    lock = hold_live_generation(index_dir)
    assert lock.folder is not None
    try:
        index = _load_generation(index_dir, lock.folder, embedding_model, model_cache, trust_remote_code)
    except BaseException:
        lock.release()
        raise
    index.hold = lock
    return index


def _load_generation(
    index_dir: Path, folder: Path, embedding_model: str | None, model_cache: Path | None, trust_remote_code: bool
) -> Index:
    import bm25s
    import faiss

    try:
        manifest = Manifest.from_json((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CorruptIndexError(index_dir, f"manifest.json unreadable: {exc}") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise StaleIndexError(index_dir, f"index format {manifest.format_version}, this version reads {FORMAT_VERSION}")
    verify_files(folder, manifest.files)
    from qa.embeddings import model_digest, model_id, spec_model_id

    if spec_model_id(embedding_model) != manifest.embedding_model:  # before loading a model for nothing
        raise StaleIndexError(
            index_dir,
            f"built with embedding model {manifest.embedding_model!r}, configured {spec_model_id(embedding_model)!r}",
        )
    embedder = embedder_for(index_dir, embedding_model, model_cache, trust_remote_code)
    if model_id(embedder) != manifest.embedding_model:
        raise StaleIndexError(
            index_dir, f"built with embedding model {manifest.embedding_model!r}, configured {model_id(embedder)!r}"
        )
    if manifest.embedding_digest and model_digest(embedder) != manifest.embedding_digest:
        raise StaleIndexError(index_dir, f"the files of the embedding model {manifest.embedding_model!r} changed")
    try:
        cards = [card_from_dict(d) for d in read_jsonl(folder / "cards.jsonl")]
        chunks = [Chunk.from_dict(d) for d in read_jsonl(folder / "chunks.jsonl")]
        embeddings = np.load(folder / "embeddings.npy", allow_pickle=False)
        dense = faiss.read_index(str(folder / "dense.faiss"))
        bm25 = bm25s.BM25.load(str(folder / "bm25"), allow_pickle=False)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise CorruptIndexError(index_dir, f"{type(exc).__name__}: {exc}") from exc
    if not (len(chunks) == embeddings.shape[0] == dense.ntotal):
        raise CorruptIndexError(index_dir, "chunk and vector counts disagree")
    known = {c.id for c in cards}
    if any(c.card not in known for c in chunks):
        raise CorruptIndexError(index_dir, "chunks.jsonl names a card that cards.jsonl lacks")
    return Index(folder, manifest, cards, chunks, None, embeddings, dense, bm25, embedder)


def embedder_for(index_dir: Path, spec: str | None, model_cache: Path | None, trust_remote_code: bool) -> Any:
    """The configured model, from the cache folder or the user's folder; never anything inside the index."""
    from qa.embeddings import default_cache_dir, load_embedder

    return load_embedder(
        spec, cache_dir=model_cache or default_cache_dir(), trust_remote_code=trust_remote_code, forbidden=index_dir
    )


# -- building -------------------------------------------------------------------------------------------
