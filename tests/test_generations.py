"""Index generations under concurrent use: `qa index` publishing while readers load, and a running
Assistant picking up the new generation.

Old failures (issue 14, items 2 and 3): publishing a generation deleted the previous one at once, so a
reader that had just read CURRENT failed with FileNotFoundError and a message calling the index damaged;
and a running Assistant kept the generation it started with, saying "out of date … run qa index" after
every rebuild until it was restarted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import CorruptIndexError
from qa.build import build_index
from qa.index import load_index

ROOT = Path(__file__).resolve().parent.parent
KAWASAKI = "000_8d285adb8fa87899"
KUMAGAYA = "001_fea63e88436e34da"
MATSUDO = "003_5fcca4f6e38d6e1a"

# A rebuilding loop in its own process, as `qa index` is run from another terminal. Each round changes
# the sixth report (a copy of 000 with one more line), so each build really publishes a new generation.
_BUILDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from qa.build import build_index
    root, seconds = Path(sys.argv[1]), float(sys.argv[2])
    extra = root / "corpora" / "005_extra.txt"
    base = (root / "corpora" / "%s.txt").read_bytes()
    # Rebuild until the test says stop (its readers have seen what they must), at most three windows long.
    cap, rounds = time.monotonic() + 3 * seconds, 0
    while time.monotonic() < cap and not (root / "stop-building").exists():
        rounds += 1
        extra.write_bytes(base + ("\\n追記 %%d\\n" %% rounds).encode("utf-8"))
        build_index(root / "corpora", root / "index", root=root)
    print(rounds)
    """
    % KAWASAKI
)


def _generation_name(index_dir: Path) -> str:
    return (index_dir / "CURRENT").read_text(encoding="utf-8").strip()


