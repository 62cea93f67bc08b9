"""Questions across reports: which reports say X, how many do, which has the most or least of a value, or what
each one says. Every report is read as a single-report question would read it; the answers are then compared.

Which reports "say X" is decided by evidence: the terms of the question that tell the reports apart (present in
some reports, not in all), or the polarity of the field asked about, or the report's stated kind.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from qa.answering.answer import Answer, Citation
from qa.answering.extract import date_key, number_key
from qa.parsing.template import CHANGE_KIND
from qa.reading import normalize

if TYPE_CHECKING:
    from qa.answering.reader import Reader
    from qa.parsing.card import Card
    from qa.question import Question
    from qa.retrieval import Hit

_RUN = re.compile(r"[一-龥々〆ヵヶァ-ヴーA-Za-z0-9&・]{2,}")


def _card_text(reader: Reader, card: Card) -> str:
    source = reader.source(card.id)
    return "\n".join(source.norm_lines)


def _blocks_text(card: Card, kind: str) -> str:
    return normalize(" ".join(f"{r.name or ''} {f.value}" for r in card.records(kind) for f in r.fields)).lower()


def _structure_words(reader: Reader) -> set[str]:
    """The form's labels and block kinds: they name where things stand, never what tells reports apart."""
    cat = reader.catalog
    words = {normalize(x).lower() for f in cat.fields for x in f.labels} | {normalize(r.kind).lower() for r in cat.records}
    return words | {normalize(n).lower() for r in cat.records for n in r.ja}


def distinguishing_terms(reader: Reader, q: Question, texts: dict[str, str], form_words: bool = False) -> list[str]:
    """Runs of the question found in some reports but not all: names of bodies, systems, measures; with
    `form_words`, the form's own words too (an option such as 全項目評価書 that some answers hold)."""
    identity = {w.lower() for w in q.identity}
    out: list[str] = []
    runs = list(dict.fromkeys(q.quoted + _RUN.findall(q.norm)))
    for run in runs:
        pieces = [run] + [t for t in reader.searcher.segmenter.tokens(run) if len(t) >= 3 and t != run]
        for piece in pieces:
            low = piece.lower()
            if low in identity or any(low in w or w in low for w in identity if len(w) >= 2):
                continue
            if low in reader._vocab and (not form_words or low in _structure_words(reader)):
                continue
            present = [cid for cid, text in texts.items() if piece.lower() in text.lower()]
            if present and len(present) < len(texts):
                out.append(piece)
                break
    return list(dict.fromkeys(out))


