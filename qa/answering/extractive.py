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
from qa.answering.understanding import Question, date_key
from qa.parsing.card import Card, Field, Record, Section
from qa.reading import SourceText, normalize
from qa.retrieval import Hit, HybridSearcher

NOT_STATED_JA = "評価書に記載が見つかりません。"
NOT_STATED_EN = "Not stated in the report."
MAX_VALUE = 220

RECORD_TARGETS = {
    "提供先": ("提供先", "recipients (提供先)"),
    "移転先": ("移転先", "transferees within the organisation (移転先)"),
    "委託先": ("委託事項", "contractors (委託先)"),
    "システム": ("システム", "systems"),
}
KIND_TO_TARGET = {"提供先": "提供先", "移転先": "移転先", "委託事項": "委託先", "システム": "システム"}

# Field targets: phrases in the question → label keys (in order of preference), English name, section hint.
FIELD_TARGETS: list[tuple[tuple[str, ...], tuple[str, ...], str, str | None]] = [
    (("使用者数", "職員", "使う人", "使用する人", "staff", "employees"), ("使用者数",), "number of staff using it", None),
    (("使用する部署", "使用部署", "使う部署", "使っている部署", "使用する支所", "支所", "departments using"), ("使用部署",), "departments using it", None),
    (("使用開始日", "使い始め", "使用を開始", "使用開始"), ("使用開始日",), "start of use", None),
    (("保有開始", "いつから保有", "保有されて", "保有している"), ("保有開始日",), "held since", None),
    (("基礎項目評価",), ("実施日",), "date of the threshold assessment", "基礎項目評価"),
    (("第三者点検",), ("方法", "実施日", "結果"), "third-party review", "第三者点検"),
    (("意見の聴取", "パブリックコメント", "意見募集"), ("方法", "実施日・期間", "主な意見の内容"), "public consultation", "意見の聴取"),
    (("保管期間", "いつまで", "何年", "how long", "retention", "保管する期間"), ("保管期間",), "retention period", None),
    (("保管場所", "どこに保管", "どこに置", "置かれ", "サーバー", "サーバ", "stored", "where is", "保管"), ("保管場所",), "storage", None),
    (("消去方法", "消去", "削除", "廃棄", "delete", "erase", "dispos"), ("消去方法",), "erasure method", None),
    (("手数料", "fee"), ("手数料",), "fees", None),
    (("開示", "請求先", "disclosure"), ("請求先", "請求方法"), "where to request disclosure", None),
    (("問合せ", "問い合わせ", "問合わせ", "連絡先", "contact", "inquir", "enquir", "誰に聞", "questions about", "send questions"), ("連絡先",), "contact", "問合せ"),
    (("担当部署", "所属長", "役職", "department in charge"), ("部署", "所属長の役職名"), "department in charge", "担当部署"),
    (("対象人数",), ("対象人数",), "number of people covered", None),
    (("本人の数", "何人", "how many people", "individuals", "人数"), ("対象となる本人の数", "対象人数"), "number of people covered", "基本情報"),
    (("本人の範囲", "誰の情報", "whose", "range of persons"), ("対象となる本人の範囲",), "people covered", "基本情報"),
    (("入手元", "どこから", "入手先", "から入手", "から情報を入手", "obtain", "sources"), ("入手元",), "sources", None),
    (("入手方法", "どうやって入手", "入手の方法"), ("入手方法",), "how it is obtained", None),
    (("使用目的", "目的", "purpose"), ("使用目的",), "purpose of use", None),
    (("情報照会", "情報連携", "情報提供ネットワーク"), ("法令上の根拠", "実施の有無"), "network linkage", "情報連携"),
    (("個人番号の利用", "番号法の項", "法令上の根拠", "根拠", "legal basis"), ("法令上の根拠",), "legal basis", "個人番号の利用"),
    (("ファイル名", "ファイルは何", "ファイルの名前", "ファイルの名称", "which files", "name of the"), ("特定個人情報ファイル名",), "file name", None),
    (("記録される項目", "項目数", "記録項目数"), ("記録される項目",), "number of record items", None),
    (("重大事故", "serious", "incident"), ("重大事故",), "serious incidents", None),
    (("しきい値", "threshold"), ("しきい値",), "threshold assessment", None),
    (("ファイル簿", "個人情報ファイル簿"), ("ファイル簿",), "personal information file register", None),
    (("事務の名称", "事務名"), ("事務の名称",), "name of the business", None),
    (("事務の内容",), ("事務の内容",), "description of the business", None),
]
POSITIVE = ("委託する", "再委託する", "提供を行っている", "移転を行っている", "実施する", "行っている", "発生あり", "定めている",
            "接続する", "記録を残している", "保管している", "いる")
NEGATIVE = ("委託しない", "再委託しない", "行っていない", "実施しない", "発生なし", "定めていない", "接続しない", "保管していない",
            "残していない")
