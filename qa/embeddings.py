"""Offline Japanese sentence embeddings: an IDF-weighted mean of chiVe word vectors, as a SentenceTransformer.

The `ja_ginza` wheel ships chiVe-derived word vectors (300-d) keyed by Sudachi normalized forms, the
very forms `qa.segment` produces, so embedding a text needs no network and no download. The
vectors were pruned by spaCy to 20,000 distinct rows: about 480k words map onto those rows (a rare
word shares the row of its nearest frequent word), so the model stores the rows once plus a
word → row table, not one vector per word.

`ChiVeEmbedding` is a sentence-transformers input module, so the whole model is a plain
`SentenceTransformer`: it saves with `model.save(dir)` (safetensors + JSON, no pickle) and any other
sentence-transformers model directory can replace it by configuration without other changes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sentence_transformers.base.modules.input_module import InputModule
from torch import nn

from qa.errors import ModelLoadError
from qa.segment import Segmenter, is_symbolic, default_segmenter

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

try:
    from typing import Self
except ImportError:  # pragma: no cover
    from typing_extensions import Self

log = logging.getLogger(__name__)

DEFAULT_SPEC = "chive"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.json"
CLASS_REF = "qa.embeddings.ChiVeEmbedding"
TOKEN_MODES = ("fallback", "all")
_REBUILD = "delete that folder and run `qa index --full` to rebuild the embedding model"


def ginza_version() -> str:
    """The installed ja-ginza version, which fixes the word vectors."""
    try:
        return importlib.metadata.version("ja-ginza")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def default_model_id() -> str:
    return f"chive-ja-ginza-{ginza_version()}"


def ginza_vocab_dir() -> Path:
    """The spaCy vocab folder inside the installed ja_ginza package."""
    spec = importlib.util.find_spec("ja_ginza")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default embedding model needs the ja-ginza package, which is not installed: "
            "install it (pip install ja-ginza) or configure a sentence-transformers model directory"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(p for p in root.glob("ja_ginza-*/vocab") if (p / "vectors").exists())
    if not found:
        raise ModelLoadError(
            f"no word vectors under {root}: reinstall ja-ginza (pip install --force-reinstall ja-ginza)"
        )
    return found[-1]


def read_ginza_vectors(
    vocab_dir: Path | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Read ja_ginza's vectors with spaCy: (words, row of each word, vectors [R, 300], rank of each word).

    spaCy keeps keys in the order chiVe listed them, most frequent first, so the position of a key is
    its frequency rank; that rank gives the default weights before a corpus IDF is fitted.
    ASCII words are lower-cased (the segmenter lower-cases them) keeping the more frequent spelling;
    keys made only of symbols are dropped since the segmenter never produces them.
    """
    from spacy.strings import StringStore
    from spacy.vectors import Vectors

    vocab_dir = vocab_dir or ginza_vocab_dir()
    try:
        vectors = Vectors().from_disk(vocab_dir)
        strings = StringStore().from_disk(vocab_dir / "strings.json")
    except Exception as exc:  # spaCy raises several types for damaged files
        raise ModelLoadError(
            f"cannot read the word vectors in {vocab_dir} ({exc}): reinstall ja-ginza"
        ) from exc
    words: list[str] = []
    rows: list[int] = []
    ranks: list[int] = []
    seen: set[str] = set()
    for rank, (key, row) in enumerate(vectors.key2row.items()):
        try:
            word = strings[key]
        except KeyError:
            continue
        if word.isascii():
            word = word.lower()
        if not word or word in seen or is_symbolic(word):
            continue
        seen.add(word)
        words.append(word)
        rows.append(int(row))
        ranks.append(rank)
    data = np.ascontiguousarray(vectors.data, dtype=np.float32)
    return words, np.asarray(rows, dtype=np.int64), data, np.asarray(ranks, dtype=np.int64)


def zipf_weights(ranks: np.ndarray) -> np.ndarray:
    """Weights from frequency rank, log(2 + rank): under Zipf's law this tracks IDF up to a constant,
    so の/を count little and content words count much even before a corpus IDF is fitted."""
    return np.log(2.0 + ranks.astype(np.float64)).astype(np.float32)


