"""Commands that do not embed never import torch or sentence-transformers (checked in a fresh interpreter).

Regression: every `qa` command used to take 6-17 s to start because `qa inspect` and `qa index` with
nothing to do imported the whole embedding stack. Not a timing test: it checks sys.modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "sentence_transformers", "transformers")

PROBE = """
import json, sys
from qa.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + json.dumps([m for m in %r if m in sys.modules]) + "\\n")
sys.exit(code or 0)
""" % (HEAVY,)


def loaded(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str], str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=300)
    line = [x for x in done.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return done.returncode, json.loads(line[len("MODULES "):]), done.stdout


@pytest.mark.parametrize("args", [["--help"], ["inspect"], ["inspect", "004"], ["ask", "--help"], ["add", "--help"]])
def test_commands_that_do_not_embed_do_not_import_torch(args: list[str]) -> None:
    code, heavy, out = loaded(args)
    assert code == 0 and out.strip()
    assert heavy == [], f"qa {' '.join(args)} imported {heavy}"


def test_index_with_nothing_to_do_does_not_import_torch(settings) -> None:  # type: ignore[no-untyped-def]
    """The session's index matches corpora/: `qa index` says so from the manifest, without the model."""
    code, heavy, out = loaded(["--index", str(settings.index_dir), "index", "-q"])
    assert code == 0 and "re-embedded: none" in out and "indexed 5 cards" in out
    assert heavy == []


def test_a_missing_index_is_still_built(tmp_path: Path, corpus_copy: Path) -> None:
    """The fast path only answers "nothing to do": an empty index folder is built as before."""
    from qa.api import build
    from qa.config import Settings

    settings = Settings.load(root=corpus_copy).with_(index_dir=tmp_path / "idx")
    report = build(settings)
    assert report.cards == 5 and len(report.reembedded) == 5
    again = build(settings)
    assert again.reembedded == [] and again.cards == 5 and again.chunks == report.chunks
    (corpus_copy / "corpora" / "001_fea63e88436e34da.txt").write_text("changed\n" * 3, encoding="utf-8")
    changed = build(settings)  # the fast path sees the change and hands over to the real build
    assert changed.cards == 4 and any("001_fea63e88436e34da" in s for s in changed.skipped)
