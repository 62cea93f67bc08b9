"""Yes or no, read off the statement that says it.

Whether 情報連携 is done at all (「[実施する]」) is not whether information is *provided* (「なし(…情報提供は
行わない)」 beside it), nor whether it is obtained (「[○] 接続しない(入手)」 in III 6). The statements that say yes
or no — chosen options, unchosen options read as their opposite, sentences that end in a word of polarity —
are gathered from the first evidence, the sections whose heading names the same subject, and the top
passages; the one holding most of what the question singles out decides. Used by `Reader.polarity`.
"""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING

from qa.answering.evidence import Evidence
from qa.answering.extract import NOUN
from qa.chunking import clean_line
from qa.parsing.card import SEP, Card, Field
from qa.parsing.template import CHANGE_KIND
from qa.question import Question
from qa.reading import normalize
from qa.retrieval import Hit

if TYPE_CHECKING:
    from qa.answering.reader import Reader


def statements(reader: Reader, card: Card, first: int, last: int, crumb: str) -> list[tuple[str, bool, Evidence, bool]]:
    """What the lines first…last state as yes or no: chosen options, unchosen options (as their opposite),
    and sentences of values that end in a word of polarity. The last item: whether it is a form's option."""
    out: list[tuple[str, bool, Evidence, bool]] = []
    polar = tuple(reader.catalog.yesno.get("positive", ())) + tuple(reader.catalog.yesno.get("negative", ()))  # type: ignore[operator]
    endings = sorted((w for w in polar if len(w) >= 3), key=len, reverse=True)
    lines, owned = _fields_by_line(reader, card)
    in_range = sorted(owned[bisect.bisect_left(lines, first) : bisect.bisect_right(lines, last)], key=lambda x: x[0])
    for _, owner, f in in_range:  # in the card's own order, as before
        if getattr(owner, "kind", None) == CHANGE_KIND:
            continue
        ev_crumb = getattr(owner, "breadcrumb", crumb)
        if f.options and f.selected is not None:
            chosen = {normalize(x) for x in f.selected}
            for option in f.options:
                o = normalize(option)
                if any(w in o for w in polar):
                    picked = o in chosen
                    shown = f"[{'○' if picked else ' '}] {option}"  # chosen or not, as the form shows it
                    out.append((o, reader.is_positive(o) == picked, Evidence(shown, ev_crumb, f.label, f.line, f.end_line), True))
            continue
        for clause in re.split(r"\n|。|(?<=\))\s*(?=\()", f.value):
            c = normalize(clause).strip()
            tail = c.rstrip(")）」』。 ")
            ending = next((w for w in endings if tail.endswith(w)), None)
            if ending:  # a sentence that ends saying yes or no
                out.append((c, reader.is_positive(ending), Evidence(clean_line(c), ev_crumb, f.label, f.line, f.end_line), False))
    return out

def _fields_by_line(reader: Reader, card: Card) -> tuple[list[int], list[tuple[int, object, Field]]]:
    """The card's fields with their owners and their place in `card.fields()`, ordered by line, once per card: a
    yes/no question reads the fields of several line ranges, and each used to walk every field of the card."""
    known = reader.fields_by_line.get(card.id)
    if known is None or known[0] is not card:
        owned = sorted(((n, owner, f) for n, (owner, f) in enumerate(card.fields())), key=lambda x: x[2].line)
        known = (card, [f.line for _, _, f in owned], owned)
        reader.fields_by_line[card.id] = known
    return known[1], known[2]


def best_statement(reader: Reader, q: Question, card: Card, first: Evidence, hits: list[Hit]) -> tuple[bool, Evidence] | None:
    # The subject the first evidence is filed under (a run of its heading the question repeats, such as
    # 情報提供ネットワークシステム) is common to every statement about it: what singles one out is the rest.
    head = normalize(first.section.split(SEP)[-1] if first.section else "")
    subject = _common_runs(head, q.norm, 5)
    identity = {t.lower() for x in q.identity for t in reader.terms(x)}

    def terms(text: str) -> set[str]:
        for run in subject:
            text = text.replace(run, " ")
        return {t for t in reader.terms(text) if NOUN.fullmatch(t) and t.lower() not in identity}

    wanted = terms(_japanese_part(q)) | terms(reader.form_words(q))
    total = sum(reader._idf.get(t, 1.0) for t in wanted)
    if not total:
        return None

    def weight(text: str) -> float:
        return sum(reader._idf.get(t, 1.0) for t in wanted & terms(text))

    own = weight(normalize(first.text))
    # Where else the report speaks of the subject: the top passages, and the sections whose heading names
    # it (情報提供ネットワークシステム has I 5, II 5 and III 6).
    # On a tie the earlier span keeps it: the first evidence, then the subject's sections, then passages.
    spans = [(first.line, first.end_line, first.section)] + [
        (sec.line, sec.end_line, sec.breadcrumb) for sec in card.walk()
        if subject and sec.breadcrumb != first.section and CHANGE_KIND not in sec.breadcrumb
        and any(run in normalize(sec.title) for run in subject)
    ] + [(h.chunk.line, h.chunk.end_line, h.chunk.section) for h in hits[:5] if not is_change_history(h)]
    best: tuple[float, bool, Evidence] | None = None
    for lo, hi, crumb in spans:
        for text, yes, ev, option in statements(reader, card, lo, hi, crumb):
            # On a tie: the first evidence's own section, then the form's own choice (an option).
            score = weight(text) + (0.02 if crumb == first.section else 0.0) + (0.01 if option else 0.0)
            if best is None or score > best[0]:
                best = (score, yes, ev)
    if best is None or best[0] <= own or best[0] < reader.weights.get("statement_share", 0.25) * total:
        return None
    return best[1], best[2]


def _japanese_part(q: Question) -> str:
    """The question without its English words (Sudachi reads "office" as オフィス, which no report says);
    acronyms (ID, ISO) stay."""
    if not q.english:
        return q.norm
    return re.sub(r"\b[A-Za-z]*[a-z][A-Za-z'-]*\b", " ", q.norm)


def _common_runs(a: str, b: str, least: int) -> list[str]:
    """The maximal runs of at least `least` characters that `a` and `b` share, longest first."""
    runs: set[str] = set()
    a = a.strip()
    i = 0
    while i < len(a):
        size = 0
        while i + size < len(a) and a[i : i + size + 1] in b:
            size += 1
        if size >= least and a[i : i + size].strip():
            runs.add(a[i : i + size].strip())
            i += size
        else:
            i += 1
    return sorted(runs, key=len, reverse=True)


def is_change_history(hit: Hit) -> bool:
    """A unit of 別添2 (変更箇所): it repeats the old and new text of every section."""
    return hit.chunk.is_change_history


__all__ = ["best_statement", "is_change_history", "statements"]