class ChiVeEmbedding(InputModule):
    """IDF-weighted mean of word vectors over Sudachi normalized forms, L2-normalised.

    vocab[i] is a word; its vector is vectors[rows[i]] and its weight idf[i]. Words not in vocab are
    dropped; a text with no known word embeds to the zero vector.
    token_mode "fallback" uses a mode-C word when it has a vector and otherwise its mode-A parts;
    "all" uses the C word and its A parts together (the BM25 token stream).
    """

    config_keys = ["source", "token_mode", "fitted_docs"]
    save_in_root = True

    def __init__(
        self,
        vocab: Sequence[str],
        vectors: np.ndarray | torch.Tensor,
        rows: np.ndarray | torch.Tensor | None = None,
        idf: np.ndarray | torch.Tensor | None = None,
        source: str = "",
        token_mode: str = "fallback",
        fitted_docs: int = 0,
        segmenter: Segmenter | None = None,
    ) -> None:
        super().__init__()
        if token_mode not in TOKEN_MODES:
            raise ValueError(f"token_mode must be one of {TOKEN_MODES}, not {token_mode!r}")
        vectors = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-d, got shape {tuple(vectors.shape)}")
        n = len(vocab)
        rows_np = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        idf_np = np.ones(n, dtype=np.float32) if idf is None else np.asarray(idf, dtype=np.float32)
        rows_t, idf_t = torch.as_tensor(rows_np), torch.as_tensor(idf_np)
        if rows_t.shape != (n,) or idf_t.shape != (n,):
            raise ValueError(
                f"rows and idf need one entry per word ({n}), "
                f"got {tuple(rows_t.shape)} and {tuple(idf_t.shape)}"
            )
        if n and (int(rows_t.min()) < 0 or int(rows_t.max()) >= vectors.shape[0]):
            raise ValueError("rows point outside the vector table")
        self.vocab: list[str] = list(vocab)
        self.word_to_id: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}
        if len(self.word_to_id) != n:
            raise ValueError("vocab has duplicate words")
        # mode="sum" with per-word weights: the mean's divisor is irrelevant once L2-normalised.
        self.embedding = nn.EmbeddingBag.from_pretrained(vectors, freeze=True, mode="sum")
        self.register_buffer("rows", rows_t)
        self.register_buffer("idf", idf_t)
        self.source = source
        self.token_mode = token_mode
        self.fitted_docs = int(fitted_docs)
        self.segmenter = segmenter or default_segmenter()
        self.tokenizer = self.segmenter  # sentence-transformers expects an input module to expose one

    # ---- sentence-transformers module API -------------------------------------------------------

    @property
    def max_seq_length(self) -> float:
        return math.inf

    def get_embedding_dimension(self) -> int:
        return int(self.embedding.embedding_dim)

    def word_ids(self, text: str) -> list[int]:
        """Vocabulary ids of the words of `text` that have a vector, per `token_mode`."""
        get = self.word_to_id.get
        ids: list[int] = []
        for form, parts in self.segmenter.compound_tokens(text):
            i = get(form)
            if i is not None:
                ids.append(i)
            if i is None or self.token_mode == "all":
                ids.extend(j for p in parts if (j := get(p)) is not None)
        return ids

    def preprocess(
        self, inputs: Sequence[str], prompt: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        """Segment each text into vocabulary ids, flattened with bag offsets as EmbeddingBag wants."""
        if prompt:
            inputs = self._prepend_prompt(list(inputs), prompt)
        per_text = [self.word_ids(t) for t in inputs]
        lengths = [len(ids) for ids in per_text]
        offsets = np.zeros(len(per_text), dtype=np.int64)
        if len(per_text) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        flat = np.fromiter((i for ids in per_text for i in ids), dtype=np.int64, count=sum(lengths))
        return {"input_ids": torch.from_numpy(flat), "offsets": torch.from_numpy(offsets)}

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        ids = features["input_ids"]
        summed = self.embedding(self.rows[ids], features["offsets"], per_sample_weights=self.idf[ids])
        # F.normalize clamps the norm, so a text with no known word stays an exact zero vector, never NaN.
        features["sentence_embedding"] = nn.functional.normalize(summed, p=2.0, dim=1)
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write model.safetensors (vectors, rows, idf), vocab.json and config.json; never pickle."""
        from safetensors.torch import save_file

        out = Path(output_path)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {
            "vectors": self.embedding.weight.detach().cpu().contiguous(),
            "rows": self.rows.detach().cpu().contiguous(),
            "idf": self.idf.detach().cpu().contiguous(),
        }
        save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt", "class": CLASS_REF})
        with open(out / VOCAB_FILE, "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False, separators=(",", ":"))
        self.save_config(str(out), CONFIG_FILE)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> Self:
        """Read a folder written by `save`; a missing or damaged file raises ModelLoadError."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(model_name_or_path) / subfolder
        hub = {"subfolder": subfolder, "token": token, "cache_folder": cache_folder, "revision": revision}
        paths: dict[str, str] = {}
        for name in (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE):
            try:
                found = cls.load_file_path(model_name_or_path, name, local_files_only=local_files_only, **hub)
            except Exception as exc:  # hub lookups raise many types; all mean "not available"
                raise ModelLoadError(
                    f"cannot fetch {name} of the embedding model {model_name_or_path}: {exc}"
                ) from exc
            if found is None:
                raise ModelLoadError(f"the embedding model in {folder} has no {name}: {_REBUILD}")
            paths[name] = found
        try:
            with open(paths[CONFIG_FILE], encoding="utf-8") as f:
                config = json.load(f)
            with open(paths[VOCAB_FILE], encoding="utf-8") as f:
                vocab = json.load(f)
            weights = load_file(paths[WEIGHTS_FILE])
        except (OSError, ValueError, SafetensorError) as exc:  # JSONDecodeError is a ValueError
            raise ModelLoadError(f"the embedding model in {folder} is damaged ({exc}): {_REBUILD}") from exc
        words_ok = isinstance(vocab, list) and all(isinstance(w, str) for w in vocab)
        well_formed = isinstance(config, dict) and words_ok
        if not well_formed:
            raise ModelLoadError(
                f"the embedding model in {folder} has a malformed {CONFIG_FILE} or {VOCAB_FILE}: {_REBUILD}"
            )
        missing = {"vectors", "rows", "idf"} - weights.keys()
        if missing:
            raise ModelLoadError(f"{WEIGHTS_FILE} in {folder} lacks {sorted(missing)}: {_REBUILD}")
        try:
            return cls(
                vocab,
                weights["vectors"],
                rows=weights["rows"],
                idf=weights["idf"],
                **{k: config[k] for k in cls.config_keys if k in config},
            )
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(
                f"the embedding model in {folder} is inconsistent ({exc}): {_REBUILD}"
            ) from exc

    # ---- corpus specialisation ------------------------------------------------------------------

    def fit_idf(self, texts: Iterable[str]) -> Self:
        """Set weights to smoothed IDF over `texts` (the index's chunks): log((N+1)/(df+1)) + 1.

        Words absent from the corpus get the highest weight, log(N+1) + 1.
        """
        df = np.zeros(len(self.vocab), dtype=np.int64)
        n = 0
        for text in texts:
            n += 1
            ids = np.unique(np.asarray(self.word_ids(text), dtype=np.int64))
            df[ids] += 1
        idf = np.log((n + 1.0) / (df + 1.0)) + 1.0
        self.idf.copy_(torch.from_numpy(idf.astype(np.float32)))
        self.fitted_docs = n
        return self

    def pruned(self, vocabulary: Iterable[str]) -> ChiVeEmbedding:
        """A copy holding only the words in `vocabulary` (and only the vector rows they use)."""
        keep = sorted({i for w in vocabulary if (i := self.word_to_id.get(w)) is not None})
        keep_ids = np.asarray(keep, dtype=np.int64)
        rows = self.rows.cpu().numpy()[keep_ids]
        used, new_rows = np.unique(rows, return_inverse=True)
        vectors = self.embedding.weight.detach().cpu().numpy()[used]
        return ChiVeEmbedding(
            [self.vocab[i] for i in keep],
            vectors,
            rows=new_rows.astype(np.int64),
            idf=self.idf.cpu().numpy()[keep_ids],
            source=self.source,
            token_mode=self.token_mode,
            fitted_docs=self.fitted_docs,
            segmenter=self.segmenter,
        )

    @classmethod
    def from_ginza(
        cls, vocabulary: Iterable[str] | None = None, keep_top: int = 0, token_mode: str = "fallback"
    ) -> ChiVeEmbedding:
        """Build from the installed ja_ginza vectors, weighted by frequency rank until `fit_idf`.

        With `vocabulary`, keep only those words (the index passes its corpus' tokens, which keeps a
        saved model to a few MB) plus the `keep_top` most frequent words, so that a question may use
        everyday words the reports never do (渡す for 提供) and still be embedded.
        """
        words, rows, vectors, ranks = read_ginza_vectors()
        if vocabulary is not None:
            wanted = set(vocabulary)
            keep = np.fromiter(
                (i for i, w in enumerate(words) if w in wanted or ranks[i] < keep_top), dtype=np.int64
            )
            words = [words[i] for i in keep]
            used, rows = np.unique(rows[keep], return_inverse=True)
            vectors, ranks = vectors[used], ranks[keep]
        idf = zipf_weights(ranks)
        return cls(words, vectors, rows=rows, idf=idf, source=default_model_id(), token_mode=token_mode)


# ---- model-level helpers ------------------------------------------------------------------------


def build_default_model(
    out_dir: str | Path | None = None,
    vocabulary: Iterable[str] | None = None,
    keep_top: int = 0,
    token_mode: str = "fallback",
) -> SentenceTransformer:
    """A SentenceTransformer over `ChiVeEmbedding.from_ginza`, saved to `out_dir` when given."""
    from sentence_transformers import SentenceTransformer

    module = ChiVeEmbedding.from_ginza(vocabulary, keep_top=keep_top, token_mode=token_mode)
    model = SentenceTransformer(modules=[module], device="cpu")
    model._qa_model_id = module.source
    if out_dir is not None:
        save_model(model, out_dir)
    return model


def save_model(model: SentenceTransformer, out_dir: str | Path) -> Path:
    """Save any SentenceTransformer to `out_dir`, replacing what was there once the new copy is complete."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; the saved model is an ordinary folder
    try:
        model.save(str(tmp), create_model_card=False)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _needs_our_code(folder: Path) -> bool:
    """True when the saved model's modules.json names our class, which sentence-transformers 6 only
    imports with trust_remote_code=True. Only then is that flag set, so a user's model that needs
    code of its own is still refused."""
    try:
        with open(folder / "modules.json", encoding="utf-8") as f:
            types = {m.get("type", "") for m in json.load(f)}
    except (OSError, ValueError, AttributeError):
        return False
    foreign = {t for t in types if not t.startswith("sentence_transformers.")}
    return CLASS_REF in foreign and foreign <= {CLASS_REF}


def _load_local(folder: Path) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(
            str(folder), device="cpu", local_files_only=True, trust_remote_code=_needs_our_code(folder)
        )
    except ModelLoadError:
        raise
    except Exception as exc:  # transformers and sentence-transformers raise many types here
        raise ModelLoadError(
            f"cannot load the embedding model in {folder} ({type(exc).__name__}: {exc}): point the setting "
            f"at a folder saved by sentence-transformers (model.save), or use '{DEFAULT_SPEC}' for the "
            "built-in model"
        ) from exc
    model._qa_model_id = str(folder)
    return model


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") > 1 or os.path.exists(spec)


def default_cache_dir() -> Path:
    """Where the default model is built once: $QA_CACHE_DIR, else $XDG_CACHE_HOME/qa, else ~/.cache/qa."""
    if env := os.environ.get("QA_CACHE_DIR"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa"


def load_embedder(
    spec: str | Path | None = None, *, cache_dir: str | Path | None = None, allow_download: bool = True
) -> SentenceTransformer:
    """The embedding model named by `spec`, always as a SentenceTransformer on CPU.

    None or "chive": the built-in model, built from ja_ginza into `cache_dir` on first use.
    A local directory: any sentence-transformers model, loaded without network access.
    Anything else is a Hugging Face Hub name: taken from the local HF cache when there, else
    downloaded unless `allow_download` is False (a download attempt offline retries for about a minute).
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in (DEFAULT_SPEC, "default", "")):
        folder = Path(cache_dir or default_cache_dir()) / default_model_id()
        if not (folder / "modules.json").exists():
            log.info("building the default embedding model into %s", folder)
            build_default_model(folder)
        return _load_local(folder)
    if isinstance(spec, Path) or _looks_like_path(spec):
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(
                f"no embedding model folder at {folder}: fix the embedding model setting (a folder saved by "
                f"sentence-transformers) or use '{DEFAULT_SPEC}' for the built-in model"
            )
        return _load_local(folder)
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(spec, device="cpu", local_files_only=True)
    except Exception as cached_exc:
        if not allow_download or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
            raise ModelLoadError(
                f"the embedding model {spec!r} is not in the local Hugging Face cache and downloads are off: "
                f"configure a local model folder instead, or use '{DEFAULT_SPEC}' for the built-in model"
            ) from cached_exc
        try:
            model = SentenceTransformer(spec, device="cpu")
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load the embedding model {spec!r} from the Hugging Face Hub "
                f"({type(exc).__name__}: {exc}); the Hub is unreachable offline, so download the model "
                f"elsewhere, copy its folder here and configure that folder, or use '{DEFAULT_SPEC}' "
                "for the built-in model"
            ) from exc
    model._qa_model_id = spec
    return model


def model_id(model: SentenceTransformer) -> str:
    """A stable name of the model for the index manifest: "chive-ja-ginza-<version>" for ours,
    else the folder or hub name it was loaded from."""
    first = model[0]
    if isinstance(first, ChiVeEmbedding):
        return first.source or default_model_id()
    known = getattr(model, "_qa_model_id", None)
    if known:
        return str(known)
    hf = getattr(getattr(model, "transformers_model", None), "config", None)
    return str(getattr(hf, "_name_or_path", "") or type(first).__name__)