@pytest.mark.slow
def test_readers_loading_while_qa_index_rebuilds_never_fail(corpus_copy: Path) -> None:
    """5 readers load + ask for 30 s (longer, until one has loaded a second generation) while another process
    rebuilds in a loop: no ask fails.

    Before: 8 of 23 loads failed with "CURRENT names 'gen-…', which is not a generation folder" or
    "… is missing: run `qa index --full`" (the previous generation deleted under them).
    """
    from qa.api import Assistant

    index_dir = corpus_copy / "index"
    build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    settings = Settings.load(root=corpus_copy)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seconds = 30.0
    builder = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(corpus_copy), str(seconds)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    failures: list[str] = []
    asks = [0]
    loaded: set[str] = set()
    stop = time.monotonic() + seconds

    def reader() -> None:
        # For the window, and on until a second generation was loaded: on a loaded machine one load + ask can
        # take most of the window (counting time would make the test fail for being slow, not for a bug).
        while time.monotonic() < stop or (len(loaded) < 2 and time.monotonic() < stop + 2 * seconds):
            try:
                # The readers ask about reports the builder does not change, so none is stale by content.
                assistant = Assistant(settings, load_index(index_dir))
                loaded.add(assistant.index.folder.name)
                answer = assistant.ask("住民基本台帳ファイルの保管期間は？", cards=[MATSUDO])
                assert answer.citations, answer.answer
                asks[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (corpus_copy / "stop-building").write_text("", encoding="utf-8")
    out, err = builder.communicate(timeout=300)
    assert builder.returncode == 0, err[-2000:]
    rounds = int(out.strip().splitlines()[-1])
    assert rounds >= 3, f"the builder published only {rounds} generations"
    assert len(loaded) >= 2, "the readers never saw a second generation"
    assert asks[0] >= 5
    assert not failures, f"{len(failures)} of {len(failures) + asks[0]} asks failed: {failures[:3]}"
    # Superseded generations are still removed once no reader holds them: by the next build. (The readers'
    # Assistants are gone with their threads; collected now rather than whenever the collector runs.)
    import gc

    gc.collect()
    path = corpus_copy / "corpora" / f"{KUMAGAYA}.txt"
    path.write_bytes(path.read_bytes() + "\n追記\n".encode("utf-8"))
    build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    assert [p.name for p in index_dir.glob("gen-*")] == [_generation_name(index_dir)]
    assert [p.name for p in index_dir.glob(".readers-*")] == [f".readers-{_generation_name(index_dir)}"]


def test_a_generation_that_really_is_missing_is_still_an_error(corpus_copy: Path) -> None:
    """CURRENT naming a folder that does not exist (and does not move on) stays a clear error."""
    index_dir = corpus_copy / "index"
    build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    (index_dir / "CURRENT").write_text("gen-nowhere", encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="gen-nowhere"):
        load_index(index_dir)


def test_a_loaded_index_keeps_its_generation_until_it_is_released(corpus_copy: Path) -> None:
    """An Index reads tokens.jsonl when first needed, after loading: its generation stays while it lives.

    Before (with the lock held only while loading): "tokens.jsonl unreadable: FileNotFoundError" after a
    rebuild removed the generation of an Assistant that was still answering.
    """
    index_dir = corpus_copy / "index"
    build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    index = load_index(index_dir)
    for n in range(2):
        (corpus_copy / "corpora" / f"{KUMAGAYA}.txt").open("a", encoding="utf-8").write(f"\n追記{n}\n")
        build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    assert len(index.tokens) == len(index.chunks)  # read now, from a generation two builds old
    folder = index.folder
    del index
    (corpus_copy / "corpora" / f"{KUMAGAYA}.txt").open("a", encoding="utf-8").write("\n追記x\n")
    build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    assert not folder.exists()


def test_a_generation_being_read_is_not_removed_by_the_next_build(corpus_copy: Path) -> None:
    """A reader holding a generation keeps its files; the build after it is released removes it."""
    from qa.generations import reading_generation

    index_dir = corpus_copy / "index"
    build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    first = _generation_name(index_dir)
    with reading_generation(index_dir) as folder:
        assert folder.name == first
        for n in range(2):
            (corpus_copy / "corpora" / f"{KUMAGAYA}.txt").open("a", encoding="utf-8").write(f"\n追記{n}\n")
            build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
        assert (index_dir / first / "manifest.json").is_file()
    (corpus_copy / "corpora" / f"{KUMAGAYA}.txt").open("a", encoding="utf-8").write("\n追記x\n")
    build_index(corpus_copy / "corpora", index_dir, root=corpus_copy)
    assert not (index_dir / first).exists()


# -- a running Assistant follows CURRENT -----------------------------------------------------------------


def test_running_assistant_switches_to_a_rebuilt_index(corpus_copy: Path) -> None:
    """A report changes, `qa index` runs: the next question is answered from the new generation.

    Before: the Assistant kept its first generation and said "… 001_….txt changed since it was indexed:
    run `qa index`" for every question citing the changed report, until restarted.
    """
    from qa.api import Assistant
    from qa.cli import main

    settings = Settings.load(root=corpus_copy)
    build_index(settings.corpus_dir, settings.index_dir, root=corpus_copy)
    assistant = Assistant.load(settings=settings)
    first = assistant.index.folder.name
    question = "熊谷市の子育て支援の評価書の担当部署は？"
    before = assistant.ask(question, cards=[KUMAGAYA])
    assert before.citations
    path = settings.corpus_dir / f"{KUMAGAYA}.txt"
    path.write_bytes(path.read_bytes() + "\n追記: この行は試験のために加えた。\n".encode("utf-8"))
    assert main(["--root", str(corpus_copy), "index", "-q"]) == 0
    after = assistant.ask(question, cards=[KUMAGAYA])  # no StaleIndexError: switched between questions
    assert assistant.index.folder.name != first
    assert assistant.index.folder.name == _generation_name(settings.index_dir)
    assert after.answer == before.answer
    import hashlib

    assert assistant.index.manifest.cards[KUMAGAYA].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # The searcher and the chain follow too: a search hits the new generation's chunks.
    assert assistant.searcher.index is assistant.index


def test_running_app_answers_from_a_rebuilt_index(corpus_copy: Path) -> None:
    """The web app, up before a report changed and `qa index` ran, answers about that report.

    Before: "【エラー】回答できませんでした: the index … is out of date (002_….txt changed since it was
    indexed): run `qa index` to update it" until the app was restarted.
    """
    from qa.api import Assistant
    from qa.cli import main
    from qa.webapp import build_app

    settings = Settings.load(root=corpus_copy)
    build_index(settings.corpus_dir, settings.index_dir, root=corpus_copy)
    demo = build_app(Assistant.load(settings=settings), concurrency=1)
    handlers = demo.qa_handlers  # type: ignore[attr-defined]
    handlers.loader.wait(60)
    toyonaka = "002_eeb43361c0371a47"
    path = settings.corpus_dir / f"{toyonaka}.txt"
    path.write_bytes(path.read_bytes() + "\n追記: この行は試験のために加えた。\n".encode("utf-8"))
    assert main(["--root", str(corpus_copy), "index", "-q"]) == 0
    steps = list(handlers.respond("豊中市の子ども医療費の評価書の問合せ先は？", [], [], {}))
    message = steps[-1][0][-1]["content"]
    assert "エラー" not in message and "out of date" not in message, message
    assert "002" in steps[-1][1] or "豊中" in steps[-1][1]
