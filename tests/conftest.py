"""Shared fixtures. Tests run the real parser, Sudachi, the real index and chain on the real reports.

Every index a test builds goes to a temporary folder; the project's own index/ is never touched.
"""

from __future__ import annotations

import shutil
from typing import Any
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"


# -- index fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real corpus indexed once per session into a temporary folder."""
    from qa.build import build_index

    folder = tmp_path_factory.mktemp("index")
    build_index(CORPORA, folder, root=ROOT)
    return folder


@pytest.fixture(scope="session")
def settings(index_dir: Path):  # type: ignore[no-untyped-def]
    from qa.config import Settings

    return Settings.load(root=ROOT).with_(index_dir=index_dir)


@pytest.fixture(scope="session")
def assistant(settings):  # type: ignore[no-untyped-def]
    from qa.api import Assistant

    return Assistant.load(settings=settings)


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the project (corpora + pyproject) for tests that change files."""
    root = tmp_path / "project"
    (root / "corpora").mkdir(parents=True)
    for path in CORPORA.iterdir():
        shutil.copy2(path, root / "corpora" / path.name)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


# -- parsing fixtures -----------------------------------------------------------------------------------
# Each real report is read and parsed once per session; parsing tests only read these objects.

CARD_FILES = {path.name[:3]: path for path in sorted(CORPORA.glob("*.txt"))}


@pytest.fixture(scope="session")
def card_files() -> dict[str, Path]:
    """Card key ("000" … "004") → the report file in corpora/."""
    return dict(CARD_FILES)


@pytest.fixture(scope="session")
def card_sources(card_files: dict[str, Path]):  # type: ignore[no-untyped-def]
    """Card key → its SourceText."""
    from qa.reading import read_source

    return {key: read_source(path) for key, path in card_files.items()}


@pytest.fixture(scope="session")
def parsed_cards(card_sources):  # type: ignore[no-untyped-def]
    """Card key → its parsed Card."""
    from qa.parsing import parse_card

    return {key: parse_card(source, relative_to=ROOT) for key, source in card_sources.items()}


# -- app fixtures ---------------------------------------------------------------------------------------
# The web app's tests share the session's index (built above into a temporary folder) and its Assistant.


@pytest.fixture(scope="session")
def app_settings(settings):  # type: ignore[no-untyped-def]
    """Settings whose index_dir is the session's temporary index (never the project's index/)."""
    return settings


@pytest.fixture(scope="session")
def app_assistant(assistant):  # type: ignore[no-untyped-def]
    """The session's Assistant (one per process, as the app keeps it), on the temporary index."""
    return assistant


@pytest.fixture(scope="session")
def free_port():  # type: ignore[no-untyped-def]
    """A function returning a TCP port free on 127.0.0.1 right now."""
    import socket

    def pick() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    return pick


@pytest.fixture(scope="module")
def server_url(app_assistant, free_port):  # type: ignore[no-untyped-def]
    """The app served on a free loopback port for one test module, for gradio_client tests."""
    from qa.webapp import build_app, launch

    demo = build_app(app_assistant, concurrency=8)
    port = free_port()
    launch(demo, "127.0.0.1", port, block=False, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def text_of(message: dict[str, Any]) -> str:
    """The text of a chat message as gradio_client returns it (a string or a list of parts)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
