"""Query-side vocabulary: everyday Japanese and English mapped to the national template's terms.

Users ask 「誰に渡す？」 or "Who receives…"; the form says 提供先/移転先. Expanding the query with the form's
terms lets BM25 and the vectors find the right blocks, and tells the answerer which field is wanted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.reading import normalize

# template term → phrases that mean it (matched on the NFKC, lower-cased question)
TERMS: dict[str, tuple[str, ...]] = {
    "提供先": ("提供先", "受け取る", "受けとる", "受領する", "渡す", "渡さ", "渡る", "渡され", "送る", "送ら", "提供され", "提供して",
               "誰に", "への提供", "に提供", "提供する相手", "recipient", "receive", "provided to", "shared with", "share", "gives", "sent to", "provide"),
    "移転先": ("移転先", "移転", "庁内", "他部署", "内部", "transfer", "internal", "within the city", "other departments"),
    "委託先": ("委託先", "委託", "外注", "委託業者", "ベンダー", "請負", "outsourc", "contractor", "vendor", "entrust", "subcontract"),
    "再委託": ("再委託", "下請", "subcontract", "re-entrust"),
    "システム": ("システム", "system", "software", "サーバ"),
    "保管": ("保管", "保存", "保持", "保管場所", "保管期間", "どこに保管", "いつまで", "retention", "retain", "kept", "stored", "storage", "keep"),
    "消去": ("消去", "削除", "廃棄", "delete", "erase", "dispos"),
    "問合せ": ("問合せ", "問い合わせ", "問合わせ", "連絡先", "誰に聞", "窓口", "contact", "inquir", "enquir", "phone", "ask about"),
    "開示請求": ("開示", "請求先", "disclosure", "access request"),
    "公表日": ("公表日", "公表", "公開日", "いつ公表", "published", "publication", "release date"),
    "評価書番号": ("評価書番号", "report number"),
    "評価書の種類": ("全項目評価書", "重点項目評価書", "基礎項目評価書", "種類", "kind of report", "type of report"),
    "評価実施機関": ("評価実施機関", "実施機関", "evaluator", "who conducted", "which body"),
    "対象となる本人の数": ("本人の数", "対象人数", "何人", "人数", "how many people", "number of people", "individuals"),
    "取扱者数": ("取扱者数", "取扱者", "handlers", "staff handling"),
    "記録項目": ("記録項目", "記録される項目", "項目", "どんな情報", "何の情報", "record items", "data items", "fields recorded", "what data"),
    "変更箇所": ("変更箇所", "変更", "改訂", "修正", "change", "amend", "revision"),
    "担当部署": ("担当部署", "部署", "所属長", "department", "division", "section in charge"),
    "入手元": ("入手元", "入手", "どこから", "取得", "obtain", "source of", "collect"),
    "使用目的": ("使用目的", "目的", "purpose", "why"),
    "情報連携": ("情報連携", "情報提供ネットワーク", "network system", "data linkage"),
    "法令上の根拠": ("法令上の根拠", "根拠", "法律", "legal basis", "law", "statute"),
    "提供方法": ("方法", "どうやって", "手段", "method", "how is", "how are", "by what means"),
    "時期・頻度": ("頻度", "時期", "いつ", "どのくらいの頻度", "how often", "frequency", "when"),
    "全項目評価書": ("全項目評価書", "全項目", "full assessment", "full evaluation"),
    "重点項目評価書": ("重点項目評価書", "重点項目", "priority assessment", "focused"),
}

# Names of the 事務 (what a report is about), everyday and English → the words the reports use.
AFFAIRS: dict[str, tuple[str, ...]] = {
    "生活保護": ("生活保護", "生保", "public assistance", "welfare assistance", "livelihood protection", "welfare"),
    "児童手当": ("児童手当", "child allowance", "child benefit"),
    "子育て支援": ("子育て支援", "子育て", "child-rearing", "childcare support", "child care support", "child rearing"),
    "子ども医療費": ("子ども医療費", "子供の医療費", "こども医療費", "医療費助成", "child medical", "medical expense"),
    "住民基本台帳": ("住民基本台帳", "住基", "住民票", "resident register", "residents' register", "basic resident"),
}

ENGLISH = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class Expansion:
    text: str  # the question with the form's terms appended, for BM25 and the embedder
    terms: tuple[str, ...]  # template terms the question asks about
    affairs: tuple[str, ...]  # report subjects it names
    english: bool


def expand(question: str) -> Expansion:
    q = normalize(question).lower()
    terms = tuple(t for t, phrases in TERMS.items() if any(p.lower() in q for p in phrases))
    affairs = tuple(a for a, phrases in AFFAIRS.items() if any(p.lower() in q for p in phrases))
    english = len(ENGLISH.findall(q)) >= 2 and not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]{3,}", q)
    extra = [t for t in (*terms, *affairs) if t not in q]
    text = normalize(question) + (" " + " ".join(extra) if extra else "")
    return Expansion(text=text, terms=terms, affairs=affairs, english=english)


_KANA = {
    "キャ": "kya", "キュ": "kyu", "キョ": "kyo", "シャ": "sha", "シュ": "shu", "ショ": "sho", "チャ": "cha",
    "チュ": "chu", "チョ": "cho", "ニャ": "nya", "ニュ": "nyu", "ニョ": "nyo", "ヒャ": "hya", "ヒュ": "hyu",
    "ヒョ": "hyo", "ミャ": "mya", "ミュ": "myu", "ミョ": "myo", "リャ": "rya", "リュ": "ryu", "リョ": "ryo",
    "ギャ": "gya", "ギュ": "gyu", "ギョ": "gyo", "ジャ": "ja", "ジュ": "ju", "ジョ": "jo", "ビャ": "bya",
    "ビュ": "byu", "ビョ": "byo", "ピャ": "pya", "ピュ": "pyu", "ピョ": "pyo",
}
_MORA = dict(zip(
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポ",
    "a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no ha hi fu he ho ma mi mu me mo ya yu yo "
    "ra ri ru re ro wa o n ga gi gu ge go za ji zu ze zo da ji zu de do ba bi bu be bo pa pi pu pe po".split(),
))


def romanize(katakana: str) -> str:
    """Hepburn romaji of a katakana reading, so "Kawasaki" finds 川崎市 through Sudachi's reading 'カワサキ'."""
    out: list[str] = []
    i = 0
    while i < len(katakana):
        pair = katakana[i : i + 2]
        if pair in _KANA:
            out.append(_KANA[pair])
            i += 2
            continue
        ch = katakana[i]
        if ch == "ッ" and i + 1 < len(katakana):
            nxt = _MORA.get(katakana[i + 1], "")
            out.append(nxt[:1])
        elif ch == "ー":
            pass
        else:
            out.append(_MORA.get(ch, ""))
        i += 1
    return "".join(out)

# Words that name a field of the form (the answerer's field targets): template vocabulary, not content.
FIELD_PHRASES = (
    "使用者数", "職員", "使用部署", "使用する部署", "支所", "使用開始日", "使用開始", "保有開始", "保有開始日", "基礎項目評価", "実施日",
    "第三者点検", "意見の聴取", "保管期間", "保管場所", "サーバー", "サーバ", "消去方法", "手数料", "請求先", "連絡先", "担当部署",
    "所属長", "役職", "対象人数", "本人の数", "人数", "本人の範囲", "入手元", "入手先", "入手方法", "使用目的", "目的", "情報照会",
    "情報連携", "個人番号の利用", "法令上の根拠", "根拠", "ファイル名", "記録される項目", "項目数", "重大事故", "しきい値",
    "ファイル簿", "事務の名称", "事務の内容", "用途", "方法", "頻度", "時期", "委託内容", "取扱者数", "再委託事項", "許諾方法",
    "委託先名", "確認方法", "機能", "接続", "範囲", "区分", "分類", "名称",
)
