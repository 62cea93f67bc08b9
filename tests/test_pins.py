"""What can change answers silently is pinned, and every index records the versions it was built with.

Old failure (issue 14): sudachidict-core, faiss-cpu and bm25s were unpinned (a new dictionary makes every
index stale), and the manifest recorded only the dictionary's version.
"""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PINNED = ("sudachidict-core", "sudachipy", "faiss-cpu", "bm25s")


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    return {r.name.lower(): r for r in reqs}


@pytest.mark.parametrize("name", PINNED)
def test_pinned_to_a_tested_range(name: str) -> None:
    """An upper bound (or an exact version), and the installed, tested version inside it."""
    req = _requirements()[name]
    assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), f"{req} has no upper bound"
    installed = importlib.metadata.version(name)
    assert req.specifier.contains(installed, prereleases=True), f"installed {name} {installed} is outside {req}"


def test_the_manifest_records_the_versions(index_dir: Path) -> None:
    gen = index_dir / (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    versions = manifest.get("versions")
    assert isinstance(versions, dict), "manifest.json has no versions"
    for name in PINNED:
        assert versions.get(name) == importlib.metadata.version(name), (name, versions)


def test_the_loaded_manifest_keeps_the_versions(index_dir: Path) -> None:
    from qa.index import load_index

    manifest = load_index(index_dir).manifest
    assert manifest.versions["sudachidict-core"] == manifest.sudachi_dictionary
