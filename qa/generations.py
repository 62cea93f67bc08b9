"""An index folder's generations on disk: the CURRENT pointer, reader and build locks, the files a generation
may hold, and removing what a build superseded or left halfway.

A build writes a new generation folder beside the live one and publishes it by replacing CURRENT; readers
hold a shared lock on the generation they read, so a build removes only generations nobody reads.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qa.errors import CorruptIndexError, IndexBusyError, IndexNotFoundError
from qa.reading import file_sha256

log = logging.getLogger("qa.index")  # the messages are the index's, as they were before this module


def _read_pointer(index_dir: Path) -> str:
    """The generation name CURRENT holds now."""
    pointer = index_dir / "CURRENT"
    try:
        return pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexNotFoundError(index_dir) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptIndexError(index_dir, f"CURRENT unreadable: {exc}") from exc


def current_generation(index_dir: Path) -> Path:
    """The live generation folder. A name that vanished while CURRENT moved on (a build published a newer
    one and removed the old) is read again, not reported as damage."""
    name = _read_pointer(index_dir)
    for _ in range(3):
        folder = index_dir / name
        if name and "/" not in name and folder.is_dir():
            return folder
        again = _read_pointer(index_dir)
        if again == name:
            break
        name = again
    raise CorruptIndexError(index_dir, f"CURRENT names {name!r}, which is not a generation folder")


def reader_lock_path(folder: Path) -> Path:
    """The lock file beside a generation (not inside it: the manifest lists every file of a generation)."""
    return folder.parent / f".readers-{folder.name}"


class ReaderLock:
    """A shared flock on a generation's reader lock file, held while the generation is in use.

    A build removes a superseded generation only when it can take that lock exclusively, so a reader
    that has read CURRENT never loses the files under it, neither while loading nor later (an Index reads
    tokens.jsonl when first needed). `folder` is None after `acquire` when the generation vanished before
    the lock was taken (the caller reads CURRENT again). Released by `release`, or when garbage-collected.
    """

    def __init__(self, folder: Path) -> None:
        self.folder: Path | None = folder
        self._fd: int | None = None

    def acquire(self) -> ReaderLock:
        folder = self.folder
        assert folder is not None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        try:
            self._fd = os.open(reader_lock_path(folder), os.O_RDONLY)
        except FileNotFoundError:
            # A generation from before reader locks, or one removed a moment ago.
            if not folder.is_dir():
                self.folder = None
            return self
        except OSError:  # an index folder this user may not write or lock: read without a lock
            return self
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        if not folder.is_dir():  # removed between reading CURRENT and taking the lock
            self.release()
            self.folder = None
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __del__(self) -> None:
        self.release()


def hold_live_generation(index_dir: Path) -> ReaderLock:
    """The live generation with a reader lock taken on it; one superseded in between is skipped."""
    for _ in range(3):
        lock = ReaderLock(current_generation(index_dir)).acquire()
        if lock.folder is not None:
            return lock
    raise IndexBusyError(index_dir)


@contextmanager
def reading_generation(index_dir: Path) -> Iterator[Path]:
    """The live generation, held against removal by builds for the length of the `with` block."""
    lock = hold_live_generation(index_dir)
    try:
        assert lock.folder is not None
        yield lock.folder
    finally:
        lock.release()


def remove_superseded(index_dir: Path, live: Path) -> list[str]:
    """Remove generations other than `live` that no reader holds; a held one is left for the next build."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        fcntl = None  # type: ignore[assignment]
    removed = []
    for old in sorted(index_dir.glob("gen-*")):
        if old == live or not old.is_dir():
            continue
        lock_path = reader_lock_path(old)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("%s is being read; kept until a later build", old.name)
                    continue
            shutil.rmtree(old, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
            removed.append(old.name)
        finally:
            os.close(fd)
    for orphan in index_dir.glob(".readers-gen-*"):  # lock files whose generation is gone
        if not (index_dir / orphan.name[len(".readers-"):]).is_dir():
            orphan.unlink(missing_ok=True)
    return removed


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_tokens(folder: Path, expected: int) -> list[list[str]]:
    """tokens.jsonl of a generation, each distinct token stored once (the same words recur millions of times)."""
    pool: dict[str, str] = {}
    intern = pool.setdefault
    try:
        rows = [[intern(t, t) for t in row] for row in read_jsonl(folder / "tokens.jsonl")]
    except (OSError, ValueError, TypeError) as exc:
        raise CorruptIndexError(folder.parent, f"tokens.jsonl unreadable: {type(exc).__name__}: {exc}") from exc
    if len(rows) != expected:
        raise CorruptIndexError(folder.parent, f"tokens.jsonl has {len(rows)} rows for {expected} chunks")
    return rows


# The only files a generation may hold; anything else (a model folder, a .py file) is refused unread.
GENERATION_FILES = frozenset({"manifest.json", "cards.jsonl", "chunks.jsonl", "tokens.jsonl", "embeddings.npy",
                              "dense.faiss"})
GENERATION_SUBFOLDERS = {"bm25": (".json", ".npy")}


def _allowed_file(rel: str) -> bool:
    parts = rel.split("/")
    if len(parts) == 1:
        return rel in GENERATION_FILES
    suffixes = GENERATION_SUBFOLDERS.get(parts[0])
    return len(parts) == 2 and suffixes is not None and parts[1].endswith(suffixes)


def verify_files(folder: Path, files: dict[str, dict[str, Any]]) -> None:
    """Every file of the generation is listed in the manifest, belongs to the layout, and has the listed
    size and sha256; every listed file is there."""
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(folder).as_posix()
        if rel == "manifest.json":
            continue
        if rel not in files or not _allowed_file(rel):
            why = "not listed in the manifest" if rel not in files else "outside the layout"
            raise CorruptIndexError(folder.parent, f"{rel} is not part of an index ({why}); refusing to load it")
    for rel, meta in files.items():
        if not _allowed_file(rel):
            raise CorruptIndexError(
                folder.parent, f"the manifest lists {rel}, which is not part of an index; refusing to load it"
            )
        path = folder / rel
        if not path.is_file():
            raise CorruptIndexError(folder.parent, f"{rel} is missing")
        if path.stat().st_size != meta["bytes"]:
            raise CorruptIndexError(folder.parent, f"{rel} is {path.stat().st_size} bytes, expected {meta['bytes']}")
        if meta.get("sha256") and file_sha256(path) != meta["sha256"]:
            raise CorruptIndexError(folder.parent, f"{rel} does not match its checksum")


class BuildLock:
    """An exclusive lock on the index folder for the length of a build (flock: released if the process dies).

    A second build of the same folder (the app building at start-up while `qa index` runs) waits for the
    first, then reuses what it built.
    """

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / ".build.lock"
        self._file: Any = None

    def __enter__(self) -> BuildLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        self._file = self.path.open("a")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another build of %s is running; waiting for it to finish", self.path.parent)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock


def remove_leftovers(index_dir: Path) -> list[str]:
    """Remove what a build killed halfway left behind: `.tmp-*` folders and a `.CURRENT.tmp` pointer.

    Only called while holding the build lock, so no other build is writing them. Generation folders other
    than the one CURRENT names are removed after each successful build, once no reader holds them.
    """
    removed = []
    for path in index_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        removed.append(path.name)
    (index_dir / ".CURRENT.tmp").unlink(missing_ok=True)
    for path in (index_dir / "_models").glob(".*"):  # a model being saved into the default cache
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"_models/{path.name}")
    if removed:
        log.warning("removed %s left by an interrupted build", ", ".join(sorted(removed)))
    return removed


def new_generation_name(index_dir: Path) -> Path:
    """A generation folder name not taken yet (two builds within one second of one process are common)."""
    stem = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    gen, n = index_dir / stem, 1
    while gen.exists() or (index_dir / f".tmp-{gen.name}").exists():
        n += 1
        gen = index_dir / f"{stem}-{n}"
    return gen


def fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
