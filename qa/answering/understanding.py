"""What a question asks: its target (a block type, a field, metadata), its form (list, yes/no, date…),
the cards it is about, and the words that narrow it. Pure functions over the text and the cards."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.glossary import Expansion, expand
from qa.reading import normalize

YESNO = re.compile(
    r"(ますか|ませんか|ですか|あるか|いるか|するか|しているか|されているか|ありますか|いますか|でしょうか)[?？]?$"
    r"|^(is|are|does|do|did|has|have|was|were)\b",
    re.I,
)
CROSS = (
    "どの評価書", "評価書はどれ", "どれですか", "どれか", "評価書はいくつ", "いくつの評価書", "何件の評価書", "すべての評価書",
    "全ての評価書", "各評価書", "最も新しい", "最も古い", "一番新しい", "一番古い", "どの自治体", "どの市", "どこの自治体",
    "which report", "which reports", "which municipalit", "which city", "which cities", "how many reports",
    "newest", "latest", "oldest", "most recent", "every report", "all reports", "across",
)
# Words of a question that say nothing about its content.
GENERIC = {
    "評価書", "重点項目評価書", "全項目評価書", "特定個人情報保護評価書", "どこ", "何", "なに", "誰", "だれ", "いつ", "どの", "どれ",
    "どう", "どんな", "教える", "下さる", "くださる", "ください", "いる", "ある", "する", "なる", "れる", "られる", "です", "ます",
    "か", "の", "は", "を", "に", "が", "で", "と", "へ", "も", "や", "から", "まで", "より", "こと", "もの", "ため", "よう",
    "中", "場合", "記載", "書く", "示す", "市", "町", "村", "事務", "関する", "について", "つく", "情報", "特定個人情報",
    "ファイル", "特定個人情報ファイル", "一覧", "全て", "すべて", "件", "何件", "いくつ", "番号", "名前", "名称", "よる",
    "the", "what", "which", "who", "whom", "where", "when", "how", "many", "much", "does", "report", "reports", "in",
    "of", "to", "for", "is", "are", "and", "or", "a", "an", "by", "its", "it", "this", "that", "there", "any", "list",
    "name", "names", "city", "s", "幾ら", "何処", "如何", "何時", "何故", "誰か",
}


@dataclass
class Question:
    text: str
    norm: str
    expansion: Expansion
    yesno: bool
    cross: bool
    english: bool
    record_number: int | None = None
    place_names: list[str] = field(default_factory=list)

    @property
    def terms(self) -> tuple[str, ...]:
        return self.expansion.terms

    def has(self, *words: str) -> bool:
        low = self.norm.lower()
        return any(w.lower() in low for w in words)


def understand(text: str) -> Question:
    norm = normalize(text).strip()
    exp = expand(text)
    low = norm.lower()
    m = re.search(r"(提供先|移転先|委託事項|システム|recipient|transferee|system)\s*(?:no\.?\s*)?(\d{1,3})", low)
    places = re.findall(r"([一-龥ぁ-んァ-ヴー]{1,6}?(?:都|道|府|県|市|区|町|村))(?:の|は|が|で|に|では|において|、|\s)", norm)
    places = [p for p in places if not re.search(r"(市町村|市区町村|都道府県|区市|市長|町長|村長|本市|同市|当市|各市)$", p)]
    return Question(
        text=text,
        norm=norm,
        expansion=exp,
        yesno=bool(YESNO.search(low.strip())) or bool(re.search(r"(はい|いいえ|yes or no)", low)),
        cross=any(c in low for c in CROSS),
        english=exp.english,
        record_number=int(m.group(2)) if m else None,
        place_names=places,
    )


_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925}


def date_key(text: str | None) -> tuple[int, int, int]:
    """令和7年7月31日 → (2025, 7, 31), for comparing dates the reports write in Japanese eras."""
    if not text:
        return (0, 0, 0)
    m = re.search(r"(令和|平成|昭和)\s*(\d+|元)\s*年\s*(\d+)\s*月\s*(\d+)?", normalize(text))
    if not m:
        return (0, 0, 0)
    year = 1 if m.group(2) == "元" else int(m.group(2))
    return (_ERAS[m.group(1)] + year, int(m.group(3)), int(m.group(4) or 0))
