"""Question answering over Japanese 特定個人情報保護評価書 (My Number PIA reports), with verbatim citations.

Nothing heavy loads at import: `from qa import Assistant` imports the stack only when first used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Answer", "Assistant", "Citation", "Settings"]


def __getattr__(name: str) -> Any:
    if name == "Assistant":
        from qa.api import Assistant

        return Assistant
    if name in ("Answer", "Citation"):
        from qa.answering import answer

        return getattr(answer, name)
    if name == "Settings":
        from qa.config import Settings

        return Settings
    raise AttributeError(name)
