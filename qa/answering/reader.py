"""The offline reader: route a question by what it asks, read the answer off the structure or the best passage,
and cite every part verbatim; say "not stated" when the evidence is absent or weak.

Routes, from the analysed `Question` (qa/question.py): the cover page (metadata), blocks (提供先, 委託事項 …: lists,
counts, one block by number or content), one field of the form, the change history, otherwise the passage that
retrieval ranks first in the report meant. Across reports (which report …, how many, the most …) each report is
read the same way and the answers are compared. The thresholds come from qa/data/weights.json (fitted).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from qa.answering.answer import Answer, Citation, Retrieved
from qa.answering.blocks import BlockReading
from qa.answering.evidence import MAX_EVIDENCE, MAX_LIST, NOT_STATED, Evidence, trim
from qa.answering.extract import date_key, extract, sentences, unfilled_date
from qa.answering.passages import PassageReading
from qa.answering.statements import best_statement, is_change_history
from qa.catalog import FieldSpec, catalog
from qa.chunking import clean_line
from qa.parsing.card import Card, Field, label_key
from qa.parsing.template import CHANGE_KIND
from qa.question import Question
from qa.reading import SourceText, normalize
from qa.retrieval import Hit, HybridSearcher

_META = {"number": "評価書番号", "published": "公表日", "evaluator": "評価実施機関名", "kind": "評価書の種類", "title": "評価書名"}


class Reader(BlockReading, PassageReading):
    def __init__(self, cards: dict[str, Card], source: Callable[[str], SourceText], searcher: HybridSearcher) -> None:
        self.cards = cards
        self.source = source
        self.searcher = searcher
        self.catalog = catalog()
        self.weights = searcher.weights
        self._idf = self._fit_idf()
        self._texts: dict[str, str] = {}
        self._record_terms: dict[tuple[int, int], set[str]] = {}
        # card id → (the card, its fields' lines, its fields by line): for the yes/no statements (statements.py)
        self.fields_by_line: dict[str, tuple[Card, list[int], list[tuple[int, object, Field]]]] = {}
        self._vocab = {w for f in self.catalog.fields for w in f.names} | {
            w for r in self.catalog.records for w in r.names
        }

    def _fit_idf(self) -> dict[str, float]:
        df: Counter[str] = Counter()
        n = 0
        for toks in self.searcher.index.tokens:
            df.update(set(toks))
            n += 1
        return {t: math.log(1 + n / (1 + c)) for t, c in df.items()}

    def hits_for(self, q: Question, card_id: str, k: int = 10) -> list[Hit]:
        """Retrieval within one report, for reading each report of a question across reports."""
        return self.searcher.search_query(self.searcher.query_for(q, q.vector, cards=(card_id,)), k)

    def terms(self, text: str) -> list[str]:
        return self.searcher.segmenter.tokens(text)

    # == entry ==========================================================================================
    def answer(self, q: Question, hits: list[Hit]) -> Answer:
        result = self._answer(q, hits)
        result.retrieved = [
            Retrieved(h.chunk.card, h.chunk.source, h.chunk.section, round(h.score, 5), h.chunk.verbatim or h.chunk.text,
                      h.chunk.line, h.chunk.end_line)
            for h in hits
        ]
        return result

    def _answer(self, q: Question, hits: list[Hit]) -> Answer:
        if q.unknown_place:
            return self.abstain(q, hits, f"「{q.unknown_place}」の評価書はこのコーパスにありません。",
                                f"There is no report from {q.unknown_place} in this corpus.")
        if len(q.cards) > 1 and (q.cross or (q.superlative and not q.record_numbers)):
            return self.cross(q, hits)
        card = self.pick_card(q, hits)
        if card is None:
            return self.abstain(q, hits, "該当する評価書が見つかりません。", "No matching report was found.")
        own = [h for h in hits if h.chunk.card == card.id]
        result = self.inexact(q, card, self.single(q, card, own))
        if q.follow_up and not result.abstained:
            result = self.with_follow_up(q, card, own, result)
        result.cards = [card.id]
        if not q.named and len(self.cards) > 1 and not result.abstained:
            result.answer = f"【{card.label}】{result.answer}"
        return result

    def with_follow_up(self, q: Question, card: Card, hits: list[Hit], first: Answer) -> Answer:
        """「…委託していますか。件数は？」: the yes or no, then the detail asked after it, each with its quotes."""
        detail_q = replace(q, yesno=False, answer_type=q.follow_up or "span", follow_up=None,
                           wants_list=q.wants_list or q.follow_up == "list")
        detail = self.inexact(detail_q, card, self.single(detail_q, card, hits))
        if detail.abstained or not detail.citations:
            return first
        shift = len(first.citations)
        body = re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) + shift}]", detail.answer)
        first.answer = f"{first.answer}\n{body}"
        first.citations = [*first.citations, *detail.citations]
        return first

    def off_the_reports(self, q: Question) -> bool:
        """Nothing the question asks about is in any report: it names no field, block or quoted text, and of
        its content words (in the reports' Japanese for an English question) none occurs in any unit, while
        some do not (明日の天気: not stated, rather than the nearest passage)."""
        if q.quoted or q.record is not None or q.changes or q.risks or q.record_numbers:
            return False
        if any(m.lexical > 0 for m in q.fields):
            return False
        terms = self.content_terms(q) | set(q.glossed)
        return bool(terms) and not any(t in self._idf for t in terms)

    def pick_card(self, q: Question, hits: list[Hit]) -> Card | None:
        if len(q.cards) == 1:
            return self.cards.get(q.cards[0])
        totals: Counter[str] = Counter()
        for h in hits[:5]:
            totals[h.chunk.card] += h.score
        best = totals.most_common(1)
        return self.cards.get(best[0][0]) if best else None

    # == one report =====================================================================================
    def single(self, q: Question, card: Card, hits: list[Hit]) -> Answer:
        route = self.weights["field_route"]
        spec = q.top_field.spec if q.top_field and q.top_field.score >= route else None
        if spec is not None and spec.meta:
            return self.metadata(q, card, spec, hits)
        if q.money and not any("円" in h.chunk.text for h in hits[:5]):
            return self.abstain(q, hits, f"「{q.money}」は評価書の様式にない事項で、該当する記載が見つかりません。",
                                f"The form records no amounts of money ({q.money}); nothing found.", card)
        if self.off_the_reports(q):
            return self.abstain(q, hits, "", "", card)
        annex = self.missing_annex(q, card)
        if annex:
            return self.abstain(q, hits, f"この評価書のファイルに「{annex}」は含まれていません。",
                                f"The report's file does not contain its 「{annex}」.", card)
        history = q.changes and self.about_changes(q, card, hits)
        if history:
            changed = self.changes(q, card)
            if changed is not None:
                return changed
        kind = self.block_kind(q, card, spec)
        if kind:
            result = self.records(q, card, kind, spec, hits)
            if result is not None:
                return result
        # A yes/no field answers yes/no questions; asked for details (what, when, how many) the passages do.
        if spec is not None and not spec.record and (spec.type != "yesno" or q.yesno):
            result = self.field(q, card, spec, hits)
            if result is not None:
                return result
        return self.passage(q, card, hits, history)

    def about_changes(self, q: Question, card: Card, hits: list[Hit]) -> bool:
        """Whether a question with a word of change (削除され, 追加, 変更) asks about the change history: its
        best row must be about as close to the question as the best passage of the current text. 「連携後
        いつ削除されるか」 asks about the current 消去 procedure, and the current text answers it better."""
        margin = self.weights.get("change_margin", 0.005)
        if margin < 0:
            return True
        query = self.searcher.query_for(q, q.vector, cards=(card.id,))
        query.only_kind = CHANGE_KIND
        rows = self.searcher.search_query(query, 1)
        if not rows:
            return False
        current = max((h.dense for h in hits if not is_change_history(h)), default=0.0)
        return rows[0].dense >= current - margin

    def change_values(self, q: Question) -> tuple[str | None, str | None]:
        """What the question says something became, and what it was: the run of words before a marker."""
        def before(markers: tuple[str, ...]) -> str | None:
            for marker in markers:
                pos = q.norm.find(marker)
                if pos > 0:
                    m = re.search(r"[「『]?([一-龥々ァ-ヴーA-Za-z0-9・()、,]{2,40}?)[」』]?$", q.norm[:pos])
                    if m:
                        value = re.sub(r"^.*[がはをの]", "", m.group(1)) or m.group(1)
                        return value if len(value) >= 2 else None
            return None

        return before(self.catalog.change_to), before(self.catalog.change_from)

    def missing_annex(self, q: Question, card: Card) -> str | None:
        """An annex (別紙N / 別添N) the question asks about that the report's file does not hold as a part."""
        for m in re.finditer(r"(別紙|別添)\s*(\d+)", q.norm):
            name = f"{m.group(1)}{m.group(2)}"
            if not any(re.search(rf"{m.group(1)}\s*{m.group(2)}(?!\d)", s.title) for s in card.walk()):
                return name
        return None

    def block_kind(self, q: Question, card: Card, spec: FieldSpec | None) -> str | None:
        """The blocks to read: those the asked field belongs to; or those the question names, when it asks for
        blocks (a list, a count, one by number, whether one exists) or for a field the blocks hold."""
        if spec is not None and spec.record and spec.record != CHANGE_KIND:
            return spec.record
        if q.record is None or q.record.kind == CHANGE_KIND:
            return None
        kind = q.record.kind
        if q.wants_list or q.record_numbers or q.yesno or q.answer_type in ("number", "list", "organisation"):
            return kind
        if spec is not None and any(self.field_of(r, spec) for r in card.records(kind)):
            return kind
        return None

    def metadata(self, q: Question, card: Card, spec: FieldSpec, hits: list[Hit]) -> Answer:
        value = getattr(card, spec.meta or "", None)
        label = _META.get(spec.meta or "", spec.label)
        if not value:
            return self.abstain(q, hits, f"この評価書には{label}の記載がありません（表紙がないか、空欄です）。",
                                f"The report does not state its {label} (no cover page, or left blank).", card)
        ev = self.locate(card, value, 1, max(40, min((s.line for s in card.sections), default=40)), "表紙", label)
        return self.compose(q, card, [ev], short=value, kind=spec.type)

    # -- one field ---------------------------------------------------------------------------------------
    def instances(self, card: Card, spec: FieldSpec) -> list[tuple[str, Field]]:
        keys = {label_key(x) for x in spec.labels}
        found = []
        for owner, f in card.fields():
            if getattr(owner, "kind", None) == CHANGE_KIND:
                continue
            if f.key in keys or any(k in f.key for k in keys if len(k) >= 4):
                crumb = owner.breadcrumb
                if spec.section and spec.section not in crumb and spec.section not in (f.group or ""):
                    continue
                found.append((crumb, f))
        return found

    def field(self, q: Question, card: Card, spec: FieldSpec, hits: list[Hit]) -> Answer | None:
        picked = self.pick_field(q, card, spec, hits)
        if isinstance(picked, Answer) or picked is None:
            return picked
        crumb, f = picked
        parts = [Evidence(self.value_text(f), crumb, f.label, f.line, f.end_line)]
        if spec.type == "date" and not q.yesno and unfilled_date(parts[0].text):
            shown = parts[0].text
            return self.abstain(q, hits, f"「{f.label}」は日付が記入されていません（「{shown}」のまま）。",
                                f"「{f.label}」 gives no date: the form reads 「{shown}」.", card, parts[0])
        if q.answer_type in ("date", "duration", "frequency", "number") and not self.short_of(q, parts[0].text):
            return None  # the field holds no value of the asked kind (a choice, not its period): read the passages
        if q.yesno:
            return self.polarity(q, card, parts, hits)
        # A question may ask for two fields at once (the department and its head's title).
        second = next((m for m in q.fields[1:3] if m.score >= self.weights["field_route"] and m.score >= q.fields[0].score * 0.85
                       and m.spec.label != spec.label and not m.spec.record and not m.spec.meta), None)
        if second is not None:
            other = self.pick_field(q, card, second.spec, hits)
            if isinstance(other, tuple) and other[1] is not f:
                parts.append(Evidence(self.value_text(other[1]), other[0], other[1].label, other[1].line, other[1].end_line))
        value = parts[0].text
        short = self.short_of(q, value)
        if spec.type == "yesno":
            short = f"{self.yes_word(q, self.is_positive(normalize(value)))}（{value}）"
        return self.compose(q, card, parts, short=short, kind=spec.type)

    def pick_field(self, q: Question, card: Card, spec: FieldSpec, hits: list[Hit]) -> tuple[str, Field] | Answer | None:
        """The instance of `spec` in the card that retrieval ranks highest; an abstention when the form's part
        is absent from the report or left blank; None to read the passages instead."""
        found = self.instances(card, spec)
        strong = q.top_field is not None and q.top_field.lexical >= 0.99
        if not found:
            if strong and not self.mentions(card, spec):
                return self.abstain(q, hits, f"この評価書には「{spec.label}」の記載がありません。",
                                    f"The report has no 「{spec.label}」.", card)
            return None
        rank = {h.chunk.line: i for i, h in reversed(list(enumerate(hits)))}

        def order(item: tuple[str, Field]) -> int:
            f = item[1]
            near = [i for line, i in rank.items() if f.line <= line <= f.end_line or line <= f.line <= line + 3]
            return min(near) if near else 99

        found.sort(key=order)
        named = any(label_key(x) in q.norm for x in spec.labels if len(label_key(x)) >= 2)
        if not named and order(found[0]) == 99:
            return None  # neither named by its label nor found by retrieval: the passages decide
        filled = [(c, f) for c, f in found if not f.empty]
        if not filled:
            if card.layout == "layout":
                return None  # the value may stand elsewhere in a scrambled extraction: read the passages
            if q.yesno:  # an optional part of the form left blank: it was not done
                word = self.yes_word(q, False)
                why = f"「{spec.label}」は空欄です" if not q.english else f"「{spec.label}」 is left blank"
                crumb, f = found[0]
                cite = self.cite(card, Evidence(f.label, crumb, f.label, f.line, f.end_line))
                return Answer(q.text, f"{word}（{why}） [1]", False, [cite], kind="yesno")
            return self.abstain(q, hits, f"「{spec.label}」は空欄です。", f"「{spec.label}」 is left blank.", card)
        return filled[0]

    def mentions(self, card: Card, spec: FieldSpec) -> bool:
        """Whether the report's text names the field at all (its parse may have missed it)."""
        text = self.card_text(card.id)
        return any(label_key(x) in text for x in spec.labels if len(label_key(x)) >= 3)

    @staticmethod
    def value_text(f: Field) -> str:
        if f.selected:
            return "・".join(f.selected)
        return clean_line(f.value.replace("\n", " "))

    # -- change history ----------------------------------------------------------------------------------
    def changes(self, q: Question, card: Card) -> Answer | None:
        query = self.searcher.query_for(q, q.vector, cards=(card.id,))
        query.only_kind = CHANGE_KIND
        rows = self.searcher.search_query(query, 20)
        if not rows:
            return None
        terms = self.content_terms(q)
        became, was = self.change_values(q)
        before_label, after_label = self.catalog.change_columns
        # A block the question names by number (システム6, 提供先29) is named so in the row's 項目 too.
        blocks = [re.sub(r"\s+", "", m.group(0)) for m in re.finditer(
            r"(?:" + "|".join(map(re.escape, self.catalog.record_kinds)) + r")\s*\d{1,3}(?!\d)", q.norm)]
        if terms or became or was or blocks:
            # The row that names what the question names; a value the question says something became (or was)
            # must stand in that row's after (or before) column.
            def named(h: Hit) -> float:
                text = normalize(h.chunk.text)
                score = sum(self._idf.get(t, 1.0) for t in terms if t in text)
                columns = {line.split(":", 1)[0].strip(): line.split(":", 1)[1] for line in text.split("\n") if ":" in line}
                if became and became in columns.get(after_label, ""):
                    score += 100
                if was and was in columns.get(before_label, ""):
                    score += 100
                flat = re.sub(r"\s+", "", text)
                score += sum(10.0 for b in blocks if re.search(re.escape(b) + r"(?!\d)", flat))
                return score
            scored = [named(h) for h in rows]
            first = any(c in q.norm.lower() for c in self.catalog.change_first)

            def when(i: int) -> tuple[int, int, int]:  # asked when something began: the earliest of a tie
                return date_key(rows[i].chunk.text) if first else (0, 0, 0)

            order = sorted(range(len(rows)), key=lambda i: (-scored[i], when(i), i))
            rows = [rows[i] for i in order]
        top = rows[0].chunk
        parts = [Evidence(top.text.replace("\n", " / "), top.section, top.label, top.line, top.end_line)]
        if len(rows) > 1 and rows[1].score >= rows[0].score * 0.9:
            nxt = rows[1].chunk
            parts.append(Evidence(nxt.text.replace("\n", " / "), nxt.section, nxt.label, nxt.line, nxt.end_line))
        short = None
        row = next((r for r in card.records(CHANGE_KIND) if r.number == top.record_number), None) \
            if top.record_kind == CHANGE_KIND else None
        if q.answer_type == "date":
            dates = extract(top.text, "date")
            short = dates[0] if dates else None
        elif q.answer_type == "reason" and row is not None:  # why it changed: the row's column saying so
            reason = row.get(self.catalog.change_reason)
            if reason is not None and reason.value.strip():
                short = clean_line(reason.value)
                parts = [Evidence(short, top.section, reason.label, reason.line, reason.end_line)]
        if short and row is not None:
            # A date or a reason answers; the row is named by what it changed, not quoted whole.
            item = row.get("項目")
            if item is not None and item.value.strip():
                parts = [p for p in parts if p.text == short] + [
                    Evidence(trim(clean_line(item.value), 120), top.section, item.label, item.line, item.end_line)]
        return self.compose(q, card, parts, short=short, kind="span")

    def inexact(self, q: Question, card: Card, answer: Answer) -> Answer:
        """An exact count asked for, and the evidence only gives a range: say so instead of answering."""
        if not q.exact or answer.abstained or not re.search(r"以上|未満|程度|約", answer.answer.split("\n")[0]):
            return answer
        shown = answer.answer.split("\n")[0]
        return self.abstain(q, [], f"正確な数は記載されていません（評価書の記載は区分のみ: {shown}）。",
                            f"No exact number is stated; the report gives a range only ({shown}).", card)

    def short_of(self, q: Question, text: str) -> str | None:
        """The value of the asked type in `text`, when the question asks for one (a date, a period, a count)."""
        kind = q.answer_type
        if kind in ("date", "duration", "frequency", "number", "contact"):
            values = extract(text, kind)
            if not values and kind == "number":
                values = extract(text, "range")
            return "、".join(dict.fromkeys(values)) if values else None
        return None

    # -- yes / no ----------------------------------------------------------------------------------------
    def polarity(self, q: Question, card: Card, parts: list[Evidence], hits: list[Hit] | None = None) -> Answer:
        """Yes or no, read off the evidence. A statement elsewhere in the evidence may say it more exactly:
        「実施する」 answers whether 情報連携 is done at all, while 「なし(…情報提供は行わない)」 beside it answers
        whether information is *provided*. Of the statements that say yes or no (a chosen option, an option
        left unchosen, read as its opposite, a sentence with a word of polarity) the one holding most of what
        the question singles out decides; the first evidence keeps ties."""
        text = normalize(parts[0].text)
        yes = self.is_positive(text)
        if hits:
            better = best_statement(self, q, card, parts[0], hits)
            if better is not None:
                yes, ev = better
                if ev.line != parts[0].line or ev.text != parts[0].text:
                    parts = [ev, *parts[:1]]
        return self.compose(q, card, parts, short=self.yes_word(q, yes), kind="yesno")

    def is_positive(self, text: str) -> bool:
        negatives = sorted(self.catalog.yesno.get("negative", ()), key=len, reverse=True)  # type: ignore[arg-type]
        positives = sorted(self.catalog.yesno.get("positive", ()), key=len, reverse=True)  # type: ignore[arg-type]
        neg = min((text.find(w) for w in negatives if w in text), default=-1)
        pos = min((text.find(w) for w in positives if w in text), default=-1)
        if neg >= 0 and (pos < 0 or neg <= pos):
            return False
        return True

    def yes_word(self, q: Question, yes: bool) -> str:
        key = ("yes_" if yes else "no_") + ("en" if q.english else "ja")
        return str(self.catalog.yesno.get(key, "yes" if yes else "no"))

    # == across reports =================================================================================
    def cross(self, q: Question, hits: list[Hit]) -> Answer:
        from qa.answering.cross import answer_across

        return answer_across(self, q, hits)

    # == composing ======================================================================================
    def locate(self, card: Card, text: str, first: int, last: int, section: str, label: str) -> Evidence:
        return Evidence(text, section, label, first, last)

    def cite(self, card: Card, ev: Evidence) -> Citation:
        """A verbatim quote for `ev`: its text found in the file within its lines, else the best piece of it."""
        source = self.source(card.id)
        first, last = ev.line, max(ev.end_line, ev.line)
        needle = normalize(ev.text)
        candidates = [needle[:100]] + sorted((p for p in re.split(r"[\s、。・/]+", needle) if len(p) >= 3), key=len, reverse=True)
        for piece in candidates:
            piece = piece.strip()
            if len(piece) < 2:
                continue
            found = source.find_quote(piece, first, last)
            if found is not None:
                line, quote = found
                quote = quote.strip() or quote
                return Citation(card.id, card.label, card.source, ev.section, quote, line, ev.label, line + quote.count("\n"))
        for n in range(first, min(last, source.line_count) + 1):
            raw = source.raw_line(n).strip()
            if raw:
                return Citation(card.id, card.label, card.source, ev.section, raw[:120], n, ev.label, n)
        return Citation(card.id, card.label, card.source, ev.section, source.raw_line(first).strip() or card.id, first, ev.label, first)

    def compose(
        self, q: Question, card: Card, parts: list[Evidence], short: str | None, kind: str, listing: bool = False
    ) -> Answer:
        citations = [self.cite(card, ev) for ev in parts[:MAX_LIST]]
        if listing:
            body = trim(short or "", 1200)
        else:
            evidence = " / ".join(trim(ev.text, MAX_EVIDENCE) for ev in parts)
            body = evidence if not short or short in evidence and len(evidence) < 60 else f"{short}\n{evidence}"
        marks = "".join(f"[{i + 1}]" for i in range(min(len(citations), 3)))
        if q.english:
            body = f"According to {card.label}: {body}"
        return Answer(q.text, f"{body} {marks}".strip(), False, citations, kind=kind)

    def abstain(self, q: Question, hits: list[Hit], reason_ja: str, reason_en: str, card: Card | None = None,
                evidence: Evidence | None = None) -> Answer:
        """Not stated, and why; `evidence`: the line that shows it (a field left as a template), cited."""
        lang = "en" if q.english else "ja"
        reason = reason_en if q.english else reason_ja
        where = f"（{card.label}）" if card is not None and not q.english else (f" ({card.label})" if card else "")
        text = f"{NOT_STATED[lang]}{where} {reason}".strip()
        cited = [self.cite(card, evidence)] if evidence is not None and card is not None else []
        if cited:
            text += " [1]"
        near = [h for h in hits if card is None or h.chunk.card == card.id][:3]
        if near:
            text += ("\n近い記載: " if lang == "ja" else "\nNearest passages: ") + " / ".join(
                f"{h.chunk.section} {h.chunk.line}行" if lang == "ja" else f"{h.chunk.section} line {h.chunk.line}" for h in near
            )
        return Answer(q.text, text, True, cited, cards=[card.id] if card else [], kind="abstain")


__all__ = ["Evidence", "NOT_STATED", "Reader", "sentences"]
