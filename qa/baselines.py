"""Two baselines the project is measured against, built over the same corpus files in the same run.

* `FixedBM25` — fixed 500-character chunks of each file's raw text (no overlap), Sudachi tokens
  (`qa.segment.Segmenter`), BM25 (bm25s). No structure, no card scoping.
* `LangChainRecipe` — the usual LangChain tutorial recipe: `RecursiveCharacterTextSplitter`
  (500 characters, 50 overlap) over each file, the project's own embedder wrapped as a LangChain
  `Embeddings`, and an exact inner-product FAISS index (`IndexFlatIP`) built directly with faiss.

Neither has an answer composer: like the plain recipe with no LLM, each "answers" with the text of its
top chunk and cites that same chunk, which is a verbatim slice of the file. Both expose

    search(question, k) -> list[BaselineHit]      # ranked chunks with card, source, 1-based line range
    answer(question) -> (text, citations)         # top chunk text, [Citation] (qa.answering.answer)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.reading import SourceText, read_source

CHUNK_CHARS = 500
RECIPE_OVERLAP = 50
CORPUS_SUFFIXES = (".txt", ".md", ".tsv", ".html", ".htm")


@dataclass(frozen=True)
class BaselineHit:
    """One ranked chunk: its card id, the file (relative to the project root), 1-based lines, raw text."""

    card: str
    source: str
    line: int
    end_line: int
    text: str
    score: float


@dataclass(frozen=True)
class Piece:
    """A chunk of a baseline: a verbatim slice raw[start:end] of one file."""

    card: str
    source: str
    start: int
    end: int
    line: int
    end_line: int
    text: str


@dataclass(frozen=True)
class CorpusFile:
    card: str
    source: str  # relative to root when the file is under it, else absolute
    text: SourceText


def line_range(raw: str, start: int, end: int) -> tuple[int, int]:
    """1-based first and last line of raw[start:end] (an empty slice is on the line of `start`)."""
    first = raw.count("\n", 0, start) + 1
    last = first + raw.count("\n", start, max(start, end - 1))
    return first, last


def corpus_files(corpus_dir: Path | str, root: Path | str | None = None) -> list[CorpusFile]:
    """Every report file of `corpus_dir`, read with qa.reading.read_source (raw text, BOM stripped)."""
    corpus_dir = Path(corpus_dir)
    root_path = Path(root).resolve() if root is not None else None
    out: list[CorpusFile] = []
    for path in sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES):
        source = read_source(path)
        rel: Path = path.resolve()
        if root_path is not None:
            try:
                rel = rel.relative_to(root_path)
            except ValueError:
                pass
        out.append(CorpusFile(card=path.stem, source=rel.as_posix(), text=source))
    return out


def fixed_pieces(file: CorpusFile, size: int = CHUNK_CHARS) -> list[Piece]:
    """Cut the raw text into consecutive `size`-character slices (the last may be shorter)."""
    raw = file.text.raw
    pieces = []
    for start in range(0, len(raw), size):
        end = min(len(raw), start + size)
        text = raw[start:end]
        if not text.strip():
            continue
        line, end_line = line_range(raw, start, end)
        pieces.append(Piece(file.card, file.source, start, end, line, end_line, text))
    return pieces


def _citation(hit: BaselineHit) -> Any:
    from qa.answering.answer import Citation

    return Citation(card=hit.card, title=hit.card, source=hit.source, section="", quote=hit.text, line=hit.line)


class _Baseline:
    name = "baseline"
    pieces: list[Piece]
    build_seconds: float

    def search(self, question: str, k: int = 10) -> list[BaselineHit]:
        order, scores = self._rank(question, k)
        return [
            BaselineHit(p.card, p.source, p.line, p.end_line, p.text, float(s))
            for p, s in ((self.pieces[i], scores[n]) for n, i in enumerate(order))
        ]

    def answer(self, question: str) -> tuple[str, list[Any]]:
        """The top chunk's text as the answer and that chunk as the one citation; ("", []) if nothing matched."""
        hits = self.search(question, k=1)
        if not hits:
            return "", []
        return hits[0].text, [_citation(hits[0])]

    def _rank(self, question: str, k: int) -> tuple[list[int], list[float]]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.pieces)

    def _save_pieces(self, folder: Path) -> None:
        with (folder / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for p in self.pieces:
                row = {"card": p.card, "source": p.source, "start": p.start, "end": p.end, "line": p.line,
                       "end_line": p.end_line}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


class FixedBM25(_Baseline):
    """Fixed-size character chunks + Sudachi tokens + BM25 over all files (no scoping, no structure)."""

    name = "FixedBM25"

    def __init__(
        self,
        corpus_dir: Path | str,
        root: Path | str | None = None,
        *,
        chunk_chars: int = CHUNK_CHARS,
        segmenter: Any = None,
        files: Sequence[CorpusFile] | None = None,
    ) -> None:
        import bm25s

        from qa.segment import Segmenter

        _quiet_bm25s()
        started = time.perf_counter()
        self.segmenter = segmenter or Segmenter()
        files = list(files) if files is not None else corpus_files(corpus_dir, root)
        self.pieces = [p for f in files for p in fixed_pieces(f, chunk_chars)]
        tokens = [self.segmenter.tokens(p.text) or ["∅"] for p in self.pieces]
        self.bm25 = bm25s.BM25(k1=1.2, b=0.75)
        self.bm25.index(tokens, show_progress=False)
        self.vocab = self.bm25.vocab_dict
        self.build_seconds = time.perf_counter() - started

    def _rank(self, question: str, k: int) -> tuple[list[int], list[float]]:
        terms = [t for t in self.segmenter.tokens(question) if t in self.vocab]
        if not terms or not self.pieces:
            return [], []
        scores = np.asarray(self.bm25.get_scores(terms), dtype=np.float64)
        order = [int(i) for i in np.argsort(-scores, kind="stable")[:k] if scores[i] > 0]
        return order, [float(scores[i]) for i in order]

    def save(self, folder: Path | str) -> int:
        """Serialise the BM25 arrays and chunk table to `folder`; return the bytes written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(folder / "bm25"), allow_pickle=False, show_progress=False)
        self._save_pieces(folder)
        return _folder_bytes(folder)


def _langchain_embeddings_class() -> type:
    from langchain_core.embeddings import Embeddings

    class SentenceTransformerEmbeddings(Embeddings):
        """A SentenceTransformer (the project's e5) as a LangChain `Embeddings`: pieces as passages, questions
        as queries, in small batches (a 256-text batch of 500-character pieces costs gigabytes on CPU)."""

        def __init__(self, model: Any, batch_size: int = 32) -> None:
            self.model = model
            self.batch_size = batch_size

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self._encode(texts, "encode_document").tolist()

        def embed_query(self, text: str) -> list[float]:
            return self._encode([text], "encode_query")[0].tolist()

        def _encode(self, texts: Sequence[str], how: str = "encode") -> np.ndarray:
            encode = getattr(self.model, how, None) or self.model.encode
            vectors = encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return np.asarray(vectors, dtype=np.float32)

    return SentenceTransformerEmbeddings


def langchain_embeddings(model: Any) -> Any:
    """Wrap a SentenceTransformer in a langchain_core Embeddings subclass."""
    return _langchain_embeddings_class()(model)


class LangChainRecipe(_Baseline):
    """RecursiveCharacterTextSplitter(500, 50) + the same embedder + FAISS IndexFlatIP (cosine)."""

    name = "LangChainRecipe"

    def __init__(
        self,
        corpus_dir: Path | str,
        embedder: Any,
        root: Path | str | None = None,
        *,
        chunk_size: int = CHUNK_CHARS,
        chunk_overlap: int = RECIPE_OVERLAP,
        files: Sequence[CorpusFile] | None = None,
    ) -> None:
        import faiss
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started = time.perf_counter()
        files = list(files) if files is not None else corpus_files(corpus_dir, root)
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
        )
        self.embeddings = langchain_embeddings(embedder)
        self.pieces = []
        for f in files:
            raw = f.text.raw
            for doc in splitter.create_documents([raw], metadatas=[{"card": f.card, "source": f.source}]):
                start = int(doc.metadata["start_index"])
                text = doc.page_content
                if start < 0 or raw[start : start + len(text)] != text:  # never expected; be exact anyway
                    start = raw.find(text)
                    if start < 0:
                        continue
                end = start + len(text)
                line, end_line = line_range(raw, start, end)
                self.pieces.append(Piece(f.card, f.source, start, end, line, end_line, text))
        vectors = np.asarray(self.embeddings.embed_documents([p.text for p in self.pieces]), dtype=np.float32)
        dim = vectors.shape[1] if vectors.ndim == 2 and len(vectors) else len(self.embeddings.embed_query("a"))
        self.faiss = faiss.IndexFlatIP(dim)
        if len(vectors):
            self.faiss.add(vectors)
        self.build_seconds = time.perf_counter() - started

    def _rank(self, question: str, k: int) -> tuple[list[int], list[float]]:
        if not self.pieces:
            return [], []
        query = np.asarray([self.embeddings.embed_query(question)], dtype=np.float32)
        if not np.any(query):  # no known word: a zero vector ranks nothing
            return [], []
        scores, ids = self.faiss.search(query, min(k, len(self.pieces)))
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        return [i for i, _ in pairs], [s for _, s in pairs]

    def save(self, folder: Path | str) -> int:
        """Serialise the FAISS index and chunk table to `folder`; return the bytes written."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.faiss, str(folder / "dense.faiss"))
        self._save_pieces(folder)
        return _folder_bytes(folder)


def _quiet_bm25s() -> None:
    """bm25s sets its logger to DEBUG at import, so every build prints "Building index from tokens"."""
    import logging

    logger = logging.getLogger("bm25s")
    if logger.level == logging.DEBUG:
        logger.setLevel(logging.WARNING)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


__all__ = [
    "BaselineHit",
    "CorpusFile",
    "FixedBM25",
    "LangChainRecipe",
    "Piece",
    "corpus_files",
    "fixed_pieces",
    "langchain_embeddings",
    "line_range",
]
