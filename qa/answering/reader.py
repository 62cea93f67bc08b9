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
from dataclasses import dataclass, replace

from qa.answering.answer import Answer, Citation, Retrieved
from qa.answering.extract import NOUN, TYPED_ANSWERS, date_key, extract, number_key, sentences, typed_values
from qa.answering.statements import best_statement, is_change_history
from qa.catalog import FieldSpec, catalog
from qa.chunking import clean_line, heading_class
from qa.parsing.card import SEP, Card, Field, Record, label_key
from qa.question import Question
from qa.reading import SourceText, normalize
from qa.retrieval import Hit, HybridSearcher
from qa.parsing.template import CHANGE_KIND

NOT_STATED = {"ja": "評価書に記載が見つかりません。", "en": "Not stated in the report."}
MAX_EVIDENCE = 240
MAX_LIST = 40
_META = {"number": "評価書番号", "published": "公表日", "evaluator": "評価実施機関名", "kind": "評価書の種類", "title": "評価書名"}


@dataclass
class Evidence:
    """One part of an answer: the text shown, and where it stands in the card."""

    text: str
    section: str
    label: str
    line: int
    end_line: int
    strength: float = 0.0


class Reader:
    def __init__(self, cards: dict[str, Card], source: Callable[[str], SourceText], searcher: HybridSearcher) -> None:
        self.cards = cards
        self.source = source
        self.searcher = searcher
        self.catalog = catalog()
        self.weights = searcher.weights
        self._idf = self._fit_idf()
        self._texts: dict[str, str] = {}
        self._record_terms: dict[tuple[int, int], set[str]] = {}
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

    # -- blocks -----------------------------------------------------------------------------------------
    def records(self, q: Question, card: Card, kind: str, spec: FieldSpec | None, hits: list[Hit]) -> Answer | None:
        all_records = [r for r in card.records(kind) if any(not f.empty for f in r.fields) or r.name]
        if q.record_numbers:
            chosen = [r for r in all_records if r.number in q.record_numbers]
            if not chosen:
                numbers = "、".join(f"{kind}{n}" for n in q.record_numbers)
                return self.abstain(q, hits, f"この評価書に{numbers}の記載はありません。", f"The report has no {numbers}.", card)
            return self.from_records(q, card, chosen, kind, spec, hits)
        if not all_records:
            if spec is not None and spec.type == "yesno":
                return None
            return self.abstain(q, hits, f"この評価書には{kind}の記載がありません。", f"The report lists no {kind}.", card)
        chosen, narrowed = self.narrow(q, all_records)
        if not q.wants_list and q.answer_type not in ("list", "number") and self.unexplained(q, all_records) \
                and not (narrowed and self.strongly_named(q, chosen)):
            return None  # about something the blocks do not hold (blocks singled out by common words do not count)
        if q.answer_type == "number" and not narrowed:
            return self.count(q, card, kind, all_records)
        if q.yesno:
            # The question's longest name (社会福祉協議会) must stand in a block: sharing parts (福祉) is not being it.
            name = self.longest_name(q)
            if name and not any(name in normalize(" ".join([r.name or "", *(f.value for f in r.fields)])) for r in all_records):
                return self.presence(q, card, kind, [], True)
        holds_spec = spec is not None and any(self.field_of(r, spec) for r in chosen)
        if q.yesno and not holds_spec:
            if spec is not None and spec.record == kind:
                return None  # the blocks lack the asked field (a scrambled extraction): read the passages
            # Whether such a block exists (one the question singles out, or any at all).
            return self.presence(q, card, kind, chosen if narrowed else all_records, narrowed)
        return self.from_records(q, card, chosen, kind, spec if holds_spec else None, hits)

    def narrow(self, q: Question, records: list[Record]) -> tuple[list[Record], bool]:
        """The blocks the question singles out by their content (a recipient's name, a kind of work): nouns of
        the question that only some blocks hold (at most half of them), weighted by rarity."""
        # A block the question calls by its name (団体内統合宛名システム, a recipient's name) is the one meant.
        rspec = self.catalog.record(records[0].kind) if records else None
        names = [normalize(self.record_name(r, rspec.name_fields if rspec else ())) for r in records]
        called = [r for r, n in zip(records, names) if len(n) >= 4 and n in q.norm]
        if called and len(called) < len(records):
            return called, True
        toks = [self.record_terms(r) for r in records]
        q_terms = self.content_terms(q)
        spread = Counter(t for tt in toks for t in (q_terms & tt))
        rare = {t for t, n in spread.items() if n <= max(1, len(records) // 2)}
        scores = [sum(self._idf.get(x, 1.0) for x in (rare & t)) for t in toks]
        best = max(scores, default=0.0)
        if best < self.weights.get("narrow_min", 3.0):
            return records, False
        keep = 0.5 if q.wants_list else 0.8
        chosen = [r for r, s in zip(records, scores) if s >= best * keep]
        return chosen, len(chosen) < len(records)

    def longest_name(self, q: Question) -> str | None:
        """The question's longest run of a name (4+ characters) once the form's and the reports' names are cut."""
        low = q.norm
        cut = sorted({w for w in self._vocab if len(w) >= 2 and w in low} | {w for w in q.identity if len(w) >= 2 and w in low},
                     key=len, reverse=True)
        for w in cut:
            low = low.replace(w, " ")
        runs = re.findall(r"[一-龥々ァ-ヴーA-Za-z0-9・]{4,}", low)
        # Words every report uses (特定個人情報ファイル) are the form's, not names of something.
        runs = [r for r in runs if not all(r in self.card_text(c) for c in self.cards)]
        return max(runs, key=len) if runs else None

    def card_text(self, card_id: str) -> str:
        text = self._texts.get(card_id)
        if text is None:
            text = self._texts[card_id] = "".join(self.source(card_id).norm_lines)
        return text

    def content_terms(self, q: Question) -> set[str]:
        """Nouns of the question that are neither the form's vocabulary nor (part of) the report's own name:
        the names of the form and of the reports are cut out of the question before it is segmented, so the
        parts of 記録項目 or of 児童手当 do not single out a block."""
        low = q.norm.lower()
        cut = sorted({w for w in self._vocab if len(w) >= 2 and w.lower() in low}
                     | {w.lower() for w in q.identity if len(w) >= 2 and w.lower() in low}, key=len, reverse=True)
        for w in cut:
            low = low.replace(w.lower(), " ")
        return {t for t in self.terms(low) if NOUN.fullmatch(t) and t.lower() not in self._vocab}

    def from_records(
        self, q: Question, card: Card, records: list[Record], kind: str, spec: FieldSpec | None, hits: list[Hit]
    ) -> Answer:
        rspec = self.catalog.record(kind)
        # The field asked about inside each block; none when the question asks for the blocks themselves.
        sub = spec if spec is not None and label_key(spec.label) != kind else None
        if sub is None:
            sub = self.block_field(q, records, kind)
        if sub is None and rspec is not None and rspec.who_field and q.answer_type in ("organisation", "list") and not q.record_numbers:
            sub = self.catalog.field(rspec.who_field)
        parts: list[Evidence] = []
        values: list[str] = []
        if sub is not None and not any(self.field_of(r, sub) for r in records):
            loose = self.section_fields(card, records, sub)
            if loose:  # a scrambled extraction left the blocks' fields at section level: read them there
                return self.compose(q, card, loose, short=None if len(loose) > 1 else self.short_of(q, loose[0].text),
                                    kind="list" if len(loose) > 1 else q.answer_type)
        for r in records[:MAX_LIST]:
            f = self.field_of(r, sub) if sub is not None else None
            if f is not None and not f.empty:
                value = self.value_text(f)
                parts.append(Evidence(value, r.breadcrumb, f.label, f.line, f.end_line))
            else:
                value = self.record_name(r, rspec.name_fields if rspec else ())
                parts.append(Evidence(value, r.breadcrumb, "", r.line, r.end_line))
            values.append(value)
        if q.yesno:
            return self.polarity(q, card, parts)
        # A value that is only the marks of a checkbox (a scrambled extraction's 「[ ○ [」) names nothing.
        distinct = list(dict.fromkeys(v for v in values if v and re.search(r"[^\W\d_]", re.sub(r"[\[\]()○◯ ]", "", v))))
        if len(records) == 1:
            short = distinct[0] if distinct else None
            return self.compose(q, card, parts[:1], short=self.short_of(q, short or "") or short, kind=q.answer_type)
        joiner = "; " if q.english else "、"
        text = joiner.join(distinct)
        head = f"{kind} {len(records)} blocks: " if q.english else f"{kind}（{len(records)}件）: "
        return self.compose(q, card, parts, short=head + text, kind="list", listing=True)

    def block_field(self, q: Question, records: list[Record], kind: str) -> FieldSpec | None:
        """Of the fields the question may mean, the best one these blocks hold (its type agreeing with the
        question's answer type counts)."""
        top = q.fields[0].score if q.fields else 0.0
        best: tuple[float, FieldSpec] | None = None
        for m in q.fields[:6]:
            if label_key(m.spec.label) == kind or m.score < top * 0.4 or m.score < self.weights["field_route"] * 0.5:
                continue
            if not any(self.field_of(r, m.spec) for r in records[:10]):
                continue
            score = m.score + (0.3 if m.spec.type == q.answer_type else 0.0)
            if best is None or score > best[0]:
                best = (score, m.spec)
        if best is None and q.answer_type in ("date", "duration", "frequency"):
            # Named by none, the one field of these blocks that holds the asked kind of value (時期・頻度 for
            # "how often") is what is asked.
            typed = [f for f in self.catalog.fields if f.type == q.answer_type and any(self.field_of(r, f) for r in records[:10])]
            if len(typed) == 1:
                return typed[0]
        return best[1] if best else None

    def strongly_named(self, q: Question, records: list[Record]) -> bool:
        """Whether the question calls the blocks by their name, or they hold a rare word of it, not only common
        ones (場合, 提出)."""
        rspec = self.catalog.record(records[0].kind) if records else None
        if any(len(n) >= 4 and n in q.norm
               for n in (normalize(self.record_name(r, rspec.name_fields if rspec else ())) for r in records)):
            return True
        held: set[str] = set().union(*(self.record_terms(r) for r in records)) if records else set()
        least = self.weights.get("unexplained_idf", 4.0)
        return any(self._idf.get(t, 0.0) >= least for t in self.content_terms(q) & held)

    def unexplained(self, q: Question, records: list[Record]) -> bool:
        """The question names things (nouns of weight) that no block and no word of the form accounts for:
        it is about something else (an incident, a measure), not about these blocks."""
        held: set[str] = set().union(*(self.record_terms(r) for r in records)) if records else set()
        for t in self.content_terms(q):
            if t in held:
                continue
            if any(t in name for f in self.catalog.fields for name in f.names):
                continue
            if self._idf.get(t, 0.0) >= self.weights.get("unexplained_idf", 4.0):
                return True
        return False

    def section_fields(self, card: Card, records: list[Record], spec: FieldSpec) -> list[Evidence]:
        """Fields labelled as `spec` that stand in the blocks' section but outside any block."""
        homes = {" > ".join(r.path[:-1]) for r in records}
        keys = {label_key(x) for x in spec.labels}
        out = []
        for section in card.walk():
            if section.breadcrumb not in homes and not any(h.startswith(section.breadcrumb) for h in homes):
                continue
            for f in section.fields:
                if (f.key in keys or any(k in f.key for k in keys)) and not f.empty:
                    out.append(Evidence(self.value_text(f), section.breadcrumb, f.label, f.line, f.end_line))
        return out

    def record_terms(self, r: Record) -> set[str]:
        key = (id(r), r.line)
        cached = self._record_terms.get(key)
        if cached is None:
            text = normalize(" ".join([r.name or "", *(f.value for f in r.fields)]))
            cached = self._record_terms[key] = set(self.terms(text))
        return cached

    def field_of(self, r: Record, spec: FieldSpec) -> Field | None:
        for label in spec.labels:
            f = r.get(label_key(label))
            if f is not None:
                return f
        return None

    @staticmethod
    def record_name(r: Record, name_fields: tuple[str, ...]) -> str:
        if r.name:
            return r.name
        for label in name_fields:
            value = r.value(label_key(label))
            if value:
                return value.split("\n")[0].strip()
        return r.name or r.title

    def count_field(self, card: Card, kind: str) -> Field | None:
        """The field where the form states whether, and how many, blocks of `kind` there are."""
        rspec = self.catalog.record(kind)
        if rspec and rspec.count_field:
            for _, f in card.fields():
                if f.key == label_key(rspec.count_field) and f.value:
                    return f
        return None

    def count(self, q: Question, card: Card, kind: str, records: list[Record]) -> Answer:
        parts = [Evidence(r.title, r.breadcrumb, "", r.line, r.line) for r in records[:3]]
        stated = self.count_field(card, kind)
        n = len({r.number for r in records})
        if stated is not None:
            parts.insert(0, Evidence(clean_line(stated.value), "", stated.label, stated.line, stated.end_line))
            short = f"{clean_line(stated.value)}（{kind}の記載 {n}件）" if not q.english else f"{clean_line(stated.value)} ({n} {kind} blocks)"
        else:
            short = f"{kind} {n}件" if not q.english else f"{n} ({kind})"
        return self.compose(q, card, parts, short=short, kind="number")

    def presence(self, q: Question, card: Card, kind: str, matched: list[Record], narrowed: bool = True) -> Answer:
        yes = bool(matched)
        rspec = self.catalog.record(kind)
        stated = self.count_field(card, kind) if not narrowed else None
        if stated is not None:  # whether the report does it at all: the form's own choice says
            value = clean_line(stated.value)
            ev = Evidence(value, "", stated.label, stated.line, stated.end_line)
            return self.compose(q, card, [ev], short=self.yes_word(q, self.is_positive(normalize(value))), kind="yesno")
        parts = [Evidence(self.record_name(r, rspec.name_fields if rspec else ()), r.breadcrumb, "", r.line, r.end_line)
                 for r in matched[:5]]
        word = self.yes_word(q, yes)
        if yes:
            return self.compose(q, card, parts, short=word, kind="yesno")
        reason = f"現在の{kind}の記載に該当するものはありません。" if not q.english else f"No current {kind} block matches."
        if not narrowed:
            reason = f"{kind}の記載がありません。" if not q.english else f"The report lists no {kind}."
        return Answer(q.text, f"{word}。{reason}" if not q.english else f"{word}. {reason}", False, [], kind="yesno")

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
        if q.answer_type == "date":
            dates = extract(top.text, "date")
            short = dates[0] if dates else None
        return self.compose(q, card, parts, short=short, kind="span")

    # -- the best passage --------------------------------------------------------------------------------
    def passage(self, q: Question, card: Card, hits: list[Hit], history: bool | None = None) -> Answer:
        """The sentences that answer, read from the units retrieval ranks highest in the card.

        Every sentence of the first `passage_pool` units is scored on four things, with fitted weights: how
        high its unit ranks, how much of the question's weight (IDF) it and its headings hold, whether it
        holds a value of the asked type, and how much it adds beyond the question (a heading that only
        repeats the question's words answers nothing). The change history is read only for questions about
        changes: it repeats the current text of every section beside its past."""
        history = q.changes if history is None else history
        w = self.weights
        size = int(w.get("passage_pool", 6))
        pool = hits if history else ([h for h in hits if not is_change_history(h)] or hits)
        if not pool:
            return self.abstain(q, hits, "", "", card)
        if max(h.dense for h in pool[:3]) < self.weights["abstain_below"]:
            return self.abstain(q, hits, "", "", card)
        pool = pool[:size]
        if not history:
            # What only the history still says (a sentence since removed): a rare word of the question that no
            # current passage holds but a change row does brings that row in.
            held = set().union(*(set(self.terms(h.chunk.text)) for h in pool))
            rare = {t for t in self.content_terms(q) if self._idf.get(t, 0.0) >= w.get("unexplained_idf", 4.0)} - held
            if rare:
                query = self.searcher.query_for(q, q.vector, cards=(card.id,))
                query.only_kind = CHANGE_KIND
                rows = self.searcher.search_query(query, 5)
                pool += [h for h in rows if rare & set(self.terms(h.chunk.text))][:2]
        scored = self.score_sentences(q, pool)
        if not scored:
            return self.abstain(q, hits, "", "", card)
        scored.sort(key=lambda x: -x[0])
        best_score = scored[0][0]
        budget = int(w.get("passage_chars", 300))
        keep = w.get("second_passage", 0.85)
        parts: list[Evidence] = []
        used = 0
        for score, sentence, h in scored[: int(w.get("passage_units", 3)) * 2]:
            if len(parts) >= int(w.get("passage_units", 3)) or (parts and score < best_score * keep):
                break
            text = _trim(sentence, MAX_EVIDENCE)
            if any(text == p.text for p in parts) or (parts and used + len(text) > budget):
                continue
            parts.append(Evidence(text, h.chunk.section, h.chunk.label, h.chunk.line, h.chunk.end_line, h.dense))
            used += len(text)
        if q.yesno:
            return self.polarity(q, card, parts[:1], pool)
        if q.answer_type in TYPED_ANSWERS and parts and not any(typed_values(p.text, q.answer_type) for p in parts):
            # Asked when, how long, how often or how many, the passages that answer best hold no such value:
            # the report does not state it (they are named as the nearest passages).
            return self.abstain(q, hits, "", "", card)
        short = next((v for v in (self.short_of(q, p.text) for p in parts) if v), None)
        return self.compose(q, card, parts, short=short, kind=q.answer_type)

    def form_words(self, q: Question) -> str:
        """For a question in English, the form's own Japanese words for what it names (its block kind, the
        labels of the fields it names by their English names), so its words can meet the report's."""
        if not q.english:
            return ""
        words = [q.record.kind] if q.record is not None else []
        words += [m.spec.label for m in q.fields[:2] if m.lexical > 0 and m.spec.type != "yesno"]
        return " ".join(words)

    def score_sentences(self, q: Question, hits: list[Hit]) -> list[tuple[float, str, Hit]]:
        w = self.weights
        identity = {x.lower() for x in q.identity}
        wanted = {t for t in self.terms(f"{q.norm} {self.form_words(q)}") if t.lower() not in identity and NOUN.fullmatch(t)}
        total = sum(self._idf.get(t, 1.0) for t in wanted) or 1.0
        top = hits[0].score or 1.0
        out: list[tuple[float, str, Hit]] = []
        for h in hits:
            context = set(self.terms(h.chunk.section))
            for sentence in sentences(h.chunk.text):
                toks = set(self.terms(sentence))
                overlap = sum(self._idf.get(t, 1.0) for t in wanted & (toks | context)) / total
                new = sum(self._idf.get(t, 1.0) for t in toks - wanted if NOUN.fullmatch(t))
                novelty = min(1.0, new / 12.0)
                typed = 1.0 if q.answer_type and extract(sentence, q.answer_type) else 0.0
                heading = 1.0 if heading_class(sentence) else 0.0
                score = (w.get("p_unit", 1.0) * h.score / top + w.get("p_overlap", 1.0) * overlap
                         + w.get("p_type", 0.5) * typed + w.get("p_novel", 0.5) * novelty
                         - w.get("p_heading", 0.5) * heading * (1.0 - novelty)) / math.sqrt(1 + len(sentence) / 200)
                out.append((score, sentence, h))
        return out

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
            body = _trim(short or "", 1200)
        else:
            evidence = " / ".join(_trim(ev.text, MAX_EVIDENCE) for ev in parts)
            body = evidence if not short or short in evidence and len(evidence) < 60 else f"{short}\n{evidence}"
        marks = "".join(f"[{i + 1}]" for i in range(min(len(citations), 3)))
        if q.english:
            body = f"According to {card.label}: {body}"
        return Answer(q.text, f"{body} {marks}".strip(), False, citations, kind=kind)

    def abstain(self, q: Question, hits: list[Hit], reason_ja: str, reason_en: str, card: Card | None = None) -> Answer:
        lang = "en" if q.english else "ja"
        reason = reason_en if q.english else reason_ja
        where = f"（{card.label}）" if card is not None and not q.english else (f" ({card.label})" if card else "")
        text = f"{NOT_STATED[lang]}{where} {reason}".strip()
        near = [h for h in hits if card is None or h.chunk.card == card.id][:3]
        if near:
            text += ("\n近い記載: " if lang == "ja" else "\nNearest passages: ") + " / ".join(
                f"{h.chunk.section} {h.chunk.line}行" if lang == "ja" else f"{h.chunk.section} line {h.chunk.line}" for h in near
            )
        return Answer(q.text, text, True, [], cards=[card.id] if card else [], kind="abstain")


def _trim(text: str, limit: int) -> str:
    """Shorten at a sentence or word boundary, never mid-word."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in ("。", "、", " ", "・"):
        pos = cut.rfind(mark)
        if pos >= limit * 0.6:
            return cut[: pos + 1].rstrip() + "…"
    return cut + "…"


__all__ = ["Evidence", "NOT_STATED", "Reader", "sentences"]
