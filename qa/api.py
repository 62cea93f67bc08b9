"""The Python API: what the CLI, the app and the evaluation call."""

from __future__ import annotations

from qa.config import Settings
from qa.parsing import Corpus, load_corpus


def load_cards(settings: Settings) -> Corpus:
    """Parse every report of the corpus folder; bad files are skipped with a warning naming them."""
    return load_corpus(settings.corpus_dir, root=settings.root)
