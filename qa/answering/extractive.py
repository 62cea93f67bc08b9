"""The offline answerer: reads the answer off the parsed structure, as a careful reader of the form would.

Retrieval picks the card and the neighbourhood; the structure gives complete answers: a list question
walks every 提供先 block of that card, not the top-k chunks. Every part of an answer carries a citation
cut verbatim from the source file. When the report does not state something, the answer says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qa.answering.answer import Answer, Citation, Retrieved
from qa.answering.understanding import GENERIC, Question, date_key
from qa.parsing.card import Card, Field, Record, Section
from qa.reading import SourceText, normalize
from qa.retrieval import Hit, HybridSearcher

NOT_STATED_JA = "評価書に記載が見つかりません。"
NOT_STATED_EN = "Not stated in the report."
MAX_VALUE = 260

# What each block type is called, and the field holding its name or answer.
RECORD_TARGETS = {
    "提供先": ("提供先", "recipients (提供先)"),
    "移転先": ("移転先", "transferees within the organisation (移転先)"),
    "委託先": ("委託事項", "contractors (委託先)"),
    "システム": ("システム", "systems"),
}
# Field-level targets: template term → label keys to look for (first match wins), English name.
FIELD_TARGETS: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (("保管",), ("保管期間", "期間"), "retention period"),
    (("保管",), ("保管場所",), "storage"),
    (("消去",), ("消去方法",), "erasure method"),
    (("問合せ",), ("連絡先",), "contact"),
    (("開示請求",), ("請求先",), "where to request disclosure"),
    (("担当部署",), ("部署", "所属長の役職名", "事務担当部署"), "department in charge"),
    (("対象となる本人の数",), ("対象となる本人の数", "対象人数"), "number of people covered"),
    (("取扱者数",), ("委託先における取扱者数", "取扱者数"), "number of handlers"),
    (("入手元",), ("入手元",), "sources"),
    (("使用目的",), ("使用目的",), "purpose of use"),
    (("情報連携",), ("実施の有無",), "linkage through the information provision network"),
    (("法令上の根拠",), ("法令上の根拠",), "legal basis"),
]
POSITIVE = ("委託する", "再委託する", "提供を行っている", "移転を行っている", "実施する", "行っている", "発生あり", "定めている",
            "十分である", "特に力を入れている", "接続する")
NEGATIVE = ("委託しない", "再委託しない", "行っていない", "実施しない", "発生なし", "定めていない", "接続しない")


@dataclass
class Context:
    """What the answerer may read: the cards, their sources (for quotes) and the searcher."""

    cards: dict[str, Card]
    source: Callable[[str], SourceText]
    searcher: HybridSearcher


class ExtractiveAnswerer:
    def __init__(self, context: Context) -> None:
        self.ctx = context

    # == entry ==========================================================================================
    def answer(self, q: Question, hits: list[Hit], scope: tuple[str, ...], explicit: bool) -> Answer:
        retrieved = [
            Retrieved(h.chunk.card, h.chunk.source, h.chunk.section, round(h.score, 5), h.chunk.text, h.chunk.line)
            for h in hits
        ]
        result = self._answer(q, hits, scope, explicit)
        result.retrieved = retrieved
        return result

    def _answer(self, q: Question, hits: list[Hit], scope: tuple[str, ...], explicit: bool) -> Answer:
        unknown = self._unknown_place(q, explicit)
        if unknown:
            return self.abstain(q, hits, f"「{unknown}」の評価書はこのコーパスにありません。", f"There is no report from {unknown} in this corpus.")
        if q.cross and (len(scope) > 1 or not explicit):
            cross = self.cross(q, scope)
            if cross is not None:
                return cross
        card = self.pick_card(scope, hits)
        if card is None:
            return self.abstain(q, hits, "該当する評価書が見つかりません。", "No matching report was found.")
        missing = self._unsupported(q, card)
        if missing:
            return self.abstain(q, [h for h in hits if h.chunk.card == card.id],
                                f"「{'・'.join(missing)}」についての記載がありません。",
                                f"Nothing in the report is about {', '.join(missing)}.", card=card)
        for handler in (self.metadata, self.records, self.yes_no, self.fields):
            result = handler(q, card, hits)
            if result is not None:
                result.cards = [card.id]
                return result
        return self.abstain(q, [h for h in hits if h.chunk.card == card.id], "", "", card=card)

    # == helpers ========================================================================================
    def _unsupported(self, q: Question, card: Card) -> list[str]:
        """Content words of the question that the report never uses: what it asks is not in there."""
        if q.english:  # Sudachi spells English words in katakana; they are not the report's words
            return []
        text = normalize(self.ctx.source(card.id).raw)
        words = content_words(q, self.ctx.searcher, card)
        return [w for w in words if len(w) >= 2 and not w.isascii() and w not in text]

    def pick_card(self, scope: tuple[str, ...], hits: list[Hit]) -> Card | None:
        for h in hits:
            if h.chunk.card in scope:
                return self.ctx.cards[h.chunk.card]
        return self.ctx.cards.get(scope[0]) if scope else None

    def _unknown_place(self, q: Question, explicit: bool) -> str | None:
        if explicit or not q.place_names:
            return None
        known = {c.municipality for c in self.ctx.cards.values() if c.municipality}
        stems = {re.sub(r"(市|町|村|区)$", "", k) for k in known}
        for place in q.place_names:
            stem = re.sub(r"(都|道|府|県|市|区|町|村)$", "", place)
            if place in known or stem in stems or any(place in k or k in place for k in known):
                continue
            if len(stem) >= 2:
                return place
        return None

    def cite(self, card: Card, section: str, hint: str, first: int, last: int) -> Citation:
        """A verbatim quote for `hint` within lines [first, last]; falls back to the first raw line there."""
        source = self.ctx.source(card.id)
        for candidate in _hints(hint):
            found = source.find_quote(candidate, first, last)
            if found:
                line, quote = found
                return Citation(card.id, card.label, card.source, section, quote, line)
        line = max(1, min(first, source.line_count))
        raw = source.raw_line(line).strip()[:160] or source.raw_line(line)
        return Citation(card.id, card.label, card.source, section, raw, line)

    def cite_field(self, card: Card, path: str, f: Field, prefer: str | None = None) -> Citation:
        return self.cite(card, path, prefer or f.value or f.label, f.line, f.end_line)

    def abstain(
        self, q: Question, hits: list[Hit], reason_ja: str, reason_en: str, card: Card | None = None
    ) -> Answer:
        near = []
        for h in hits[:3]:
            label = f"{self.ctx.cards[h.chunk.card].label}: {h.chunk.section}"
            if label not in near:
                near.append(label)
        where = f"（{card.label}）" if card else ""
        if q.english:
            text = f"{NOT_STATED_EN} {reason_en}".strip()
            if near:
                text += " Nearest sections: " + "; ".join(near)
        else:
            text = f"{NOT_STATED_JA}{where}{reason_ja}"
            if near:
                text += " 近い箇所: " + " / ".join(near)
        return Answer(q.text, text, True, [], [], cards=[card.id] if card else [], kind="abstain")

    def _say(self, q: Question, ja: str, en: str) -> str:
        return en if q.english else ja

    # == metadata (cover page) ===========================================================================
    def metadata(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        wanted = [
            ("公表日", card.published, "publication date", ("公表日",)),
            ("評価書番号", card.number, "report number", ("評価書番号",)),
            ("評価実施機関", card.evaluator, "evaluating body", ("評価実施機関名",)),
        ]
        for term, value, en, labels in wanted:
            if term not in q.terms:
                continue
            if term == "評価書番号" and "評価書番号" not in q.norm and "report number" not in q.norm.lower():
                continue
            if value is None:
                return self.abstain(
                    q, hits, f"この評価書には{labels[0]}の記載がありません。",
                    f"This report does not state its {en}.", card=card,
                )
            cite = self.cite(card, "表紙", value, 1, min(80, self.ctx.source(card.id).line_count))
            text = self._say(q, f"{value}（{card.label}の{labels[0]}）", f"The {en} of {card.label} is {value}.")
            return Answer(q.text, text, False, [cite], kind="date" if term == "公表日" else "span")
        if q.has("全項目評価書", "重点項目評価書", "基礎項目評価書", "種類", "kind of report", "type of report") and q.yesno:
            asked = next((k for k in ("全項目評価書", "重点項目評価書", "基礎項目評価書") if k in q.norm), None)
            if asked and card.kind:
                yes = card.kind == asked
                cite = self.cite(card, "表紙", card.kind, 1, min(80, self.ctx.source(card.id).line_count))
                text = self._say(q, f"{'はい' if yes else 'いいえ'}。{card.label}は{card.kind}です。",
                                 f"{'Yes' if yes else 'No'}: {card.label} is a {card.kind}.")
                return Answer(q.text, text, False, [cite], kind="yesno")
        return None

    # == block lists (提供先, 移転先, 委託先, システム, 記録項目, 変更箇所) ==================================
    def records(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        target = self._record_target(q)
        if target is None:
            return None
        kind, en = RECORD_TARGETS[target]
        records = [r for r in card.records(kind)]
        if not records:
            what = {"提供先": "提供先", "移転先": "移転先", "委託先": "委託事項", "システム": "システム"}[target]
            return self.abstain(q, hits, f"この評価書には{what}の記載がありません。", f"This report lists no {en}.", card=card)
        if target == "委託先" and ("再委託" in q.terms) and q.yesno:
            return None  # a yes/no on 再委託: the choice field answers it
        if q.yesno and target in ("委託先", "提供先", "移転先") and not q.record_number:
            return None
        chosen = self._narrow(q, card, records)
        sub = self._sub_field(q, kind)
        if q.record_number is not None or (len(chosen) == 1 and len(records) > 1) or sub:
            if q.record_number is not None:
                chosen = [r for r in records if r.number == q.record_number] or []
                if not chosen:
                    return self.abstain(q, hits, f"{kind}{q.record_number}は記載されていません。",
                                        f"There is no {kind}{q.record_number} in this report.", card=card)
            if sub:
                return self._record_fields(q, card, chosen, sub)
        return self._record_list(q, card, target, chosen, en)

    def _record_target(self, q: Question) -> str | None:
        terms = q.terms
        if "移転先" in terms and ("移転" in q.norm or "transfer" in q.norm.lower()):
            return "移転先"
        for t in ("委託先", "提供先", "システム"):
            if t in terms:
                if t == "システム" and not re.search(r"システム|system", q.norm, re.I):
                    continue
                if t == "提供先" and "委託" in q.norm:
                    continue
                return t
        return None

    def _narrow(self, q: Question, card: Card, records: list[Record]) -> list[Record]:
        """Records the question's own words point at: a name, or the information they receive."""
        words = content_words(q, self.ctx.searcher, card)
        if not words:
            return records
        named = [r for r in records if r.name and any(w in normalize(r.name) for w in words if len(w) >= 3)]
        if named and len(named) < len(records):
            return named
        info = []
        for r in records:
            text = normalize(" ".join(f.value for f in r.fields if "情報" in f.key or "用途" in f.key))
            if any(w in text for w in words if len(w) >= 3):
                info.append(r)
        stated = [r for r in records if r.get("提供する情報") or r.get("移転する情報")]
        if info and len(info) < len(records):
            # 004's blocks are torn apart: a block whose ③ went missing cannot be judged; keep it when
            # every block that does state its information matches.
            if stated and all(r in info for r in stated):
                return records
            return info
        return records

    def _sub_field(self, q: Question, kind: str) -> tuple[str, str] | None:
        table = [
            (("法令上の根拠", "根拠", "legal basis"), "法令上の根拠", "legal basis"),
            (("用途", "何に使", "purpose", "使い道"), "用途", "use"),
            (("提供する情報", "移転する情報", "どんな情報", "何の情報", "what information"), "する情報", "information"),
            (("方法", "どうやって", "how is", "how are", "method"), "方法", "method"),
            (("頻度", "時期", "how often", "frequency"), "時期・頻度", "timing and frequency"),
            (("委託内容", "何を委託", "業務内容", "what work", "what is outsourced"), "委託内容", "work outsourced"),
            (("取扱者数", "何人"), "取扱者数", "number of handlers"),
            (("機能", "function"), "機能", "functions"),
            (("接続", "connect"), "接続", "connections"),
            (("本人の数",), "本人の数", "number of people"),
            (("範囲",), "範囲", "scope of people"),
        ]
        for keys, label, en in table:
            if q.has(*keys):
                if label == "方法" and kind == "委託事項":
                    label = "提供方法"
                return label, en
        return None

    def _record_fields(self, q: Question, card: Card, records: list[Record], sub: tuple[str, str]) -> Answer | None:
        key, en = sub
        parts: list[str] = []
        cites: list[Citation] = []
        for r in records:
            f = r.get(key)
            if f is None or f.empty:
                continue
            value = _show(f)
            parts.append(f"{r.title}: {value}")
            cites.append(self.cite_field(card, r.breadcrumb, f, prefer=(f.selected or [None])[0]))
        if not parts:
            return self.abstain(q, [], f"{records[0].title if records else ''}の「{key}」は記載がありません。",
                                f"The {en} is not stated.", card=card)
        text = self._say(q, f"{card.label}：" + " / ".join(parts), f"{card.label} — {en}: " + " / ".join(parts))
        return Answer(q.text, text, False, cites, kind="span")

    def _record_list(self, q: Question, card: Card, target: str, records: list[Record], en: str) -> Answer:
        names: dict[str, Record] = {}
        unnamed: list[Record] = []
        for r in records:
            name = self._record_name(r, target)
            if not name:
                unnamed.append(r)
                continue
            names.setdefault(name, r)
        cites = []
        for name, r in names.items():
            f = r.get("委託先名") if target == "委託先" else r.get("システムの名称") if target == "システム" else None
            if f is not None and not f.empty:
                cites.append(self.cite_field(card, r.breadcrumb, f))
            else:
                cites.append(self.cite(card, r.breadcrumb, name, r.line, r.end_line))
        items = "、".join(names)
        label = {"提供先": "提供先", "移転先": "移転先", "委託先": "委託先", "システム": "システム"}[target]
        extra_ja = f"（他に名称の読み取れない{label}が{len(unnamed)}件）" if unnamed else ""
        extra_en = f" ({len(unnamed)} more without a legible name)" if unnamed else ""
        blocks = len(records)
        text = self._say(
            q,
            f"{card.label}の{label}は次の{len(names)}件です（{blocks}ブロック）：{items}{extra_ja}",
            f"According to {card.label}, the {en} are ({len(names)} distinct, {blocks} blocks): {items}{extra_en}.",
        )
        return Answer(q.text, text, False, cites, kind="list")

    @staticmethod
    def _record_name(r: Record, target: str) -> str | None:
        if target == "委託先":
            v = r.value("委託先名")
            return v.split("\n")[0].strip() if v else None
        if target == "システム":
            v = r.value("システムの名称")
            name = (v.split("\n")[0].strip() if v else r.name) or ""
            return re.split(r"\s*[(（](以下|注)|\s\(注\)", name)[0].strip() or None
        return r.name

    # == yes / no from selected options =================================================================
    def yes_no(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        if not q.yesno:
            return None
        choices = [
            (("再委託",), "再委託の有無"),
            (("委託先", "委託"), "委託の有無"),
            (("提供先", "移転先", "提供", "移転"), "提供・移転の有無"),
            (("情報連携", "情報提供ネットワーク"), "実施の有無"),
            (("重大事故", "事故"), "重大事故"),
        ]
        for keys, label in choices:
            if not (any(k in q.terms for k in keys) or q.has(*keys)):
                continue
            found = [(node, f) for node, f in card.fields() if label in f.key and f.selected]
            if not found:
                found = [(node, f) for node, f in card.fields() if label in f.key and not f.empty]
            if not found:
                return self.abstain(q, hits, f"「{label}」の記載が見つかりません。", f"'{label}' is not stated.", card=card)
            node, f = found[0]
            chosen = f.selected or []
            if label == "提供・移転の有無":
                want = "移転" if ("移転" in q.norm and "提供" not in q.norm) else "提供"
                positive = any(want in c and "行っている" in c for c in chosen)
            else:
                positive = any(c.startswith(POSITIVE) and not c.startswith(NEGATIVE) for c in chosen)
            if not chosen:
                return self.abstain(q, hits, f"「{f.label}」の選択肢が読み取れません。", f"The choice for '{f.label}' cannot be read.", card=card)
            shown = "・".join(chosen)
            path = node.breadcrumb
            cite = self.cite_field(card, path, f, prefer=chosen[0])
            text = self._say(q, f"{'はい' if positive else 'いいえ'}。{card.label}の「{f.key}」は[{shown}]です。",
                             f"{'Yes' if positive else 'No'}: in {card.label}, '{f.key}' is [{shown}].")
            return Answer(q.text, text, False, [cite], kind="yesno")
        return None

    # == single fields ==================================================================================
    def fields(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        if "記録項目" in q.terms and q.has("記録項目", "記録される", "項目", "record item", "data item"):
            return self._record_items(q, card, hits)
        if "変更箇所" in q.terms and q.has("変更", "change", "amend", "revision"):
            return self._changes(q, card, hits)
        for terms, keys, en in FIELD_TARGETS:
            if not any(t in q.terms for t in terms):
                continue
            if keys[0] == "保管期間" and not q.has("期間", "いつまで", "何年", "how long", "retention", "period"):
                continue
            for key in keys:
                found = self._find_field(card, key, q)
                if found is not None:
                    node, f = found
                    if f.empty:
                        continue
                    value = _show(f)
                    cite = self.cite_field(card, node.breadcrumb, f, prefer=(f.selected or [None])[0])
                    text = self._say(q, f"{value}（{card.label}「{node.breadcrumb.split(' > ')[-1]} > {f.key}」）",
                                     f"{card.label} — {en}: {value}")
                    return Answer(q.text, text, False, [cite], kind="span")
            return self.abstain(q, hits, f"「{keys[0]}」の記載が見つかりません。", f"The {en} is not stated.", card=card)
        return self._best_field(q, card, hits)

    def _find_field(self, card: Card, key: str, q: Question) -> tuple[Section | Record, Field] | None:
        best: tuple[float, tuple[Section | Record, Field]] | None = None
        words = content_words(q, self.ctx.searcher, card)
        for node, f in card.fields():
            if key not in f.key or isinstance(node, Record) and node.kind == "変更箇所":
                continue
            if "III" in node.breadcrumb.split(" ")[0] and not q.has("リスク", "対策", "risk"):
                penalty = 2.0
            else:
                penalty = 0.0
            score = (f.key == key) * 2 - penalty - (1 if f.empty else 0)
            score += sum(1 for w in words if w in normalize(node.breadcrumb + f.value)) * 0.5
            if q.has("問合せ", "問い合わせ", "contact") and "問合せ" in node.breadcrumb:
                score += 2
            if best is None or score > best[0]:
                best = (score, (node, f))
        return best[1] if best else None

    def _record_items(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        part = next((s for s in card.sections if "記録項目" in s.title), None)
        if part is None:
            return self.abstain(q, hits, "記録項目の別添がありません。", "The report has no list of record items.", card=card)
        groups = [r for s in part.walk() for r in s.records if r.kind == "記録項目"]
        cites: list[Citation] = []
        if groups:
            shown = []
            for r in groups:
                items = [f.value for f in r.fields]
                shown.append(f"【{r.name}】" + "、".join(items[:12]) + ("…" if len(items) > 12 else ""))
                if r.fields:
                    cites.append(self.cite(card, r.breadcrumb, r.fields[0].value, r.fields[0].line, r.fields[0].end_line))
            body = " ".join(shown)
        else:
            values = [f for s in part.walk() for f in s.fields if not f.empty]
            body = " ".join(_clip(f.value, 200) for f in values[:6])
            cites = [self.cite_field(card, part.breadcrumb, f) for f in values[:3]]
        if not body.strip():
            return self.abstain(q, hits, "記録項目の記載がありません。", "No record items are listed.", card=card)
        text = self._say(q, f"{card.label}の記録項目: {body}", f"Record items of {card.label}: {body}")
        return Answer(q.text, text, False, cites, kind="list")

    def _changes(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        rows = [r for r in card.records("変更箇所") if r.value("変更日")]
        if not rows:
            return self.abstain(q, hits, "変更箇所の記載がありません。", "No change history is stated.", card=card)
        latest = max(date_key(r.value("変更日")) for r in rows)
        chosen = [r for r in rows if date_key(r.value("変更日")) == latest]
        items = []
        cites = []
        for r in chosen[:8]:
            item = r.value("項目") or r.value("記載") or ""
            items.append(_clip(item.replace("\n", " "), 80))
            f = r.get("変更日")
            assert f is not None
            cites.append(self.cite_field(card, r.breadcrumb, f))
        date = chosen[0].value("変更日")
        text = self._say(q, f"{card.label}の最新の変更日は{date}です（{len(chosen)}件）：" + " / ".join(i for i in items if i),
                         f"The latest change in {card.label} is dated {date} ({len(chosen)} rows): " + " / ".join(i for i in items if i))
        return Answer(q.text, text, False, cites[:5], kind="date")

    def _best_field(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        """No template term recognised: the retrieved field whose label best matches the question."""
        words = content_words(q, self.ctx.searcher, card)
        text_all = normalize(self.ctx.source(card.id).raw)
        missing = [] if q.english else [w for w in words if len(w) >= 2 and w not in text_all]
        if missing or not words and not q.terms:
            return self.abstain(
                q, hits, f"「{'・'.join(missing) or q.norm[:20]}」に当たる記載がありません。" if missing else "",
                f"Nothing in the report matches {', '.join(missing) or 'the question'}.", card=card,
            )
        card_hits = [h for h in hits if h.chunk.card == card.id]
        best: tuple[float, Section | Record, Field] | None = None
        for rank, h in enumerate(card_hits[:8]):
            for node, f in card.fields():
                if f.empty or f.end_line < h.chunk.line or f.line > h.chunk.end_line:
                    continue
                label_hits = sum(1 for w in words if w in normalize(f.label))
                value_hits = sum(1 for w in words if w in normalize(f.value))
                score = label_hits * 2 + value_hits * 0.5 + 1.0 / (rank + 1)
                if best is None or score > best[0]:
                    best = (score, node, f)
        if best is None or best[0] < 1.5:
            return self.abstain(q, card_hits, "", "", card=card)
        _, node, f = best
        value = _show(f)
        cite = self.cite_field(card, node.breadcrumb, f)
        text = self._say(q, f"{value}（{card.label}「{node.breadcrumb.split(' > ')[-1]} > {f.key}」）", f"{card.label} — {f.key}: {value}")
        return Answer(q.text, text, False, [cite], kind="span")

    # == across reports =================================================================================
    def cross(self, q: Question, scope: tuple[str, ...]) -> Answer | None:
        cards = [self.ctx.cards[c] for c in scope] if scope else list(self.ctx.cards.values())
        if q.has("全項目評価書", "重点項目評価書", "基礎項目評価書", "full assessment", "priority assessment"):
            kind = "全項目評価書" if q.has("全項目", "full") else "基礎項目評価書" if "基礎項目" in q.norm else "重点項目評価書"
            chosen = [c for c in cards if c.kind == kind]
            return self._card_list(q, chosen, f"{kind}は", lambda c: (c.kind or "", 1, 80), f"{kind} reports")
        if q.has("新しい", "古い", "newest", "latest", "oldest", "most recent"):
            dated = [c for c in cards if c.published]
            if not dated:
                return None
            newest = not q.has("古い", "oldest")
            pick = (max if newest else min)(dated, key=lambda c: date_key(c.published))
            undated = [c.label for c in cards if not c.published]
            note = f"（公表日の記載がない評価書: {'、'.join(undated)}）" if undated else ""
            cite = self.cite(pick, "表紙", pick.published or "", 1, 80)
            text = self._say(q, f"公表日が最も{'新しい' if newest else '古い'}のは{pick.label}（{pick.published}）です。{note}",
                             f"The {'newest' if newest else 'oldest'} by publication date is {pick.label} ({pick.published}).")
            return Answer(q.text, text, False, [cite], cards=[pick.id], kind="cross")
        target = self._record_target(q)
        words = [w for w in content_words(q, self.ctx.searcher, None) if len(w) >= 2]
        if target and words:
            kind, en = RECORD_TARGETS[target]
            matched: list[tuple[Card, Record]] = []
            for c in cards:
                for r in c.records(kind):
                    text = normalize(r.title + " " + " ".join(f.value for f in r.fields))
                    if all(w in text for w in words):
                        matched.append((c, r))
                        break
            chosen = [c for c, _ in matched]
            cites = [self.cite(c, r.breadcrumb, words[0], r.line, r.end_line) for c, r in matched]
            names = "、".join(c.label for c in chosen)
            if not chosen:
                return self.abstain(q, [], f"「{'・'.join(words)}」を{target}に含む評価書はありません。",
                                    f"No report lists {' '.join(words)} among its {en}.")
            text = self._say(q, f"{'・'.join(words)}を{target}に含む評価書は{len(chosen)}件です：{names}",
                             f"{len(chosen)} report(s) list it among their {en}: {names}")
            return Answer(q.text, text, False, cites, cards=[c.id for c in chosen], kind="cross")
        if q.has("いくつ", "何件", "how many"):
            return self._card_list(q, cards, "評価書は", lambda c: (c.title or "", 1, 80), "reports")
        return None

    def _card_list(self, q: Question, cards: list[Card], what: str, hint: Callable[[Card], tuple[str, int, int]], en: str) -> Answer:
        if not cards:
            return self.abstain(q, [], f"該当する{what.rstrip('は')}はありません。", f"No {en} in this corpus.")
        cites = [self.cite(c, "表紙", *hint(c)) for c in cards]
        names = "、".join(c.label for c in cards)
        text = self._say(q, f"{what}{len(cards)}件です：{names}", f"{len(cards)} {en}: {names}")
        return Answer(q.text, text, False, cites, cards=[c.id for c in cards], kind="cross")


# == text helpers =======================================================================================


def _show(f: Field) -> str:
    """A field's answer as a person would read it: the chosen option, else the value, kept short."""
    if f.selected:
        return "・".join(f.selected)
    value = re.sub(r"\s*<選択肢>.*", "", f.value, flags=re.S).strip()
    return _clip(value.replace("\n", " "), MAX_VALUE)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind("。"), cut.rfind("、"))
    return (cut[: end + 1] if end > limit // 2 else cut) + "…"


def _hints(text: str) -> Iterable[str]:
    """Pieces of a value to look for in the raw file, longest first (values may span wrapped lines)."""
    text = normalize(text).strip()
    first = text.split("\n")[0].strip()
    seen = set()
    for cand in (first[:80], first[:40], first[:20], first[:10]):
        cand = cand.strip()
        if len(cand) >= 2 and cand not in seen:
            seen.add(cand)
            yield cand


def content_words(q: Question, searcher: HybridSearcher, card: Card | None) -> list[str]:
    """The question's own content words: not template vocabulary, not the report's name, not question words."""
    from qa.glossary import AFFAIRS, TERMS

    phrases = {p.lower() for ps in TERMS.values() for p in ps} | set(TERMS)
    phrases |= {p.lower() for ps in AFFAIRS.values() for p in ps} | set(AFFAIRS)
    identity: set[str] = set()
    for c in searcher.index.cards.values() if card is None else [card]:
        for name in (c.municipality, c.title, c.affair):
            if name:
                identity |= set(searcher.segmenter.tokens(name))
                identity.add(normalize(name))
    if card is None:
        for c in searcher.index.cards.values():
            if c.municipality:
                identity.add(re.sub(r"(市|町|村|区)$", "", c.municipality))
    words = []
    for token in searcher.segmenter.tokens(q.norm):
        t = token.lower()
        # Verbs and adjectives (normalized forms end in kana: 使う, 居る) are how people ask, not what.
        if t in GENERIC or t in identity or len(t) < 2 or re.fullmatch(r"[\d.]+|.*[ぁ-ん]", t):
            continue
        if any(t in p or p in t for p in phrases if len(p) >= 2):
            continue
        words.append(t)
    return list(dict.fromkeys(words))
