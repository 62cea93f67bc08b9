"""Reports → `Card`s. `parse_card` picks the format's parser; `load_corpus` reads a folder, skipping bad files."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusFileError
from qa.parsing import template as tpl
from qa.parsing.card import Card, Field, Record, Section, label_key
from qa.parsing.pdf_text import parse_layout_text
from qa.parsing.structured import parse_structured
from qa.parsing.template import CHANGE_KIND
from qa.reading import SourceText, outside_folder, read_source

__all__ = [
    "Card",
    "Corpus",
    "Field",
    "Record",
    "Section",
    "label_key",
    "load_corpus",
    "parse_card",
    "parse_file",
]

log = logging.getLogger(__name__)
CORPUS_SUFFIXES = (".txt", ".md", ".tsv", ".html", ".htm")
_MIN_BODY_LINES = 5


def parse_card(source: SourceText, card_id: str | None = None, relative_to: Path | None = None) -> Card:
    """The structured reading of one report. Raises CorpusFileError when the text is not a report."""
    path = source.path
    try:
        rel = path.resolve().relative_to(relative_to.resolve()) if relative_to else path
    except ValueError:
        rel = path
    card = Card(id=card_id or path.stem, source=rel.as_posix())
    _read_metadata(card, source)
    table_rows = sum(1 for line in source.norm_lines if "\t" in line or line.lstrip().startswith("|"))
    if table_rows >= 20:
        card.layout = "table"
        parse_structured(card, source)
    else:
        card.layout = "layout"
        parse_layout_text(card, source)
        _rehome_fields(card)
    _reconcile_choices(card)
    if not card.affair:
        card.affair = _affair_of(card)
    if sum(1 for _ in card.walk()) == 0 or not any(True for _ in card.fields()):
        raise CorpusFileError(path, "no section of the national template found: not a 評価書; skipped")
    if not any(CHANGE_KIND in s.title for s in card.sections):
        # Every report ends with its change history; without it the file was probably cut short.
        card.warnings.append("no (別添) 変更箇所 section: the file may be incomplete (cut short)")
    return card


def parse_file(path: Path | str, relative_to: Path | None = None) -> Card:
    return parse_card(read_source(path), relative_to=relative_to)


@dataclass
class Corpus:
    """The cards of a folder, and what was skipped and why (never silently)."""

    cards: list[Card] = field(default_factory=list)
    skipped: list[CorpusFileError] = field(default_factory=list)

    def get(self, card_id: str) -> Card:
        from qa.errors import CardNotFoundError

        matches = [c for c in self.cards if c.id == card_id] or [
            c for c in self.cards if c.id.startswith(card_id)
        ]
        if len(matches) != 1:
            known = ", ".join(c.id for c in self.cards)
            raise CardNotFoundError(f"no single card matches {card_id!r}; known cards: {known}")
        return matches[0]


def corpus_files(folder: Path) -> list[Path]:
    """The report files of a folder. A dangling link is listed too, so that it is reported, not ignored."""
    return sorted(
        p
        for p in folder.iterdir()
        if (p.is_file() or (p.is_symlink() and not p.exists())) and p.suffix.lower() in CORPUS_SUFFIXES
    )


def load_corpus(folder: Path | str, paths: Iterable[Path] | None = None, root: Path | None = None) -> Corpus:
    """Parse every report in `folder`; a bad file is logged by name and skipped, the others still load."""
    folder = Path(folder)
    corpus = Corpus()
    for path in paths if paths is not None else corpus_files(folder):
        target = outside_folder(Path(path), folder) if paths is None else None
        if target is not None:
            error = CorpusFileError(path, f"a link to {target}, outside the corpus folder {folder}; refused")
            log.warning("skipped %s", error)
            corpus.skipped.append(error)
            continue
        try:
            card = parse_file(path, relative_to=root)
        except CorpusFileError as exc:
            log.warning("skipped %s", exc)
            corpus.skipped.append(exc)
            continue
        except Exception as exc:  # a parser bug on one odd file must not stop the other cards
            error = CorpusFileError(path, f"could not be parsed ({type(exc).__name__}: {exc}); skipped")
            log.warning("skipped %s", error, exc_info=log.isEnabledFor(logging.DEBUG))
            corpus.skipped.append(error)
            continue
        for warning in card.warnings:
            log.info("%s: %s", Path(path).name, warning)
        corpus.cards.append(card)
    return corpus


# -- metadata ----------------------------------------------------------------------------------------


def _next_value(lines: list[str], start: int, limit: int = 6) -> tuple[int, str] | None:
    for j in range(start + 1, min(start + 1 + limit, len(lines))):
        text = lines[j].strip().strip("|").strip().lstrip("#").strip()
        if text and not re.fullmatch(r"[-|\s]+", text):
            return j, text
    return None


def _cells(text: str) -> list[str]:
    sep = "|" if "|" in text else "\t"
    return [c.strip() for c in text.strip().strip("|").split(sep) if c.strip()]


def _read_metadata(card: Card, source: SourceText) -> None:
    lines = source.norm_lines
    head = lines[: min(len(lines), 200)]
    declaration_at = None
    for i, raw in enumerate(head):
        text = raw.strip().lstrip("#").strip()
        if card.kind is None and text.startswith("特定個人情報保護評価書"):
            card.kind = tpl.kind_of(text)
        cells = _cells(text)
        if cells[:2] == ["評価書番号", "評価書名"] and card.number is None:
            nxt = _next_value(lines, i)
            if nxt:
                values = _cells(nxt[1])
                if len(values) >= 2 and re.fullmatch(r"\d+", values[0]):
                    card.number, card.title = values[0], " ".join(values[1:])
        elif cells[:1] == ["評価実施機関名"] and card.evaluator is None:
            # The value follows on a later line, or in the next cell of the same row.
            nxt = (i, cells[1]) if len(cells) > 1 else _next_value(lines, i)
            if nxt and not nxt[1].startswith(("公表日", "個人情報保護委員会", "項目一覧")):
                card.evaluator = nxt[1]
        elif cells[:1] == ["公表日"] and card.published is None:
            nxt = (i, cells[1]) if len(cells) > 1 else _next_value(lines, i, limit=2)
            # 003 prints the form's version here ("[平成30年5月 様式4]"), which is not a publication date.
            if nxt and "様式" not in nxt[1]:
                date = tpl.date_in(nxt[1])
                card.published = date if date and date.endswith("日") else None
        elif text.startswith("個人のプライバシー等の権利利益の保護の宣言") and declaration_at is None:
            declaration_at = i
            nxt = _next_value(lines, i)
            if nxt:
                card.municipality = tpl.municipality_of(nxt[1])
    if card.title is None and declaration_at:
        # 004 has no cover page; its title is the text above the declaration, wrapped mid-word.
        title = "".join(line.strip() for line in lines[:declaration_at] if line.strip())
        title = re.sub(r"\s+", " ", title).strip()
        card.title = title or None
    if card.kind is None and card.title:
        card.kind = tpl.kind_of(card.title)


def _affair_of(card: Card) -> str | None:
    for _, f in card.fields():
        if f.key == "事務の名称" and not f.empty:
            return f.value.split("\n")[0]
    if card.title and card.kind and card.title.endswith(card.kind):
        return card.title[: -len(card.kind)].strip() or None
    return None


def _rehome_fields(card: Card) -> None:
    """In a PDF-to-text extraction a label often lands just before the heading of its own section (its column was
    read first): 「法令上の根拠」 of 4. 個人番号の利用 under 3. 特定個人情報ファイル名. A field whose label the
    template places only in sections of another name, and whose section one or two places away has that name, moves
    there, the nearest first (its lines stay where they are; its new section's range widens to hold them)."""
    homes = tpl.catalog().label_homes
    for parent in card.walk():
        siblings = parent.children
        for i, section in enumerate(siblings):
            for f in list(section.fields):
                words = homes.get(label_key(f.label))
                if not words or any(w in section.title for w in words):
                    continue
                for j in (i + 1, i - 1, i + 2, i - 2):
                    if 0 <= j < len(siblings) and any(w in siblings[j].title for w in words):
                        home = siblings[j]
                        section.fields.remove(f)
                        home.fields.append(f)
                        home.fields.sort(key=lambda x: x.line)
                        home.line, home.end_line = min(home.line, f.line), max(home.end_line, f.end_line)
                        break


def _reconcile_choices(card: Card) -> None:
    """Trust a checkbox only where it agrees with the form's own options for that label.

    The converters shifted some `checked` boxes into the next row (003: 「再委託しない」 ticked under
    ②取扱いを委託する…範囲). Options listed after <選択肢> for the same label elsewhere in the card tell
    which ticks can belong to the field.
    """
    vocab: dict[str, set[str]] = {}
    for _, f in card.fields():
        if f.options and f.value and "選択肢" in f.value or (f.options and f.selected and f.value.startswith("[")):
            vocab.setdefault(f.key, set()).update(o.replace(" ", "") for o in f.options)
    for _, f in card.fields():
        known = vocab.get(f.key)
        if not known or not f.selected:
            continue
        kept = [s for s in f.selected if s.replace(" ", "") in known]
        if not kept:
            valid = [o for o in f.options if o.replace(" ", "") in known]
            kept = valid if len(valid) == 1 else []
        f.selected = kept or None
