"""Reports from PDF: the national form drawn by a real PDF writer (reportlab) from real report content.

tests/pdf_forms.py draws the parsed cards of 001 (checkboxes as drawn squares), 002 (□/■ glyphs) and 004
(the form's "[ ○ ]" text, blocks in the form's order) as bordered label/value tables that cross page breaks.
Ingesting each PDF must give the card the text version gives; a scan and a damaged PDF are refused, and
nothing is written for them.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("reportlab")
pdfplumber = pytest.importorskip("pdfplumber")

from pdf_forms import FormLayout, write_form_pdf  # noqa: E402

from qa.errors import CorpusFileError  # noqa: E402
from qa.parsing import Card, corpus_files, load_corpus, parse_file  # noqa: E402
from qa.pdf_extract import PAGE_BREAK, extract_pdf, ingest_pdf, page_of  # noqa: E402
from qa.reading import read_source  # noqa: E402

CORPORA = Path(__file__).resolve().parents[1] / "corpora"
FORMS = {"001": FormLayout(checkbox="drawn"), "002": FormLayout(checkbox="glyph"),
         "004": FormLayout(checkbox="text", template_order=True)}


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _text_card(number: str) -> Card:
    return parse_file(next(CORPORA.glob(f"{number}_*.txt")))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Card, Card, Path, Path]]:
    """number → (text card, PDF card, the PDF drawn, the extracted text in the corpus folder)."""
    drawn = tmp_path_factory.mktemp("drawn")
    corpus = tmp_path_factory.mktemp("corpus")
    out = {}
    for number, layout in FORMS.items():
        card = _text_card(number)
        pdf = drawn / f"report{number}.pdf"
        write_form_pdf(card, pdf, layout)
        text_path = ingest_pdf(pdf, corpus)
        out[number] = (card, parse_file(text_path), pdf, text_path)
    return out


@pytest.mark.parametrize("number", ["001", "002"])
def test_metadata_equal_to_the_text_version(ingested, number: str) -> None:
    text_card, pdf_card, _, _ = ingested[number]
    for key in ("kind", "number", "title", "evaluator", "municipality", "published", "affair"):
        assert getattr(pdf_card, key) == getattr(text_card, key), key
    assert pdf_card.municipality in ("熊谷市", "豊中市") and pdf_card.published


@pytest.mark.parametrize("number", ["001", "002"])
def test_same_sections_fields_and_records_per_kind(ingested, number: str) -> None:
    text_card, pdf_card, _, _ = ingested[number]
    assert [s.path for s in pdf_card.walk()] == [s.path for s in text_card.walk()]
    assert Counter(r.kind for r in pdf_card.records()) == Counter(r.kind for r in text_card.records())
    text_fields = [(holder.path, f.label) for holder, f in text_card.fields()]
    assert [(holder.path, f.label) for holder, f in pdf_card.fields()] == text_fields


@pytest.mark.parametrize("number", ["001", "002"])
def test_values_and_choices_equal_to_the_text_version(ingested, number: str) -> None:
    """Every plain value comes out equal (line breaks aside); every choice the text states comes out the same.

    Left out: option lists drawn as checkboxes (their text is the boxes'), values with a literal <…> (the
    parser's HTML stripping takes it for a tag) and characters the CID font cannot draw (002's stray Hangul).
    """
    text_card, pdf_card, _, _ = ingested[number]
    compared = 0
    for (_, want), (_, got) in zip(text_card.fields(), pdf_card.fields(), strict=True):
        if want.selected is not None:
            assert got.selected == want.selected, want.label
        else:  # the text does not say which box is ticked; the PDF shows none ticked, or no choice at all
            assert not got.selected, want.label
        if want.options or "<" in want.value or not _drawable(want.value):
            continue
        assert _squeeze(got.value) == _squeeze(want.value), want.label
        compared += 1
    assert compared > 250


def _drawable(text: str) -> bool:
    try:
        text.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def test_named_values(ingested) -> None:
    text_card, pdf_card, _, _ = ingested["001"]
    assert pdf_card.records("委託事項")[0].value("委託先名") == "株式会社ジーシーシー"
    system1 = pdf_card.records("システム")[0]
    assert system1.get("他のシステムとの接続").selected == ["庁内連携システム", "既存住民基本台帳システム", "宛名システム等"]
    assert [r.name for r in pdf_card.records("委託事項")] == [r.name for r in text_card.records("委託事項")]
    text_card, pdf_card, _, _ = ingested["002"]
    assert [r.value("委託先名") for r in pdf_card.records("委託事項")] == [
        r.value("委託先名") for r in text_card.records("委託事項")
    ]
    changes = pdf_card.records("変更箇所")
    assert [r.value("変更日") for r in changes] == [r.value("変更日") for r in text_card.records("変更箇所")]


def test_checkboxes_come_out_in_bracket_form(ingested) -> None:
    for number in ("001", "002"):
        text = ingested[number][3].read_text(encoding="utf-8")
        assert "[○] " in text and "[ ] " in text
        assert "□" not in text and "■" not in text


def test_004_blocks_in_order_with_their_names(ingested) -> None:
    text_card, pdf_card, _, _ = ingested["004"]
    assert pdf_card.municipality == "川崎市" and pdf_card.kind == text_card.kind
    for kind in ("提供先", "移転先"):
        want = {r.number: r for r in text_card.records(kind)}
        got = pdf_card.records(kind)
        assert [r.number for r in got] == list(range(1, len(want) + 1))
        assert len(got) == {"提供先": 35, "移転先": 29}[kind]
        assert [r.name for r in got] == [want[r.number].name for r in got]
        use = "②提供先における用途" if kind == "提供先" else "②移転先における用途"
        for r in got:  # each block keeps its own fields
            if want[r.number].value(use.lstrip("②")):
                assert _squeeze(r.value(use.lstrip("②")) or "") == _squeeze(want[r.number].value(use.lstrip("②")))


def test_page_breaks_and_verbatim_citations(ingested) -> None:
    """Each page starts with a form feed line; a quote found in the text is on the page `page_of` names."""
    _, pdf_card, pdf, text_path = ingested["001"]
    source = read_source(text_path)
    with pdfplumber.open(pdf) as doc:
        page_texts = [_squeeze(p.extract_text() or "") for p in doc.pages]
    assert sum(1 for line in source.lines if line == PAGE_BREAK) == len(page_texts) > 5
    assert page_of(source, 1) == 1
    checked = 0
    for _, f in pdf_card.fields():
        if f.empty or f.options or len(f.value) < 6:
            continue
        found = source.find_quote(f.value[:12], first=f.line, last=f.end_line)
        assert found is not None, f.label
        line, quote = found
        assert quote in source.raw_line(line)
        page = page_of(source, line)
        assert page is not None
        # Cells side by side interleave in the page's plain text: the quote starts there, and all of it is there.
        on_page = page_texts[page - 1]
        assert _squeeze(quote)[:4] in on_page and not Counter(_squeeze(quote)) - Counter(on_page), (page, quote)
        checked += 1
    assert checked > 100
    assert page_of("no page breaks here", 1) is None


def test_rows_split_by_page_breaks_are_joined(ingested) -> None:
    """The drawn PDFs split long cells across pages; each split row comes out as one line of the text."""
    from qa.pdf_extract import drop_furniture, read_pdf_pages

    _, _, pdf, text_path = ingested["001"]
    pages = read_pdf_pages(pdf, pdf.read_bytes())
    drop_furniture(pages)
    splits = [(a.items[-1], b.items[0]) for a, b in zip(pages, pages[1:])
              if a.items[-1].open_bottom and b.items[0].open_top]
    assert len(splits) >= 3
    lines = text_path.read_text(encoding="utf-8").split("\n")
    for first, rest in splits:
        head, tail = first.cells[-1].text, rest.cells[-1].text
        assert [line for line in lines if head in line and tail in line], head[:20]


def test_header_and_page_numbers_dropped(ingested) -> None:
    lines = ingested["001"][3].read_text(encoding="utf-8").split("\n")
    assert not [line for line in lines if re.fullmatch(r"-\s*\d+\s*-", line.strip())]
    assert lines.count("特定個人情報保護評価書(重点項目評価書)") == 1  # the cover's title, not every page's header
    assert lines[1] == "特定個人情報保護評価書(重点項目評価書)"


def test_index_reads_the_text_and_ignores_the_pdf(ingested) -> None:
    from qa.index import corpus_files as index_files

    corpus = ingested["001"][3].parent
    names = sorted(p.name for p in corpus.iterdir())
    assert names == sorted(f"report{n}{s}" for n in FORMS for s in (".pdf", ".pdf.txt"))
    assert [p.name for p in corpus_files(corpus)] == [p.name for p in index_files(corpus)]
    assert all(p.name.endswith(".pdf.txt") for p in corpus_files(corpus))
    loaded = load_corpus(corpus)
    assert not loaded.skipped and sorted(c.id for c in loaded.cards) == [f"report{n}.pdf" for n in FORMS]


def test_existing_name_refused_and_kept(ingested, tmp_path: Path) -> None:
    _, _, pdf, text_path = ingested["002"]
    before = text_path.read_bytes()
    with pytest.raises(CorpusFileError, match="already exists"):
        ingest_pdf(pdf, text_path.parent)
    assert text_path.read_bytes() == before
    named = ingest_pdf(pdf, tmp_path, name="toyonaka")
    assert named.name == "toyonaka.pdf.txt" and (tmp_path / "toyonaka.pdf").read_bytes() == pdf.read_bytes()
    with pytest.raises(CorpusFileError):
        ingest_pdf(pdf, tmp_path, name="../outside")


def _scan_pdf(path: Path) -> None:
    """A page that is only a picture of text, as a scanner makes it."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    image = Image.new("L", (800, 1100), 255)
    draw = ImageDraw.Draw(image)
    for y in range(80, 1000, 40):
        draw.rectangle((60, y, 740, y + 2), fill=0)
        draw.text((70, y + 10), "scanned page", fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    canvas = Canvas(str(path), pagesize=A4)
    for _ in range(2):
        canvas.drawImage(ImageReader(io.BytesIO(buffer.getvalue())), 0, 0, width=A4[0], height=A4[1])
        canvas.showPage()
    canvas.save()


def test_scanned_pdf_refused_nothing_written(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    _scan_pdf(scan)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with pytest.raises(CorpusFileError) as err:
        ingest_pdf(scan, corpus)
    message = str(err.value)
    assert "OCR" in message and "スキャン" in message and "no text layer" in message and "2 image(s)" in message
    assert list(corpus.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "garbled", "not a pdf"])
def test_damaged_pdf_refused_nothing_written(ingested, tmp_path: Path, damage: str) -> None:
    data = ingested["001"][2].read_bytes()
    broken = tmp_path / "broken.pdf"
    if damage == "truncated":
        broken.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "garbled":  # header and end kept, the objects in between overwritten
        broken.write_bytes(data[:200] + bytes(range(256)) * ((len(data) - 1200) // 256) + data[-1000:])
    else:
        broken.write_bytes("特定個人情報保護評価書".encode() * 50)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with pytest.raises(CorpusFileError) as err:
        ingest_pdf(broken, corpus)
    message = str(err.value)
    assert message.startswith("broken.pdf: ") and ("damaged" in message or "not a PDF" in message)
    assert "PDF" in message.split("/")[0]  # the Japanese half leads
    assert list(corpus.iterdir()) == []


def test_pdf_that_is_not_a_report_refused(tmp_path: Path) -> None:
    from reportlab.pdfgen.canvas import Canvas

    letter = tmp_path / "letter.pdf"
    canvas = Canvas(str(letter))
    canvas.drawString(72, 720, "Dear reader, this PDF is a letter and not a privacy impact assessment.")
    canvas.save()
    assert "Dear reader" in extract_pdf(letter)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with pytest.raises(CorpusFileError, match="not a 評価書"):
        ingest_pdf(letter, corpus)
    assert list(corpus.iterdir()) == []


def test_encrypted_pdf_refused(tmp_path: Path) -> None:
    from reportlab.lib import pdfencrypt
    from reportlab.pdfgen.canvas import Canvas

    locked = tmp_path / "locked.pdf"
    canvas = Canvas(str(locked), encrypt=pdfencrypt.StandardEncryption("secret", canPrint=0))
    canvas.drawString(72, 720, "a password is needed to open this file")
    canvas.save()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with pytest.raises(CorpusFileError, match="encrypted"):
        ingest_pdf(locked, corpus)
    assert list(corpus.iterdir()) == []
