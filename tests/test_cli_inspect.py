"""`qa inspect`, run in-process: how the reports were understood, and one-line errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from qa.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"


@pytest.fixture(autouse=True)
def _parse_each_folder_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real loader, memoised per corpus folder, so that the calls below do not re-parse the corpus."""
    import qa.api

    real = qa.api.load_cards

    def load_cards(settings):  # type: ignore[no-untyped-def]
        key = Path(settings.corpus_dir).resolve()
        if key not in _LOADED:
            _LOADED[key] = real(settings)
        return _LOADED[key]

    monkeypatch.setattr(qa.api, "load_cards", load_cards)


_LOADED: dict[Path, object] = {}


def run(capsys: pytest.CaptureFixture[str], *args: str, corpora: Path = CORPORA) -> tuple[int, str, str]:
    code = main(["--root", str(ROOT), "--corpora", str(corpora), "inspect", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_lists_the_five_cards(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 5
    assert [line.split()[0] for line in lines] == sorted(p.stem for p in CORPORA.glob("*.txt"))
    assert "公表日=令和7年7月31日" in lines[0]
    assert "全項目評価書" in lines[3] and "公表日=記載なし" in lines[3]
    assert "公表日=記載なし" in lines[4] and "提供先=35" in lines[4] and "移転先=29" in lines[4]
    assert "skipped" not in out


def test_inspect_004_says_what_is_not_stated(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "004")
    assert code == 0
    assert out.startswith("# 004_f28069411e69241a (corpora/004_f28069411e69241a.txt)")
    fields = dict(re.findall(r"^\s*(\w+): (.*)$", out, flags=re.M))
    assert "記載なし" in fields["published"]
    assert "記載なし" in fields["number"]
    assert "記載なし" in fields["evaluator"]
    assert fields["municipality"] == "川崎市"
    assert "II 特定個人情報ファイルの概要 > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 提供先18" in out
    assert "独立行政法人日本学生支援機構" in out
    assert "変更箇所 rows; --all to list them" in out


def test_inspect_003_json_has_the_records(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "003", "--json")
    assert code == 0
    card = json.loads(out)
    assert card["id"] == "003_5fcca4f6e38d6e1a"
    assert card["kind"] == "全項目評価書" and card["published"] is None

    def records(sections: list[dict]) -> list[dict]:
        found = []
        for s in sections:
            found += s["records"] + records(s["children"])
        return found

    all_records = records(card["sections"])
    entrust = [r for r in all_records if r["kind"] == "委託事項"]
    assert [r["number"] for r in entrust] == [2, 3, 4, 5]
    second = entrust[0]
    assert second["path"][-1] == "委託事項2"
    company = next(f for f in second["fields"] if f["label"] == "⑥委託先名")
    assert company["value"] == "日本電気(株)千葉支社"
    assert company["line"] == company["end_line"] > 0
    assert len([r for r in all_records if r["kind"] == "変更箇所"]) == 103


def test_inspect_all_lists_change_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "001", "--all")
    assert code == 0
    assert "(別添2) 変更箇所 > 変更9" in out
    assert "--all to list them" not in out


@pytest.mark.parametrize("card", ["nope", "9", "00"])  # unknown, and ambiguous
def test_inspect_an_unknown_card_is_a_one_line_error(capsys: pytest.CaptureFixture[str], card: str) -> None:
    code, out, err = run(capsys, card)
    assert code == 1
    assert out == ""
    assert err.startswith("Error: ")
    assert err.count("\n") == 1
    assert "known cards" in err


def test_inspect_names_skipped_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in ("001_fea63e88436e34da.txt", "002_eeb43361c0371a47.txt"):
        shutil.copy2(CORPORA / name, tmp_path / name)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "scan.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    code, out, err = run(capsys, corpora=tmp_path)
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["001_fea63e88436e34da", "002_eeb43361c0371a47"]
    assert "skipped: empty.txt: empty file" in out
    assert "skipped: scan.txt: binary file" in out
    code, out, _ = run(capsys, "--json", corpora=tmp_path)
    listing = json.loads(out)
    assert [c["id"] for c in listing["cards"]] == ["001_fea63e88436e34da", "002_eeb43361c0371a47"]
    assert len(listing["skipped"]) == 2
