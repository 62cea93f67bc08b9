"""The tool's errors. The library raises these; the CLI and the app turn them into one-line messages.

Every message says what happened and what to do next.
"""

from __future__ import annotations

from pathlib import Path


class QAError(Exception):
    """Base of the tool's errors."""


class CorpusFileError(QAError):
    """A corpus file that cannot be read as a report (empty, binary, undecodable, not a report)."""

    def __init__(self, path: Path | str, why: str) -> None:
        self.path = Path(path)
        self.why = why
        super().__init__(f"{self.path.name}: {why}")


class ModelLoadError(QAError):
    """An embedding model that cannot be loaded or built."""


class IndexNotFoundError(QAError):
    """No index where one was expected."""

    def __init__(self, index_dir: Path | str) -> None:
        self.index_dir = Path(index_dir)
        super().__init__(f"no index in {self.index_dir}: run `qa index` to build it")


class CorruptIndexError(QAError):
    """An index file that is missing, truncated or unreadable."""

    def __init__(self, index_dir: Path | str, why: str) -> None:
        self.index_dir = Path(index_dir)
        super().__init__(f"the index in {self.index_dir} is damaged ({why}): run `qa index --full` to rebuild it")


class IndexBusyError(QAError):
    """The live generation was replaced again and again while it was being opened (builds in a loop)."""

    def __init__(self, index_dir: Path | str) -> None:
        self.index_dir = Path(index_dir)
        super().__init__(
            f"the index in {self.index_dir} was replaced by new builds while it was being opened: try again"
        )


class StaleIndexError(QAError):
    """An index built from other files, another model or an older chunker."""

    def __init__(self, index_dir: Path | str, why: str) -> None:
        self.index_dir = Path(index_dir)
        super().__init__(f"the index in {self.index_dir} is out of date ({why}): run `qa index` to update it")


class QuestionError(QAError, ValueError):
    """A question that cannot be asked (empty, too long, unprintable)."""


class CardNotFoundError(QAError, KeyError):
    """A card id or filter that matches no card."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else "card not found"


class WriteError(QAError):
    """A file or folder the tool could not write (a full disk, no permission, a folder in the way)."""

    def __init__(self, path: Path | str, why: str, advice: str) -> None:
        self.path = Path(path)
        self.why = why
        super().__init__(f"cannot write {self.path} ({why}): {advice}")


def os_reason(exc: BaseException) -> str:
    """A short reason for an OS-level failure, whichever library raised it (safetensors wraps ENOSPC)."""
    import errno

    text = str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in text or "StorageFull" in text:
        return "no space left on the disk"
    if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):
        return "permission denied"
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return str(strerror)
    return text.splitlines()[0][:200] if text else type(exc).__name__