MONEY = ("いくら", "金額", "費用", "予算", "契約額", "契約金額", "how much", "cost", "budget", "price")


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
        named_one = len(scope) == 1 and len(self.ctx.cards) > 1
        if q.cross and (len(scope) > 1 or not explicit) and not named_one:
            cross = self.cross(q, scope)
            if cross is not None:
                return cross
        card = self.pick_card(scope, hits)
        if card is None:
            return self.abstain(q, hits, "該当する評価書が見つかりません。", "No matching report was found.")
        card_hits = [h for h in hits if h.chunk.card == card.id]
        refusal = self._out_of_scope(q, card, card_hits)
        if refusal is not None:
            return refusal
        for handler in (self.metadata, self.changes, self.records, self.yes_no, self.fields):
            result = handler(q, card, card_hits)
            if result is not None:
                result.cards = [card.id]
                return result
        return self.abstain(q, card_hits, "", "", card=card)

    # == refusals =======================================================================================
    def _out_of_scope(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        text = self._norm_text(card)
        money = next((w for w in MONEY if w in q.norm.lower()), None)
        if money and not any(w in f.key for _, f in card.fields() for w in ("金額", "費用", "予算")):
            asked = next((w for w in q.words if w in ("予算", "金額", "費用", "契約額", "契約金額")), money)
            return self.abstain(q, hits, f"「{asked}」は評価書の様式に記載欄がありません。",
                                f"The assessment form has no field for '{asked}' (amounts or costs).", card=card)
        if q.has("正確に", "正確な", "exact") and q.has("何人", "人数", "how many", "number"):
            return self.abstain(q, hits, "評価書は人数を区分（例: 10万人以上100万人未満）でしか記載しません。",
                                "The form states only a range of people (e.g. 100,000 to 1,000,000), not an exact number.", card=card)
        annex = re.search(r"別紙\s*(\d+)", q.norm)
        if annex and not any(f"別紙{annex.group(1)}" in s.title.replace(" ", "") for s in card.walk()):
            return self.abstain(q, hits, f"別紙{annex.group(1)}は本文から参照されていますが、評価書ファイルには含まれていません。",
                                f"Annex {annex.group(1)} is referred to but not included in the report file.", card=card)
        missing = [w for w in q.words if not q.english and normalize(w).lower() not in text]
        missing += [e for e in q.entities if q.english and re.search(r"[一-龥ァ-ヴ]", e) and normalize(e).lower() not in text]
        if missing:
            return self.abstain(q, hits, f"「{'・'.join(missing)}」についての記載がありません。",
                                f"Nothing in the report is about {', '.join(missing)}.", card=card)
        return None

    def _norm_text(self, card: Card) -> str:
        return normalize(self.ctx.source(card.id).raw).lower()

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
        texts = None
        for place in q.place_names:
            stem = re.sub(r"(都|道|府|県|市|区|町|村)$", "", place)
            if place in known or stem in stems or any(place in k or k in place for k in known):
                continue
            if texts is None:
                texts = [self._norm_text(c) for c in self.ctx.cards.values()]
            if len(stem) >= 2 and not any(place in t for t in texts):
                return place
        return None

    # == citations and wording ==========================================================================
    def cite(self, card: Card, section: str, hint: str, first: int, last: int) -> Citation:
        """A verbatim quote for `hint` within lines [first, last]; falls back to the first raw line there."""
        source = self.ctx.source(card.id)
        for candidate in _hints(hint):
            found = source.find_quote(candidate, first, last)
            if found:
                line, quote = found
                return Citation(card.id, card.label, card.source, section, quote, line)
        line = max(1, min(first, source.line_count))
        for n in range(line, min(last, source.line_count) + 1):
            raw = source.raw_line(n).strip()
            if raw:
                return Citation(card.id, card.label, card.source, section, raw[:160], n)
        return Citation(card.id, card.label, card.source, section, source.raw_line(line), line)

    def cite_field(self, card: Card, path: str, f: Field, prefer: str | None = None) -> Citation:
        return self.cite(card, path, prefer or f.value or f.label, f.line, f.end_line)

    def abstain(self, q: Question, hits: list[Hit], reason_ja: str, reason_en: str, card: Card | None = None) -> Answer:
        near: list[str] = []
        for h in hits[:3]:
            label = f"{h.chunk.section}" if card else f"{self.ctx.cards[h.chunk.card].label}: {h.chunk.section}"
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

    @staticmethod
    def _say(q: Question, ja: str, en: str) -> str:
        return en if q.english else ja

    # == metadata (cover page) ===========================================================================
    def metadata(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        wanted = [
            ("公表日", card.published, "publication date", "公表日", ("公表日", "いつ公表", "公表された", "公表されて", "published", "publication")),
            ("評価書番号", card.number, "report number", "評価書番号", ("評価書番号", "report number")),
            ("評価実施機関", card.evaluator, "evaluating body", "評価実施機関名", ("評価実施機関名", "評価実施機関は", "evaluat")),
        ]
        for term, value, en, label, phrases in wanted:
            if not q.has(*phrases) or q.has("部署", "担当", "department"):
                continue
            if value is None:
                return self.abstain(q, hits, f"この評価書には{label}の記載がありません。",
                                    f"This report does not state its {en}.", card=card)
            cite = self.cite(card, "表紙", value, 1, min(80, self.ctx.source(card.id).line_count))
            text = self._say(q, f"{value}（{card.label}の{label}）", f"The {en} of {card.label} is {value}.")
            return Answer(q.text, text, False, [cite], kind="date" if term == "公表日" else "span")
        kinds = ("全項目評価書", "重点項目評価書", "基礎項目評価書")
        if card.kind and (q.has("種類", "kind of", "type of", "which kind") or (q.yesno and q.has(*kinds))):
            asked = next((k for k in kinds if k in q.norm), None)
            cite = self.cite(card, "表紙", card.kind, 1, min(80, self.ctx.source(card.id).line_count))
            if asked and q.yesno:
                yes = card.kind == asked
                text = self._say(q, f"{'はい' if yes else 'いいえ'}。{card.label}は{card.kind}です。",
                                 f"{'Yes' if yes else 'No'}: {card.label} is a {card.kind}.")
                return Answer(q.text, text, False, [cite], kind="yesno")
            text = self._say(q, f"{card.kind}です（{card.label}）。", f"{card.label} is a {card.kind}.")
            return Answer(q.text, text, False, [cite], kind="span")
        return None

    # == change history =================================================================================
    def changes(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        if not (q.has("変更", "変わ", "追加された", "削除された", "改訂", "修正された", "changed", "added", "removed", "revised")
                and (q.has("いつ", "when", "変更日", "最新", "最近", "latest") or "変更箇所" in q.norm)):
            return None
        rows = [r for r in card.records("変更箇所") if r.value("変更日")]
        if not rows:
            return self.abstain(q, hits, "変更箇所の記載がありません。", "No change history is stated.", card=card)
        words = [normalize(w).lower() for w in (*q.entities, *q.words, *q.quoted)]
        words += re.findall(r"(\d+)\s*件", q.norm)
        words += [t for t in ("委託", "提供", "移転", "システム", "重大事故") if t in q.norm]
        words = list(dict.fromkeys(words))
        # 「…が総合キャリアオプションに変わった」: the row whose new text says so is the one asked about.
        became = re.search(r"([^\s、。がは]{2,40}?)(?:に|へ)(?:変わ|変更|替わ)", q.norm)
        target_value = normalize(became.group(1)).lower() if became else None
        if words:
            def score(r: Record) -> float:
                text = normalize(" ".join(f.value for f in r.fields)).lower()
                after = normalize(r.value("変更後の記載") or "").lower()
                bonus = 10.0 if target_value and target_value in after else 0.0
                return bonus + sum(1.0 + 0.1 * len(w) + (2.0 if w in after else 0.0) for w in words if w in text)

            best = max(score(r) for r in rows)
            chosen = [r for r in rows if score(r) == best and best > 0]
        else:
            chosen = []
        if not chosen:
            latest = max(date_key(r.value("変更日")) for r in rows)
            chosen = [r for r in rows if date_key(r.value("変更日")) == latest]
        dates = list(dict.fromkeys(r.value("変更日") or "" for r in chosen))
        items = [_clip((r.value("項目") or r.value("記載") or "").replace("\n", " "), 80) for r in chosen[:4]]
        cites = []
        for r in chosen[:4]:
            f = r.get("変更日")
            assert f is not None
            cites.append(self.cite_field(card, r.breadcrumb, f))
        text = self._say(
            q,
            f"{'、'.join(dates)}（{card.label}の変更箇所：{' / '.join(i for i in items if i)}）",
            f"{', '.join(dates)} — change history of {card.label}: {' / '.join(i for i in items if i)}",
        )
        return Answer(q.text, text, False, cites, kind="date")

    # == blocks (提供先, 移転先, 委託先, システム) ============================================================
    def _record_target(self, q: Question) -> str | None:
        stripped = re.sub(r"(情報提供ネットワークシステム|住民基本台帳ネットワークシステム|庁内連携システム|ネットワークシステム)", "", q.norm)
        if q.record_numbers:
            m = re.search(r"(提供先|移転先|委託事項|システム)\s*\d", q.norm)
            if m:
                return KIND_TO_TARGET[m.group(1)]
        if re.search(r"移転", stripped) or "transfer" in q.norm.lower():
            return "移転先"
        if "委託先" in q.terms or "再委託" in q.terms or re.search(r"委託|外注|outsourc|contractor", stripped, re.I):
            return "委託先"
        if re.search(r"(提供先|への提供|に提供|提供され|提供する相手|受け取|渡さ|渡す|渡る|誰に|recipient|receive)", stripped, re.I):
            return "提供先"
        if re.search(r"company|companies|firm", stripped, re.I):
            return "委託先"
        if re.search(r"システム|system", stripped, re.I):
            return "システム"
        return None

    def records(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        target = self._record_target(q)
        if target is None:
            return None
        kind, en = RECORD_TARGETS[target]
        records = card.records(kind)
        if not records:
            if target == "システム" and not q.has("システム", "system"):
                return None
            return self.abstain(q, hits, f"この評価書には{kind}の記載がありません。", f"This report lists no {en}.", card=card)
        if q.record_numbers:
            chosen = [r for r in records if r.number in q.record_numbers]
            if not chosen:
                return self.abstain(q, hits, f"{kind}{q.record_numbers[0]}は記載されていません。",
                                    f"There is no {kind}{q.record_numbers[0]} in this report.", card=card)
            named = True
        else:
            chosen, named = self._narrow(q, card, records, target)
        subs = self._sub_fields(q, kind)
        if target == "システム" and not q.record_numbers and any(q.has(*t[0]) for t in FIELD_TARGETS):
            return None  # 「入手方法の『その他』に書かれているシステム」: a field's question, not a list of systems
        if not named and not subs and not q.count and not q.yesno and self._about_something_else(q, card, records):
            return None
        if q.yesno:
            if q.has("再委託", "subcontract") and target == "委託先":
                subs = [("再委託の有無", "subcontracting")] + [s for s in subs if s[0] == "再委託事項"]
                return self._record_fields(q, card, chosen, subs, yesno=True)
            if named and chosen and len(chosen) < len(records):
                return self._record_presence(q, card, chosen, target)
            return None
        if q.count and not subs and not named:
            return self._record_count(q, card, records, target, en)
        if subs:
            return self._record_fields(q, card, chosen, subs)
        if named and len(chosen) <= 2 and q.has("名称", "名前", "name", "何という"):
            return self._record_list(q, card, target, chosen, en, by_title=True)
        return self._record_list(q, card, target, chosen, en)

    def _about_something_else(self, q: Question, card: Card, records: list[Record]) -> bool:
        """The question's own words are in the report but in none of these blocks (委託先の操作ログ…)."""
        words = [normalize(w).lower() for w in (*q.words, *q.entities) if len(w) >= 2]
        if not words:
            return False
        blocks = " ".join(normalize(r.title + " " + " ".join(f.value for f in r.fields)).lower() for r in records)
        return any(w not in blocks for w in words)

    def _record_text(self, r: Record, keys: Iterable[str]) -> str:
        parts = [r.name or ""] + [f.value for f in r.fields if any(k in f.key for k in keys)]
        return normalize(" ".join(parts)).lower()

    def _narrow(self, q: Question, card: Card, records: list[Record], target: str) -> tuple[list[Record], bool]:
        """Blocks the question points at: by their name (or contractor, system name), else by what they receive."""
        names = [normalize(x).lower() for x in (*q.entities, *q.quoted) if len(x) >= 3]
        words = [normalize(w).lower() for w in q.words if len(w) >= 2]
        if names or words:
            keys = ("委託先名", "システムの名称", "委託内容")
            scored = []
            for r in records:
                text = self._record_text(r, keys)
                s = sum(3 for n in names if n in text) + sum(1 for w in words if w in text)
                scored.append((s, r))
            best = max(s for s, _ in scored)
            if best >= 2:
                top = [r for s, r in scored if s == best]
                if len(top) < len(records):
                    return top, True
        info_keys = ("する情報", "用途")
        info = [r for r in records if any(n in self._record_text(r, info_keys) for n in names + words)]
        stated = [r for r in records if "情報" in (r.value("提供する情報") or r.value("移転する情報") or "")]
        if info and len(info) < len(records):
            # 004's blocks are torn apart: a block whose ③ went missing cannot be judged; keep it when
            # every block that does state its information matches.
            if stated and all(r in info for r in stated):
                return records, False
            return info, False
        return records, False

    def _sub_fields(self, q: Question, kind: str) -> list[tuple[str, str]]:
        table = [
            (("法令上の根拠", "根拠", "legal basis", "basis", "article", "under which"), "法令上の根拠", "legal basis"),
            (("用途", "何に使", "使い道", "what for", "used for"), "用途", "use"),
            (("提供する情報", "移転する情報", "どんな情報", "何の情報", "what information", "which information"), "する情報", "information"),
            (("方法", "どうやって", "how is", "how are", "by what means", "method"), "方法", "method"),
            (("頻度", "時期", "タイミング", "いつ", "how often", "frequency", "when"), "時期・頻度", "timing and frequency"),
            (("委託内容", "何を委託", "業務内容", "作業", "どんな業務", "what work", "what is outsourced", "entrusted with"), "委託内容", "work outsourced"),
            (("取扱者数", "人数", "何人", "handlers"), "取扱者数", "number of handlers"),
            (("再委託事項",), "再委託事項", "subcontracted work"),
            (("許諾方法",), "再委託の許諾方法", "how subcontracting is approved"),
            (("確認方法", "どうすれば確認", "確認できる"), "委託先名の確認方法", "how to check the contractor's name"),
            (("委託先名", "委託先は", "委託している先", "company"), "委託先名", "contractor"),
            (("機能", "function"), "機能", "functions"),
            (("接続", "connect"), "他のシステムとの接続", "connections"),
            (("本人の数",), "本人の数", "number of people"),
            (("範囲",), "範囲", "scope of people"),
        ]
        subs: list[tuple[str, str]] = []
        for keys, label, en in table:
            if q.has(*keys):
                if label == "方法" and kind == "委託事項":
                    label = "提供方法"
                if label == "委託先名" and kind != "委託事項":
                    continue
                if label in ("時期・頻度", "方法") and kind in ("システム",):
                    continue
                subs.append((label, en))
        if kind == "委託事項" and subs == [("委託先名", "contractor")]:
            return []
        return subs

    def _record_fields(
        self, q: Question, card: Card, records: list[Record], subs: list[tuple[str, str]], yesno: bool = False
    ) -> Answer:
        groups: dict[str, list[str]] = {}
        cites: list[Citation] = []
        positive: list[bool] = []
        for r in records:
            for key, _ in subs:
                f = r.get(key)
                if f is None or f.empty:
                    continue
                value = _headings(f.value) if key == "機能" else _show(f, q.words)
                groups.setdefault(f"{f.key}: {value}", []).append(r.title)
                cites.append(self.cite_field(card, r.breadcrumb, f, prefer=(f.selected or [None])[0]))
                if key == "再委託の有無":
                    positive.append(bool(f.selected) and f.selected[0].startswith("再委託する"))
        if not groups:
            keys = "・".join(k for k, _ in subs)
            return self.abstain(q, [], f"{records[0].title if len(records) == 1 else '各ブロック'}の「{keys}」は記載がありません。",
                                f"The {', '.join(e for _, e in subs)} is not stated.", card=card)
        parts = []
        for value, titles in groups.items():
            who = "、".join(titles) if len(titles) <= 4 else f"{'、'.join(titles[:3])} ほか{len(titles) - 3}件"
            parts.append(f"{value}（{who}）" if len(records) > 1 or len(groups) > 1 else value)
        prefix = ""
        if yesno and positive:
            yes = any(positive)
            prefix = self._say(q, "はい。" if yes else "いいえ。", "Yes. " if yes else "No. ")
        text = self._say(q, f"{prefix}{' / '.join(parts)}（{card.label}）", f"{prefix}{card.label} — " + " / ".join(parts))
        return Answer(q.text, text, False, cites[:12], kind="yesno" if yesno else "span")

    def _record_presence(self, q: Question, card: Card, chosen: list[Record], target: str) -> Answer:
        cites = [self.cite(card, r.breadcrumb, r.name or r.title, r.line, r.end_line) for r in chosen]
        names = "、".join(r.title for r in chosen)
        # Words beyond the block's name (「定例報告会は含まれる？年何回？」): the sentence that has them.
        words = [w for w in q.words if not any(normalize(w).lower() in normalize(r.name or "").lower() for r in chosen)]
        detail = ""
        if words:
            best = max(
                ((sum(1 for w in words if normalize(w).lower() in normalize(f.value).lower()), r, f) for r in chosen for f in r.fields),
                key=lambda x: x[0], default=(0, None, None),
            )
            if best[0] and best[2] is not None and best[1] is not None:
                detail = "：" + _show(best[2], words)
                cites.append(self.cite_field(card, best[1].breadcrumb, best[2], prefer=_show(best[2], words)))
        text = self._say(q, f"はい。{card.label}の{target}（{names}）に記載があります{detail}",
                         f"Yes: {card.label} lists it — {names}{detail}.")
        return Answer(q.text, text, False, cites, kind="yesno")

    def _record_count(self, q: Question, card: Card, records: list[Record], target: str, en: str) -> Answer:
        names = list(dict.fromkeys(n for r in records if (n := self._record_name(r, target))))
        cites = [self.cite(card, r.breadcrumb, r.name or r.title, r.line, r.end_line) for r in records[:10]]
        label = "委託の有無" if target == "委託先" else "提供・移転の有無"
        stated = next((f for n, f in card.fields() if _key_is(f.key, label) and not _in_changes(n) and not f.empty), None)
        if stated is not None and target in ("委託先", "提供先", "移転先"):
            shown = re.sub(r"\s*<選択肢>.*", "", stated.value).replace("\n", " ")
            cites.insert(0, self.cite_field(card, "", stated, prefer=shown[:40]))
            text = self._say(
                q,
                f"{card.label}の「{stated.key}」には「{_clip(shown, 120)}」とあり、{target}のブロックは{len(records)}件あります。",
                f"{card.label} states '{_clip(shown, 120)}' under {stated.key}; it has {len(records)} {en} blocks.",
            )
            return Answer(q.text, text, False, cites, kind="number")
        text = self._say(
            q,
            f"{card.label}の{target}は{len(records)}件（ブロック数）です。名称の異なるものは{len(names)}件：{'、'.join(names)}",
            f"{card.label} lists {len(records)} {en} blocks ({len(names)} distinct names): {', '.join(names)}",
        )
        return Answer(q.text, text, False, cites, kind="number")

    def _record_list(
        self, q: Question, card: Card, target: str, records: list[Record], en: str, by_title: bool = False
    ) -> Answer:
        names: dict[str, Record] = {}
        unnamed: list[Record] = []
        for r in records:
            name = r.name if by_title and target == "委託先" else self._record_name(r, target)
            if not name:
                unnamed.append(r)
                continue
            names.setdefault(name, r)
        cites = []
        for name, r in names.items():
            f = r.get("委託先名") if target == "委託先" and not by_title else r.get("システムの名称") if target == "システム" else None
            if f is not None and not f.empty:
                cites.append(self.cite_field(card, r.breadcrumb, f))
            else:
                cites.append(self.cite(card, r.breadcrumb, name, r.line, r.end_line))
        if target == "委託先" and unnamed and not by_title:
            # 004: the blocks are torn apart, but its ③委託先名 lines still stand in the section.
            for n, f in card.fields():
                if isinstance(n, Record) or _in_changes(n) or f.empty or f.key != "委託先名":
                    continue
                name = f.value.split("\n")[0].strip()
                if name and name not in names and not re.fullmatch(r"(再委託|委託|[-—\s])+", name):
                    names[name] = Record("委託事項", None, None, list(n.path), f.line, f.end_line, [f])
                    cites.append(self.cite_field(card, n.breadcrumb, f))
            unnamed = unnamed[: max(0, len(records) - len(names))]
        if not names:
            titles = "、".join(r.title for r in records)
            return self.abstain(q, [], f"{target}の名称が読み取れません（{titles}）。", f"The names of the {en} cannot be read.", card=card)
        items = "、".join(names)
        extra_ja = f"（他に名称の読み取れない{target}が{len(unnamed)}件）" if unnamed else ""
        extra_en = f" ({len(unnamed)} more without a legible name)" if unnamed else ""
        label = "委託事項" if by_title and target == "委託先" else target
        text = self._say(
            q,
            f"{card.label}の{label}は次の{len(names)}件です（{len(records)}ブロック）：{items}{extra_ja}",
            f"According to {card.label}, the {en} are ({len(names)} distinct, {len(records)} blocks): {items}{extra_en}.",
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
            (("情報連携", "情報提供ネットワーク", "network"), "実施の有無"),
            (("再委託",), "再委託の有無"),
            (("委託", "outsourc", "entrust"), "委託の有無"),
            (("提供・移転", "提供先", "移転先", "提供して", "提供を行", "提供され", "移転して", "移転を行", "移転され",
              "provide", "transfer", "share"), "提供・移転の有無"),
            (("重大事故", "事故", "incident"), "重大事故"),
            (("ファイル簿",), "ファイル簿"),
        ]
        plain = re.sub(r"情報提供ネットワークシステム", "", q.norm)
        for keys, label in choices:
            if not any(k.lower() in (q.norm if label == "実施の有無" else plain).lower() for k in keys):
                continue
            found = [(node, f) for node, f in card.fields() if _key_is(f.key, label) and f.selected and not _in_changes(node)]
            if not found:
                found = [(node, f) for node, f in card.fields() if _key_is(f.key, label) and not f.empty and not _in_changes(node)]
            if not found or not (found[0][1].selected or []):
                return self._yes_no_from_blocks(q, card, label)
            node, f = found[0]
            chosen = f.selected or []
            if label == "提供・移転の有無":
                want = "移転" if (q.has("移転", "transfer") and not q.has("提供", "provide")) else "提供"
                positive = any(want in c and "行っている" in c for c in chosen)
            else:
                positive = any(c.startswith(POSITIVE) and not c.startswith(NEGATIVE) for c in chosen)
            shown = "・".join(chosen)
            count = re.search(r"\((\d+)\)\s*件", f.value)
            if count and label == "委託の有無":
                shown += f"（{count.group(1)}件）"
            cite = self.cite_field(card, node.breadcrumb, f, prefer=chosen[0])
            text = self._say(q, f"{'はい' if positive else 'いいえ'}。{card.label}の「{f.key}」は[{shown}]です。",
                             f"{'Yes' if positive else 'No'}: in {card.label}, '{f.key}' is [{shown}].")
            return Answer(q.text, text, False, [cite], kind="yesno")
        return None

    def _yes_no_from_blocks(self, q: Question, card: Card, label: str) -> Answer | None:
        """The choice is not legible (004), but the blocks it governs are: 委託事項N present means 委託する."""
        kinds = {"委託の有無": ("委託事項",), "提供・移転の有無": ("提供先", "移転先")}.get(label)
        if not kinds:
            return None
        blocks = [r for k in kinds for r in card.records(k)]
        if not blocks:
            return None
        cites = [self.cite(card, r.breadcrumb, r.name or r.title, r.line, r.end_line) for r in blocks[:5]]
        what = "・".join(kinds)
        text = self._say(q, f"はい（{label}の選択は読み取れませんが、{what}が{len(blocks)}件記載されています）。{card.label}",
                         f"Yes: the choice itself is not legible, but {card.label} lists {len(blocks)} {what} blocks.")
        return Answer(q.text, text, False, cites, kind="yesno")

    # == single fields ==================================================================================
    def fields(self, q: Question, card: Card, hits: list[Hit]) -> Answer | None:
        part = next((s for s in card.sections if "記録項目" in s.title), None)
        if q.has("区分", "分類", "categor") and q.has("記録項目", "記録される", "record item") and part is not None:
            groups = card.records("記録項目")
            if groups:
                cites = [self.cite(card, r.breadcrumb, r.name or "", r.line, r.end_line) for r in groups]
                names = "、".join(r.name or "" for r in groups)
            else:  # groups printed inline: 【決定関連情報】氏名、…
                found = [(m, f) for s in part.walk() for f in s.fields for m in re.findall(r"【([^】]{2,30})】", f.value)]
                cites = [self.cite(card, part.breadcrumb, f"【{m}】", f.line, f.end_line) for m, f in found]
                names = "、".join(dict.fromkeys(m for m, _ in found))
            if not names:
                return None
            return Answer(q.text, self._say(q, f"{card.label}の記録項目の区分: {names}", f"Record item groups of {card.label}: {names}"),
                          False, cites, kind="list")
        if q.has("記録項目", "記録される項目", "record item", "data item") and not q.has("項目数", "何項目", "記録される項目の数"):
            items = self._record_items(q, card, hits)
            if items is not None:
                return items
        targets = [t for t in FIELD_TARGETS if q.has(*t[0])]
        for _, keys, en, section in targets[:1]:
            if section and any(section in s.title for s in card.walk()):
                inside = [f for s in card.walk() if section in s.title for f in s.fields if not f.empty and any(k in f.key for k in keys)]
                anywhere = [f for n, f in card.fields() if not f.empty and not _in_changes(n) and len(keys[0]) >= 4
                            and keys[0] in f.key and not (isinstance(n, Record) and n.kind in ("提供先", "移転先", "委託事項"))]
                if not inside and not anywhere:
                    return self.abstain(q, hits, f"「{section}」の{keys[0]}は記載がありません。", f"The {en} is not stated.", card=card)
        if q.has("区分", "分類", "categor") and q.has("記録項目", "記録される", "record item"):
            groups = [r for r in card.records("記録項目")]
            if groups:
                cites = [self.cite(card, r.breadcrumb, r.name or "", r.line, r.end_line) for r in groups]
                names = "、".join(r.name or "" for r in groups)
                return Answer(q.text, self._say(q, f"{card.label}の記録項目の区分: {names}", f"Record item groups of {card.label}: {names}"),
                              False, cites, kind="list")
        scored = self._score_fields(q, card, hits, targets)
        if not scored:
            return self.abstain(q, hits, "", "", card=card)
        best_score, node, f = scored[0]
        if best_score < 2.5:
            return self.abstain(q, hits, "", "", card=card)
        picks = [(node, f)]
        # A second field when the question asks for two things (担当部署と所属長, 請求先と電話番号…).
        if targets and len(targets[0][1]) > 1 and q.has("と", "and", "も"):
            first = next((k for k in targets[0][1] if k in f.key), None)
            for s, n2, f2 in scored[1:12]:
                other = next((k for k in targets[0][1] if k in f2.key), None)
                if other and other != first and s >= best_score - 5:
                    picks.append((n2, f2))
                    break
        for s2, n2, f2 in scored[1:4]:  # the same label stated twice with different values (I.3 and II.1)
            if f2.key == f.key and s2 >= best_score - 1.0 and normalize(f2.value) != normalize(f.value) and len(picks) < 2:
                picks.append((n2, f2))
        parts, cites = [], []
        number_q = q.has("何年", "何日", "何回", "何件", "いつ", "どれくらい", "どのくらい", "how long", "how many", "when")
        for n, fld in picks:
            value = _show(fld, [*q.words, *(["#number"] if number_q else [])])
            quoted = [o for o in fld.options if any(x in o for x in q.quoted)] if q.quoted else []
            if quoted:  # 「入手方法の『その他』に書かれているシステム」: the option itself, with what it names
                value = "・".join(quoted)
            yn = _yes_no_word(fld, q)
            if not yn and q.yesno and not fld.selected:
                found = [e for e in (*q.entities, *q.words) if normalize(e).lower() in normalize(value).lower()]
                if found:
                    yn = "Yes — " if q.english else "はい。記載があります："
            parts.append(f"{yn}{value}")
            cites.append(self.cite_field(card, n.breadcrumb, fld, prefer=_quote_hint(fld, value)))
        where = " / ".join(f"{n.breadcrumb.split(' > ')[-1]} > {fld.key}" for n, fld in picks)
        en = targets[0][2] if targets else picks[0][1].key
        text = self._say(q, f"{' / '.join(parts)}（{card.label}「{where}」）", f"{card.label} — {en}: {' / '.join(parts)}")
        return Answer(q.text, text, False, cites, kind="span")

    def _score_fields(
        self, q: Question, card: Card, hits: list[Hit], targets: list[tuple[tuple[str, ...], tuple[str, ...], str, str | None]]
    ) -> list[tuple[float, Section | Record, Field]]:
        words = [normalize(w).lower() for w in q.words]
        ents = [normalize(e).lower() for e in q.entities]
        near: dict[int, float] = {}
        for rank, h in enumerate(hits[:10]):
            for line in range(h.chunk.line, h.chunk.end_line + 1):
                near[line] = max(near.get(line, 0.0), 1.5 / (rank + 1))
        risk = q.has("リスク", "対策", "措置", "risk", "measure")
        blocks_asked = q.has("提供", "移転", "委託", "recipient", "transfer", "outsourc")
        out: list[tuple[float, Section | Record, Field]] = []
        for node, f in card.fields():
            if f.empty:
                continue
            key = f.key
            crumb = normalize(node.breadcrumb).lower()
            value = normalize(f.value).lower()
            s = 0.0
            for i, (_, keys, _, section) in enumerate(targets):
                for j, k in enumerate(keys):
                    if k in key:
                        s += 5.0 - 0.5 * j - 2.0 * i
                        if section and section in node.breadcrumb:
                            s += 1.0
                        break
            label = normalize(key).lower()
            s += sum(2.0 for w in words if w in label)
            s += sum(1.0 for w in words if w in crumb)
            s += min(3.0, sum(1.0 for w in words if w in value))
            s += min(1.0, sum(1.0 for t in targets for ph in t[0] if len(ph) >= 3 and ph in value))
            s += min(3.0, sum(1.0 for e in ents if e in value or e in crumb))
            s += max((near.get(n, 0.0) for n in range(f.line, f.end_line + 1)), default=0.0)
            if node.breadcrumb.startswith("III") and not risk:
                s -= 0.75
            if _in_changes(node):
                s -= 4.0
            if isinstance(node, Record) and node.kind in ("提供先", "移転先", "委託事項") and not blocks_asked:
                s -= 1.5  # a 提供先 block's ④本人の数 is not the file's 本人の数
            if f.label == getattr(node, "title", None):  # free text under a heading, not a labelled field
                s -= 0.5
            out.append((s, node, f))
        out.sort(key=lambda x: -x[0])
        return out

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
                else:
                    cites.append(self.cite(card, r.breadcrumb, r.name or "", r.line, r.end_line))
            body = " ".join(shown)
        else:
            values = [f for s in part.walk() for f in s.fields if not f.empty]
            body = " ".join(_clip(f.value, 200) for f in values[:6])
            cites = [self.cite_field(card, part.breadcrumb, f) for f in values[:3]]
        if not body.strip():
            return None
        text = self._say(q, f"{card.label}の記録項目: {body}", f"Record items of {card.label}: {body}")
        return Answer(q.text, text, False, cites, kind="list")

    # == across reports =================================================================================
    def cross(self, q: Question, scope: tuple[str, ...]) -> Answer | None:
        cards = [self.ctx.cards[c] for c in scope] if scope else list(self.ctx.cards.values())
        everyone = list(self.ctx.cards.values())
        kinds = ("全項目評価書", "重点項目評価書", "基礎項目評価書")
        asked_kind = next((k for k in kinds if k in q.norm), None) or (
            "全項目評価書" if q.has("full assessment", "full evaluation") else None
        )
        if asked_kind:
            chosen = [c for c in everyone if c.kind == asked_kind]
            return self._card_list(q, chosen, f"{asked_kind}は", lambda c: (c.kind or "", 1, 80), f"{asked_kind} reports")
        if q.has("評価書番号", "report number") and q.has("大き", "小さ", "largest", "smallest", "highest", "lowest"):
            numbered = [c for c in everyone if c.number and c.number.isdigit()]
            if numbered:
                big = not q.has("小さ", "smallest", "lowest")
                pick = (max if big else min)(numbered, key=lambda c: int(c.number or 0))
                cite = self.cite(pick, "表紙", pick.number or "", 1, 80)
                text = self._say(q, f"評価書番号が最も{'大きい' if big else '小さい'}のは{pick.label}（{pick.number}）です。",
                                 f"The {'largest' if big else 'smallest'} report number is {pick.number}: {pick.label}.")
                return Answer(q.text, text, False, [cite], cards=[pick.id], kind="cross")
        if q.has("新しい", "古い", "newest", "latest", "oldest", "most recent"):
            dated = [c for c in everyone if c.published]
            if dated:
                newest = not q.has("古い", "oldest")
                pick = (max if newest else min)(dated, key=lambda c: date_key(c.published))
                undated = [c.label for c in everyone if not c.published]
                note = f"（公表日の記載がない評価書: {'、'.join(undated)}）" if undated else ""
                cite = self.cite(pick, "表紙", pick.published or "", 1, 80)
                text = self._say(q, f"公表日が最も{'新しい' if newest else '古い'}のは{pick.label}（{pick.published}）です。{note}",
                                 f"The {'newest' if newest else 'oldest'} by publication date is {pick.label} ({pick.published}).")
                return Answer(q.text, text, False, [cite], cards=[pick.id], kind="cross")
        by_value = self._cross_by_value(q, everyone)
        if by_value is not None:
            return by_value
        target = self._record_target(q)
        names = [x for x in (*q.quoted, *q.entities) if len(x) >= 3]
        if target and names:
            kind, en = RECORD_TARGETS[target]
            matched: list[tuple[Card, Record, str]] = []
            for c in everyone:
                found = False
                for r in c.records(kind):
                    text = normalize(r.title + " " + " ".join(f.value for f in r.fields)).lower()
                    hit = next((n for n in names if normalize(n).lower() in text), None)
                    if hit:
                        matched.append((c, r, hit))
                        found = True
                        break
                home = tpl_home(c, kind)
                if not found and home is not None:
                    # Blocks torn apart (004): the name may sit in the section without a block around it.
                    for n, f in c.fields():
                        if not n.breadcrumb.startswith(home.breadcrumb) or _in_changes(n):
                            continue
                        hit = next((x for x in names if normalize(x).lower() in normalize(f.value).lower()), None)
                        if hit:
                            matched.append((c, Record(kind, None, None, list(n.path), f.line, f.end_line, [f]), hit))
                            break
            if not matched:
                return self.abstain(q, [], f"「{'・'.join(names)}」を{target}に含む評価書はありません。",
                                    f"No report lists {' / '.join(names)} among its {en}.")
            cites = [self.cite(c, r.breadcrumb, hit, r.line, r.end_line) for c, r, hit in matched]
            listed = "、".join(c.label for c, _, _ in matched)
            text = self._say(q, f"{'・'.join(names)}を{target}に含む評価書は{len(matched)}件です：{listed}",
                             f"{len(matched)} report(s) list it among their {en}: {listed}")
            return Answer(q.text, text, False, cites, cards=[c.id for c, _, _ in matched], kind="cross")
        if q.place_names or len(cards) < len(everyone):
            return self._card_list(q, cards, "該当する評価書は", lambda c: (c.title or c.municipality or "", 1, 80), "reports")
        if q.count:
            return self._card_list(q, everyone, "評価書は", lambda c: (c.title or "", 1, 80), "reports")
        return None

    def _cross_by_value(self, q: Question, cards: list[Card]) -> Answer | None:
        """「対象となる本人の数が1万人未満」「提供・移転を行っていない」: cards whose field takes that value."""
        values = list(q.quoted)
        values += re.findall(r"(\d[\d,]*万?人(?:以上)?[\d,]*万?人?未満|\d[\d,]*万?人以上)", q.norm)
        values += [v for v in ("発生あり", "発生なし", "行っていない", "委託しない", "再委託しない") if v in q.norm]
        if not values:
            return None
        labels = [k for _, keys, _, _ in FIELD_TARGETS for k in keys if k in q.norm]
        labels += [k for k in ("提供・移転の有無", "委託の有無", "重大事故", "使用者数", "対象となる本人の数") if k in q.norm or
                   (k == "提供・移転の有無" and q.has("提供・移転", "提供や移転")) or (k == "重大事故" and q.has("事故"))]
        if not labels:
            return None
        matched: list[tuple[Card, Section | Record, Field]] = []
        for c in cards:
            for node, f in c.fields():
                if _in_changes(node) or isinstance(node, Record) and node.kind in ("提供先", "移転先", "委託事項"):
                    continue
                if not any(lb in f.key for lb in labels):
                    continue
                shown = normalize("・".join(f.selected) if f.selected else f.value).replace(" ", "")
                if any(normalize(v).replace(" ", "") in shown for v in values):
                    matched.append((c, node, f))
                break
        if not matched:
            return self.abstain(q, [], f"「{'・'.join(values)}」に当たる評価書はありません。", f"No report has {', '.join(values)}.")
        cites = [self.cite_field(c, n.breadcrumb, f, prefer=(f.selected or [None])[0]) for c, n, f in matched]
        listed = "、".join(c.label for c, _, _ in matched)
        text = self._say(q, f"{'・'.join(values)}の評価書は{len(matched)}件です：{listed}", f"{len(matched)} report(s): {listed}")
        return Answer(q.text, text, False, cites, cards=[c.id for c, _, _ in matched], kind="cross")

    def _card_list(self, q: Question, cards: list[Card], what: str, hint: Callable[[Card], tuple[str, int, int]], en: str) -> Answer:
        if not cards:
            return self.abstain(q, [], f"該当する{what.rstrip('は')}はありません。", f"No {en} in this corpus.")
        cites = [self.cite(c, "表紙", *hint(c)) for c in cards]
        names = "、".join(c.label for c in cards)
        text = self._say(q, f"{what}{len(cards)}件です：{names}", f"{len(cards)} {en}: {names}")
        return Answer(q.text, text, False, cites, cards=[c.id for c in cards], kind="cross")


# == text helpers =======================================================================================


def _key_is(key: str, label: str) -> bool:
    """委託の有無 is not 再委託の有無, though one label contains the other."""
    return label in key and not (label.startswith("委託") and "再委託" in key)


def tpl_home(card: Card, kind: str) -> Section | None:
    """The section the template puts a block kind in (4. 委託, 5. 提供・移転, 2. システム)."""
    from qa.parsing import template as tpl

    keyword = tpl.HOME_KEYWORDS[tpl.RECORD_HOMES[kind][0]]
    for s in card.walk():
        if s.path and s.path[0].startswith(("I ", "II ")) and keyword in s.title and re.match(r"\d", s.title):
            return s
    return None


def _in_changes(node: Section | Record) -> bool:
    return isinstance(node, Record) and node.kind == "変更箇所" or "変更箇所" in node.breadcrumb.split(" > ")[0]


def _yes_no_word(f: Field, q: Question) -> str:
    """「はい（発生あり）」: a choice that is itself a yes or no reads as one."""
    if not f.selected:
        return ""
    first = f.selected[0]
    if first.startswith(NEGATIVE):
        return "No — " if q.english else "いいえ："
    if first.startswith(POSITIVE):
        return "Yes — " if q.english else "はい："
    return ""


def _headings(value: str) -> str:
    """「1. 個人番号管理機能 …説明… 2. アクセス制御機能 …」 → 「1. 個人番号管理機能 2. アクセス制御機能」."""
    heads = re.findall(r"(?:^|\s|\n)(\d{1,2})[.．)]?\s*([^\s。、(（]{2,30}?機能)", value)
    if len(heads) >= 2:
        return " ".join(f"{n}. {h}" for n, h in heads)
    return _clip(value.replace("\n", " "), MAX_VALUE)


def _show(f: Field, words: list[str] | None = None) -> str:
    """A field's answer as a person would read it: the chosen option, else the sentence that answers."""
    if f.selected:
        return "・".join(f.selected)
    value = re.sub(r"\s*<選択肢>.*", "", f.value, flags=re.S).strip()
    flat = value.replace("\n", " ")
    if len(flat) <= MAX_VALUE or not words:
        return _clip(flat, MAX_VALUE)
    sentences = [s.strip() for s in re.split(r"(?<=。)|\n|(?<=\s)・", value) if s.strip()]
    keys = list(dict.fromkeys(normalize(w).lower() for w in words if not w.startswith("#")))
    wants_number = any(w == "#number" for w in words)

    def weight(i: int) -> float:
        text = normalize(sentences[i]).lower()
        return sum(len(k) for k in keys if k in text) + (2.0 if wants_number and re.search(r"\d", text) else 0.0)

    scored = sorted(range(len(sentences)), key=lambda i: -weight(i))
    best = scored[0] if scored else 0
    if sentences and weight(best) > 0:
        return _clip(sentences[best], MAX_VALUE)
    return _clip(flat, MAX_VALUE)


def _quote_hint(f: Field, shown: str) -> str:
    if f.selected:
        return f.selected[0]
    return shown.rstrip("…")


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
    for cand in (first[:80], first[:40], first[:20], first[:10], first[-20:]):
        cand = cand.strip()
        if len(cand) >= 2 and cand not in seen:
            seen.add(cand)
            yield cand
