"""What a question asks: its form (yes/no, count, list…), the block numbers and names it mentions, and its
own content words — the words left once the template's vocabulary, the reports' names and question words
are taken out. Pure functions of the text (and of the Segmenter for words)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.glossary import AFFAIRS, TERMS, Expansion, expand
from qa.reading import normalize
from qa.segment import Segmenter

WH = re.compile(
    r"(どこ|どれ|誰|だれ|何|なに|なん|いつ|どの|どんな|どう|いくつ|いくら|どのくらい|どれくらい|どちら|どういう|どなた"
    r"|\b(what|which|who|whom|whose|where|when|how|why)\b)",
    re.I,
)
YESNO_END = re.compile(
    r"(ますか|ましたか|ませんか|ですか|でしたか|でしょうか|あるか|いるか|するか|されるか|したか|なるか|ないか|るの|たの|いるの"
    r"|される|されている|ある|いる|入る|含まれる|限られている|した|している|するか|られる|てる|る)\s*[?？]?\s*$"
)
YESNO_EN = re.compile(r"^(is|are|does|do|did|has|have|was|were|can|will)\b", re.I)
CROSS = (
    "どの評価書", "評価書はどれ", "どれですか", "どれか", "どれとどれ", "評価書は？", "評価書は?", "評価書はいくつ", "いくつの評価書",
    "何件の評価書", "すべての評価書", "全ての評価書", "評価書をすべて", "評価書を全て", "評価書を挙げ", "各評価書", "最も",
    "一番", "どの自治体", "どの市", "どこの自治体", "which report", "which reports", "which of the reports", "which municipalit",
    "which city", "which cities", "how many reports", "newest", "latest", "oldest", "most recent", "every report",
    "all reports", "across",
)
# Words of a question that say nothing about its content (Sudachi normalized forms).
GENERIC = {
    "評価書", "重点項目評価書", "全項目評価書", "特定個人情報保護評価書", "どこ", "何", "なに", "誰", "だれ", "いつ", "どの", "どれ",
    "どう", "どんな", "教える", "下さる", "ください", "です", "ます", "こと", "もの", "ため", "よう", "中", "場合", "記載", "示す",
    "市", "町", "村", "事務", "関する", "情報", "特定個人情報", "ファイル", "特定個人情報ファイル", "一覧", "全て", "すべて", "全部",
    "件", "何件", "番号", "名前", "名称", "幾ら", "何処", "如何", "何時", "何故", "其れ", "其々", "夫々", "挙げる", "書く", "場所",
    "本人", "評価", "データ", "該当", "場合", "方", "所", "等", "一つ", "それぞれ", "くらい", "程度", "位",
    "件数", "追加", "削除", "変更", "変わる", "新た", "最新", "最も", "一番", "以下", "以上", "未満", "別添", "職員数",
    "the", "what", "which", "who", "whom", "where", "when", "how", "many", "much", "does", "report", "reports", "in",
    "of", "to", "for", "is", "are", "and", "or", "a", "an", "by", "its", "it", "this", "that", "there", "any", "list",
    "name", "names", "city", "s", "do", "did", "from", "with", "on", "at", "be", "as", "about", "their", "they",
}
_KANJI_KATA = re.compile(r"[一-龥々〆ヵヶァ-ヴーA-Za-z0-9&・]+")
_NUMBERS = re.compile(r"(提供先|移転先|委託事項|システム)\s*(\d{1,3})")


@dataclass
class Question:
    text: str
    norm: str
    expansion: Expansion
    yesno: bool
    cross: bool
    english: bool
    count: bool
    record_numbers: list[int] = field(default_factory=list)
    place_names: list[str] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # content words, as written (NFKC)
    entities: list[str] = field(default_factory=list)  # longer runs that may name a body or a system

    @property
    def terms(self) -> tuple[str, ...]:
        return self.expansion.terms

    @property
    def record_number(self) -> int | None:
        return self.record_numbers[0] if self.record_numbers else None

    def has(self, *words: str) -> bool:
        low = self.norm.lower()
        return any(w.lower() in low for w in words)


def _vocabulary() -> set[str]:
    from qa.glossary import FIELD_PHRASES

    phrases = {p.lower() for ps in TERMS.values() for p in ps} | set(TERMS) | {p.lower() for p in FIELD_PHRASES}
    phrases |= {p.lower() for ps in AFFAIRS.values() for p in ps} | set(AFFAIRS)
    return {p for p in phrases if len(p) >= 2}


_VOCAB = _vocabulary()


def is_english(norm: str) -> bool:
    ascii_letters = len(re.findall(r"[A-Za-z]", norm))
    cjk = len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", norm))
    return len(re.findall(r"[A-Za-z]{2,}", norm)) >= 3 and ascii_letters > cjk


def understand(text: str, segmenter: Segmenter | None = None, identity: set[str] | None = None) -> Question:
    norm = normalize(text).strip()
    exp = expand(text)
    low = norm.lower()
    english = is_english(norm)
    sentences = [x.strip().rstrip("。") for x in re.split(r"(?<=[。？?])", norm) if x.strip()] or [norm]
    yesno = any(not WH.search(x) and YESNO_END.search(x) for x in sentences)
    yesno = yesno or bool(YESNO_EN.match(low)) or "yes or no" in low
    places = re.findall(r"([一-龥ぁ-んァ-ヴー]{1,6}?(?:都|道|府|県|市|区|町|村))(?:の|は|が|で|に|では|において|、|\s|$)", norm)
    places = [p for p in places if not re.search(r"(市町村|市区町村|都道府県|区市|市長|町長|村長|本市|同市|当市|各市|各区)$", p)]
    q = Question(
        text=text,
        norm=norm,
        expansion=exp,
        yesno=yesno,
        cross=any(c in low for c in CROSS),
        english=english,
        count=bool(re.search(r"(いくつ|何件|件数|how many|number of)", low)),
        record_numbers=[int(n) for _, n in _NUMBERS.findall(norm)],
        place_names=places,
        quoted=[m.strip() for m in re.findall(r"[「『\"“](.+?)[」』\"”]", norm) if m.strip()],
    )
    if segmenter is not None:
        q.words = content_words(norm, segmenter, identity or set(), english)
        q.entities = entity_runs(norm, identity or set())
    return q


def content_words(norm: str, segmenter: Segmenter, identity: set[str], english: bool) -> list[str]:
    """The question's own words (surfaces), not the template's vocabulary, names of reports or question words."""
    mixed = len(re.findall(r"[A-Za-z]{3,}", norm)) >= 2
    out: list[str] = []
    for tok in segmenter.surface_tokens(norm, normalize=False):
        surface, form = tok.surface, tok.normalized.lower()
        s = surface.lower()
        if form in GENERIC or s in GENERIC or len(s) < 2 or s in identity or form in identity:
            continue
        if re.fullmatch(r"[\d.,]+|[ぁ-ん]+|.*[ぁ-ん]|[何幾].*", s):  # numbers, particles, verbs, 何回/何年
            continue
        if re.fullmatch(r"[ァ-ヴー]+", s) and (mixed or english):  # Sudachi's katakana for English words
            continue
        if re.fullmatch(r"[a-z]+", s) and (english or mixed):
            continue
        if any(s in p or p in s for p in _VOCAB):
            continue
        out.append(surface)
    return list(dict.fromkeys(out))


_STRIP: list[str] = sorted(_VOCAB | {g for g in GENERIC if len(g) >= 2}, key=len, reverse=True)


def entity_runs(norm: str, identity: set[str]) -> list[str]:
    """Runs of kanji/katakana/Latin that may name a body, company or system: 「富士通Japan」「日本学生支援機構」.

    A run counts only if something is left once report names, template words and question words are
    taken out of it (児童手当事務 → 事務 → nothing; 外注先 → 先 → nothing).
    """
    runs = []
    strip = sorted({i for i in identity if len(i) >= 2}, key=len, reverse=True) + _STRIP
    for run in _KANJI_KATA.findall(norm):
        if len(run) < 3 or run in identity or run.lower() in GENERIC or run.isdigit():
            continue
        rest = run.lower()
        for word in strip:
            rest = rest.replace(word.lower(), "")
        if len(re.sub(r"[・&]", "", rest)) < 2 or re.fullmatch(r"[一-龥]", rest):
            continue
        if re.fullmatch(r"[A-Za-z&・]+", run) and not re.fullmatch(r"[A-Z&]{2,6}", run):
            continue  # ordinary English words; acronyms (NEC) may name a company
        runs.append(run)
    return runs


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
