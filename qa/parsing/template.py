"""The national template's vocabulary, shared by every format's parser.

Patterns run on the normalised text (NFKC, circled numbers kept), so Ⅱ reads as II and ２ as 2.
"""

from __future__ import annotations

import re

from qa.catalog import catalog

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")
PART_TITLES = (
    "基本情報",
    "特定個人情報ファイルの概要",
    "特定個人情報ファイルの取扱いプロセスにおけるリスク対策",
    "その他のリスク対策",
    "リスク対策",
    "開示請求、問合せ",
    "開示請求,問合せ",
    "評価実施手続",
)
# The record kind (and appendix title) of 別添2, the change history: the old and new text of every changed field.
CHANGE_KIND = "変更箇所"
# The record kind (and the appendix title's tail) of 別添1's groups of record items (【資格管理情報】 …).
ITEM_KIND = "記録項目"
APPENDIX_TITLES = ("事務の内容", "特定個人情報ファイル記録項目", ITEM_KIND, CHANGE_KIND)

PART = re.compile(r"^(VII|VI|IV|V|III|II|I)\s*[\s.]\s*(.+)$")
APPENDIX = re.compile(r"^\((別添|別紙)\s*(\d+)\)\s*(.+)$")
NUMBERED = re.compile(r"^(\d{1,2})\.\s*(\S.*)$")
FILE_LEVEL = re.compile(r"^\((\d{1,2})\)\s*(\S{1,30}ファイル)$")
RECORD = re.compile(r"^(システム|提供先|移転先|委託事項)\s*(\d{1,3})$")
RECORD_RANGE = re.compile(r"^(システム|提供先|移転先|委託事項)\s*\d{1,3}\s*~\s*\d{1,3}$")
CIRCLED = re.compile(r"^[①-⑳]")
DATE = re.compile(r"(令和|平成|昭和)\s*(\d{1,2}|元)\s*年\s*\d{1,2}\s*月(\s*\d{1,2}\s*日)?")
KINDS = ("重点項目評価書", "全項目評価書", "基礎項目評価書")

RECORD_KINDS = catalog().record_kinds
# Where the template puts each block or label, for reports that leave a section heading out.
RECORD_HOMES = {
    "システム": (2, "特定個人情報ファイルを取り扱う事務において使用するシステム"),
    "委託事項": (4, "特定個人情報ファイルの取扱いの委託"),
    "提供先": (5, "特定個人情報の提供・移転(委託に伴うものを除く。)"),
    "移転先": (5, "特定個人情報の提供・移転(委託に伴うものを除く。)"),
}
LABEL_HOMES = {
    "保管場所": (6, "特定個人情報の保管・消去"),
    "保管期間": (6, "特定個人情報の保管・消去"),
    "消去方法": (6, "特定個人情報の保管・消去"),
}
# Labels of the national template (without their circled numbers), to tell a label wrapped mid-word
# ("④提供する情報の対象となる" / "本人の数") from a label followed by its value ("⑦時期・頻度" / "必要に応じて都度").
# They live in the catalog (qa/data/catalog.toml), which question matching reads too.
KNOWN_LABELS = catalog().form_labels
HOME_KEYWORDS = {2: "システム", 4: "委託", 5: "提供・移転", 6: "保管"}
# Sections whose content is a single value, not labelled fields: "3. 特定個人情報ファイル名 / 児童手当ファイル".
VALUE_SECTIONS = ("特定個人情報ファイル名", "他の評価実施機関", "備考")
# The label given to a per-file level's name under "1. 特定個人情報ファイル名" (全項目評価書).
FILE_NAME_LABEL = "特定個人情報ファイル名"
CHANGE_COLUMNS = ("変更日", "項目", "変更前の記載", "変更後の記載", "提出時期", "提出時期に係る説明")


def part_heading(text: str) -> tuple[str, str] | None:
    """("II", "特定個人情報ファイルの概要") for a part heading line, else None."""
    text = text.strip().lstrip("#").strip()
    m = PART.match(text)
    if m:
        title = clean_title(m.group(2))
        for known in PART_TITLES:
            if title.startswith(known):
                return m.group(1), title
        return None
    m = APPENDIX.match(text)
    if m:
        title = clean_title(m.group(3))
        if any(title.startswith(k) or title.endswith(k) for k in APPENDIX_TITLES):
            return f"({m.group(1)}{m.group(2)})", title
    return None


def section_label(title: str) -> str:
    """A numbered section's title without its number: "3. 特定個人情報ファイル名" → "特定個人情報ファイル名"."""
    m = NUMBERED.match(title)
    return m.group(2) if m else title


def part_name(numeral: str, title: str) -> str:
    return f"{numeral} {title}" if not numeral.startswith("(") else f"{numeral} {title}"


def clean_title(title: str) -> str:
    """A heading without its ※ note or the choice that some forms print beside it ("[] 委託しない")."""
    title = re.split(r"\s*(※|\[)", title, maxsplit=1)[0]
    return re.sub(r"\s+", " ", title).strip()


def kind_of(text: str) -> str | None:
    for kind in KINDS:
        if kind in text:
            return kind
    return None


def municipality_of(declaration: str) -> str | None:
    """The municipality as the report's own declaration names it: 「川崎市は、…を宣言する。」"""
    m = re.match(r"^\s*(\S{1,20}?(?:都|道|府|県|市|区|町|村|広域連合|組合))(?:長)?は[、,]", declaration)
    return m.group(1) if m else None


def date_in(text: str) -> str | None:
    m = DATE.search(text)
    return m.group(0).replace(" ", "") if m else None


ITEM_SEPARATORS = ",、・"


def split_items(text: str) -> list[str]:
    """A run-in list of record items ("1.個人番号,2.宛名番号", "資格状態・申請日・…") as single items.

    Separators inside parentheses belong to the item ("署名データ(署名検証年月日、署名検証結果)").
    """
    items: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch in "(（[【「":
            depth += 1
        elif ch in ")）]】」":
            depth = max(0, depth - 1)
        if ch in ITEM_SEPARATORS and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    items = [re.sub(r"^\d{1,3}\.\s*", "", i.strip()).strip() for i in items]
    items = [i for i in items if i]
    return items if len(items) > 1 else ([text] if text else [])