def answer_across(reader: Reader, q: Question, hits: list[Hit]) -> Answer:
    cards = [reader.cards[c] for c in q.cards if c in reader.cards]
    texts = {c.id: normalize(_card_text(reader, c)) for c in cards}
    spec = q.top_field.spec if q.top_field and q.top_field.score >= reader.weights["field_route"] else None

    # The most / the least of a value: compare each report's reading of it.
    if q.superlative and spec is not None and spec.type in ("date", "range", "number") or (q.superlative and spec and spec.meta):
        return superlative(reader, q, cards, hits)

    polar = q.yesno or spec is not None and spec.type == "yesno"
    # Read each report as if asked alone (a yes/no field as a yes/no question).
    each_q = replace(q, yesno=True, answer_type="yesno") if polar else q
    reasons: dict[str, Answer] = {c.id: reader.single(each_q, c, reader.hits_for(q, c.id)) for c in cards}
    said = {cid: ("" if a.abstained else normalize(a.answer).lower()) for cid, a in reasons.items()}
    members: list[Card] = []
    quoted = [normalize(x).lower() for x in q.quoted]
    by_text = distinguishing_terms(reader, q, texts)
    # A word that some answers hold tells the reports apart only if the reports' texts differ on it too
    # (特定個人情報 is in every report, whichever passage each answer happened to quote), or if it is one of the
    # form's own words (an option such as 全項目評価書, which every report lists among its choices).
    by_answer = [t for t in distinguishing_terms(reader, q, said, form_words=True)
                 if t in by_text or t.lower() in reader._vocab or any(t in x for x in by_text)]
    # Asked whether they do something (a yes/no field), the reports' own readings decide; a word of the question
    # found somewhere in some reports' text (外部 of 「外部に委託」) does not single them out, unless their answers
    # or their blocks of the asked kind hold it (a company they outsource to).
    terms = by_answer or ([] if polar else by_text)
    if quoted and polar:
        # A quoted choice (「発生あり」, 「行っていない」): the reports whose own yes/no reading has its polarity.
        word = reader.yes_word(each_q, reader.is_positive(quoted[0])).lower()
        members = [c for c in cards if said[c.id].startswith(word)]
    elif quoted and any(x in said[c.id] for c in cards for x in quoted):
        # A report belongs when its own answer holds what the question quotes (「発生あり」, 「行っていない」).
        members = [c for c in cards if any(x in said[c.id] for x in quoted)]
    elif terms:
        # ... or a term that tells the reports apart (a company, a body, a measure), in its answer or its text.
        pool = said if by_answer else {c.id: texts[c.id].lower() for c in cards}
        if by_answer:
            # A report whose blocks of the asked kind (its 提供先, its 委託事項; any but the change history when
            # the question names none) hold the term belongs too, when its answer quoted another passage.
            kinds = {q.record.kind} if q.record is not None else {m.spec.record for m in q.fields[:3] if m.spec.record}
            kinds = (kinds or set(reader.catalog.record_kinds)) - {CHANGE_KIND}
            pool = {c.id: pool[c.id] + "\n" + " ".join(_blocks_text(c, k) for k in sorted(kinds)) for c in cards}
        counts = {c.id: sum(1 for t in terms if t.lower() in pool[c.id]) for c in cards}
        best = max(counts.values(), default=0)
        members = [c for c in cards if best and counts[c.id] == best]
    elif polar:
        word = reader.yes_word(each_q, True).lower()
        members = [c for c in cards if said[c.id].startswith(word)]
    elif q.answer_type == "number" and q.named and not q.several:
        members = list(cards)  # how many reports the question's own scope names (川崎市's reports)
    else:
        return each(reader, q, cards, hits, reasons)

    if q.yesno:
        yes = len(members) == len(cards)
        word = reader.yes_word(q, yes)
        names = "、".join(c.label for c in members) or "なし"
        text = f"{word}。該当: {names}" if not q.english else f"{word}. Reports that do: {names}"
        return Answer(q.text, text, False, _citations(reader, q, members, terms, reasons), cards=[c.id for c in members], kind="cross")
    names = "、".join(c.label for c in members)
    if not members:
        return reader.abstain(q, hits, "どの評価書にも該当する記載が見つかりません。", "No report states it.")
    count = f"（{len(members)}件）" if not q.english else f" ({len(members)} reports)"
    head = "該当する評価書: " if not q.english else "Reports: "
    if q.answer_type == "number":
        head = f"{len(members)}件: " if not q.english else f"{len(members)} reports: "
        count = ""
    return Answer(q.text, f"{head}{names}{count}", False, _citations(reader, q, members, terms, reasons),
                  cards=[c.id for c in members], kind="cross")


def _citations(reader: Reader, q: Question, members: list[Card], terms: list[str], reasons: dict[str, Answer]) -> list[Citation]:
    out: list[Citation] = []
    for c in members:
        if c.id in reasons and reasons[c.id].citations:
            out.append(reasons[c.id].citations[0])
            continue
        source = reader.source(c.id)
        for t in terms:
            found = source.find_quote(t)
            if found:
                out.append(Citation(c.id, c.label, c.source, "", found[1], found[0]))
                break
    return out


def superlative(reader: Reader, q: Question, cards: list[Card], hits: list[Hit]) -> Answer:
    rows = []
    for c in cards:
        one = reader.single(q, c, reader.hits_for(q, c.id))
        if one.abstained:
            continue
        value = one.answer.split("\n")[0]
        key = date_key(value) if q.top_field and q.top_field.spec.type == "date" else (number_key(value),)
        if key and key[0]:
            rows.append((key, c, value, one))
    if not rows:
        return reader.abstain(q, hits, "比べられる値がどの評価書にも見つかりません。", "No report states a comparable value.")
    rows.sort(key=lambda r: r[0], reverse=q.superlative == "max")
    key, card, value, one = rows[0]
    others = "; ".join(f"{c.label}: {v}" for _, c, v, _ in rows[1:])
    text = f"{card.label}: {value}" + (f"\n（ほか {others}）" if others and not q.english else (f"\n(others: {others})" if others else ""))
    return Answer(q.text, text, False, one.citations[:1] + [r[3].citations[0] for r in rows[1:] if r[3].citations],
                  cards=[card.id], kind="cross")


def each(reader: Reader, q: Question, cards: list[Card], hits: list[Hit], read: dict[str, Answer] | None = None) -> Answer:
    """What each report in scope says, one line per report."""
    lines: list[str] = []
    citations: list[Citation] = []
    for c in cards:
        one = (read or {}).get(c.id) or reader.single(q, c, reader.hits_for(q, c.id))
        head = one.answer.split("\n")[0]
        head = re.sub(r"\s*(\[\d+\])+$", "", head)
        lines.append(f"{c.label}: {head[:160]}")
        citations.extend(one.citations[:1])
    return Answer(q.text, "\n".join(lines), False, citations, cards=[c.id for c in cards], kind="cross")
