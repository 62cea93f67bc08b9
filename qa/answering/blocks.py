"""Reading the form's blocks (提供先, 委託事項, システム …): which the question means, what they say, how many.

A mixin of `Reader` (qa/answering/reader.py): its methods use the reader's retrieval, terms and citations.
"""

from __future__ import annotations

import re
from collections import Counter

from qa.answering.answer import Answer
from qa.answering.evidence import MAX_LIST, Evidence
from qa.answering.extract import NOUN
from qa.catalog import FieldSpec
from qa.chunking import clean_line
from qa.parsing.card import Card, Field, Record, label_key
from qa.question import Question
from qa.reading import NAME_CHARS, normalize
from qa.retrieval import Hit


class BlockReading:
    """The block routes of `Reader`: the blocks a question means, their fields, lists, counts and presence."""

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
        runs = re.findall(f"[{NAME_CHARS}・]{{4,}}", low)
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
        # A question may ask for two fields of the blocks at once (the legal basis and the use, the method and
        # the timing): a second field it names by its words, that these blocks hold.
        second = self.second_block_field(q, records, kind, sub) if sub is not None else None
        seconds: list[Evidence] = []
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
            f2 = self.field_of(r, second) if second is not None else None
            if f2 is not None and not f2.empty:
                seconds.append(Evidence(self.value_text(f2), r.breadcrumb, f2.label, f2.line, f2.end_line))
        if q.yesno:
            return self.polarity(q, card, parts)
        if seconds:
            both = [p for p in {p.text: p for p in parts + seconds}.values() if self.names_something(p.text)]
            if len(both) <= MAX_LIST:
                many = len(records) > 1
                short = ("; " if q.english else "、").join(p.text for p in both) if many else None
                return self.compose(q, card, both, short=short, kind="list", listing=many)
        distinct = list(dict.fromkeys(v for v in values if self.names_something(v)))
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

    @staticmethod
    def names_something(value: str) -> bool:
        """A value that is only the marks of a checkbox (a scrambled extraction's 「[ ○ [」) names nothing."""
        return bool(value) and bool(re.search(r"[^\W\d_]", re.sub(r"[\[\]()○◯ ]", "", value)))

    def second_block_field(self, q: Question, records: list[Record], kind: str, first: FieldSpec) -> FieldSpec | None:
        """Another field the question names by its own words (not only by likeness), that the blocks hold."""
        for m in q.fields[:6]:
            if m.lexical <= 0 or m.spec.label == first.label or label_key(m.spec.label) == kind:
                continue
            if m.spec.record or m.spec.meta or m.score < self.weights["field_route"] * 0.5:
                continue
            for r in records[:10]:
                found = self.field_of(r, m.spec)
                if found is not None and found is not self.field_of(r, first):
                    return m.spec
        return None

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
