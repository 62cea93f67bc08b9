"""Reading the passages retrieval ranks highest: every sentence scored with fitted weights, the best cited.

A mixin of `Reader` (qa/answering/reader.py): its methods use the reader's retrieval, terms and citations.
"""

from __future__ import annotations

import math

from qa.answering.answer import Answer
from qa.answering.evidence import MAX_EVIDENCE, Evidence, trim
from qa.answering.extract import NOUN, extract, holds_value, sentences
from qa.answering.statements import is_change_history
from qa.chunking import clean_line, heading_class
from qa.parsing.card import SEP, Card
from qa.parsing.template import CHANGE_KIND
from qa.question import Question
from qa.retrieval import Hit


class PassageReading:
    """The passage route of `Reader`: sentences scored, the best kept within a budget, typed values checked."""

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
        # The best evidence is weak: the top passages stand no higher above the card's other units than this.
        least = w.get("abstain_below_z", 0.0)
        if least > 0 and self.searcher.dense_standing(q.vector, card.id, max(h.dense for h in pool[:3])) < least:
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
        scored = self.score_sentences(q, pool, card)
        if not scored:
            return self.abstain(q, hits, "", "", card)
        lines = {(text, h.chunk.id): line for _, text, h, line in scored if line}
        scored.sort(key=lambda x: -x[0])
        best_score = scored[0][0]
        budget = int(w.get("passage_chars", 300))
        keep = w.get("second_passage", 0.85)
        parts: list[Evidence] = []
        used = 0
        for score, sentence, h, _ in scored[: int(w.get("passage_units", 3)) * 2]:
            if len(parts) >= int(w.get("passage_units", 3)) or (parts and score < best_score * keep):
                break
            text = trim(sentence, MAX_EVIDENCE)
            if any(text == p.text for p in parts) or (parts and used + len(text) > budget):
                continue
            line, end_line = (at, at) if (at := lines.get((sentence, h.chunk.id))) else (h.chunk.line, h.chunk.end_line)
            parts.append(Evidence(text, h.chunk.section, h.chunk.label, line, end_line, h.dense))
            used += len(text)
        if q.yesno:
            return self.polarity(q, card, parts[:1], pool)
        if q.answer_type == "number" and parts and not any(holds_value(p.text) for p in parts):
            # Asked how many, the passages that answer best hold no value at all: the report does not state it
            # (they are named as the nearest passages). A time may be given in words (速やかに, 都度): not so here.
            return self.abstain(q, hits, "", "", card)
        short = next((v for v in (self.short_of(q, p.text) for p in parts) if v), None)
        return self.compose(q, card, parts, short=short, kind=q.answer_type)

    def form_words(self, q: Question) -> str:
        """For a question in English, the form's own Japanese words for what it names (its block kind, the
        labels of the fields it names by their English names, its words in the catalog's glossary), so its
        words can meet the report's."""
        if not q.english:
            return ""
        words = [q.record.kind] if q.record is not None else []
        words += [m.spec.label for m in q.fields[:2] if m.lexical > 0 and m.spec.type != "yesno"]
        return " ".join(words + list(q.glossed))

    def headings_of(self, card: Card, hit: Hit, form: set[str], seen: set[str]) -> list[tuple[str, int]]:
        """The headings a prose unit stands under that are not the form's sections (`form`: an annex's 「事案1
        …の紛失」), each with its line: they may say what the passage is about better than any of its sentences."""
        if hit.chunk.kind != "prose":
            return []
        source = self.source(card.id)
        out = []
        for heading in hit.chunk.section.split(SEP):
            if heading in form or heading in seen or not heading_class(heading):
                continue
            seen.add(heading)
            line = next((n for n in range(hit.chunk.line, max(0, hit.chunk.line - 200), -1)
                         if clean_line(source.norm_lines[n - 1])[:60] == heading), None)
            if line is not None:
                out.append((heading, line))
        return out

    def score_sentences(self, q: Question, hits: list[Hit], card: Card) -> list[tuple[float, str, Hit, int | None]]:
        """Each sentence of the units (and each heading they stand under) scored; the last item is the line of a
        heading, which lies outside its unit's lines."""
        w = self.weights
        identity = {x.lower() for x in q.identity}
        wanted = {t for t in self.terms(f"{q.norm} {self.form_words(q)}") if t.lower() not in identity and NOUN.fullmatch(t)}
        total = sum(self._idf.get(t, 1.0) for t in wanted) or 1.0
        top = hits[0].score or 1.0
        out: list[tuple[float, str, Hit, int | None]] = []
        seen: set[str] = set()
        form = {part for section in card.walk() for part in section.path}
        for h in hits:
            context = set(self.terms(h.chunk.section))
            candidates = [(sentence, None) for sentence in sentences(h.chunk.text)]
            seen.update(text for text, _ in candidates)
            for sentence, line in candidates + self.headings_of(card, h, form, seen):
                toks = set(self.terms(sentence))
                overlap = sum(self._idf.get(t, 1.0) for t in wanted & (toks | context)) / total
                new = sum(self._idf.get(t, 1.0) for t in toks - wanted if NOUN.fullmatch(t))
                novelty = min(1.0, new / 12.0)
                typed = 1.0 if q.answer_type and extract(sentence, q.answer_type) else 0.0
                heading = 1.0 if heading_class(sentence) else 0.0
                score = (w.get("p_unit", 1.0) * h.score / top + w.get("p_overlap", 1.0) * overlap
                         + w.get("p_type", 0.5) * typed + w.get("p_novel", 0.5) * novelty
                         - w.get("p_heading", 0.5) * heading * (1.0 - novelty)) / math.sqrt(1 + len(sentence) / 200)
                out.append((score, sentence, h, line))
        return out
