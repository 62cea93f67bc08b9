"""HTML fragments inside cells → plain text, and the selected options of choice fields.

The converters that produced these files left `<input>` boxes whose `checked` attribute is unreliable
(most are unchecked even for the chosen option). The form's own bracket text is the better witness:
`[委託する] <選択肢> 1) 委託する 2) 委託しない` or `[ ○ ] 情報提供ネットワークシステム`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from qa.reading import NOT_CONTENT as _NOT_CONTENT

_BLOCK_TAGS = re.compile(r"</?(p|br|li|ul|ol|tr|table|tbody|thead|div|h\d)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]{0,400}>")
_INPUT = re.compile(r"<input\b[^>]*?/?>", re.I)
_SPACES = re.compile(r"[ \t\u3000]+")
# An option marker "1) " starts the text or follows a space: "(2) 件" (a count) and "※1)" are not markers.
_OPTION_MARK = re.compile(r"(?<!\S)\d{1,2}\)\s*")
# What some forms print after the last option: the count of a choice ("2) 委託しない (2) 件").
_OPTION_TAIL = re.compile(r"\s*\(\s*\d*\s*\)\s*件.*$")
_BRACKET_TEXT = re.compile(r"\[\s*([^\[\]<>○]{1,60}?)\s*\]")
# One mark of a checkbox list and the option text after it.
_MARK = re.compile(
    r"(\[\s*○\s*\]|\[\s*<input\b[^>]*>\s*\]|\[\s*\]|<input\b[^>]*>)"
)
# A group heading of a checkbox list that the converter glued to the previous option ("… ・連絡先等情報").
_GROUP_TAIL = re.compile(r"\s+・\S+$")


def strip_html(value: str) -> str:
    """Plain text of a cell: tags removed (block tags become line breaks), entities decoded."""
    text = _NOT_CONTENT.sub(" ", value) if "<" in value else value
    text = _INPUT.sub(lambda m: " ", text)
    text = _BLOCK_TAGS.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def has_markup(value: str) -> bool:
    return "<" in value and bool(_TAG.search(value))


@dataclass(frozen=True)
class Choice:
    selected: list[str] | None
    options: list[str]


def read_choice(value: str) -> Choice | None:
    """The selected option(s) of a choice field, or None when the value offers no choice.

    `selected` is None when the field is a choice but the file does not say which (all boxes alike),
    and an empty list when the form visibly leaves every option unchosen (`[] <選択肢> 1) …`, `[] A [] B`).
    """
    value = value.replace("&lt;選択肢&gt;", "<選択肢>")
    if "<" in value:
        value = _NOT_CONTENT.sub(" ", value)
    split = _split_options(value)
    if split is not None:
        head, tail = split
        options = _options(tail)
        bracket = [b.strip() for b in _BRACKET_TEXT.findall(_INPUT.sub("", head)) if b.strip()]
        if bracket:
            return Choice([_closest(bracket[0], options)], options)
        # No bracket around the choice ("<input/> 10人以上50人未満] <選択肢>", "<input/> 委託する [ ]"):
        # the text before the list is the choice when it names one of the options.
        plain = strip_html(re.sub(r"\[\s*\]", " ", head)).replace("\n", " ")
        plain = re.sub(r"[\[\]]", " ", plain)
        plain = _OPTION_TAIL.sub("", plain).strip()
        squeezed = plain.replace(" ", "")
        for opt in options:
            o = opt.replace(" ", "")
            if squeezed and (squeezed == o or squeezed.endswith(o)):
                return Choice([opt], options)
        if not squeezed and re.search(r"\[\s*\]", head) and not _INPUT.search(head):
            return Choice([], options)  # the empty template's "[ ]": nothing chosen
        return Choice(None, options)
    return _read_checklist(value)


def _split_options(value: str) -> tuple[str, str] | None:
    """(the choice, the option list) of a value that offers numbered options, else None.

    The list follows <選択肢>; some converters dropped that word ("… 100人以上500人未満 [] 1) 10人未満 2) …"),
    so a short head followed by "1) … 2) …" is read the same way.
    """
    if "<選択肢>" in value or "＜選択肢＞" in value:
        head, _, tail = re.split(r"(<選択肢>|＜選択肢＞)", value, maxsplit=1)
        return head, tail
    first = re.search(r"(?<!\S)1\)\s*\S", value)
    if first is None or not re.search(r"(?<!\S)2\)\s*\S", value[first.end() :]):
        return None
    head = value[: first.start()]
    if len(strip_html(head)) > 60:
        return None
    return head, value[first.start() :]


def _options(tail: str) -> list[str]:
    """The numbered options after <選択肢>: "1) 1万人未満 2) 1万人以上10万人未満 …" (digits inside options kept)."""
    text = strip_html(tail).replace("\n", " ")
    parts = _OPTION_MARK.split(text)
    options = []
    for part in parts[1:]:
        option = _OPTION_TAIL.sub("", part).strip()
        # The last option can run into the next paragraph of the cell ("3) 未定 ・番号法第19条…").
        option = re.split(r"\s+[・【]", option, maxsplit=1)[0].strip()
        if option:
            options.append(option)
    return options


def _closest(text: str, options: list[str]) -> str:
    """The option the bracket names: equal ignoring spaces, else the one option it begins ("[無料]")."""
    squeezed = text.replace(" ", "")
    for opt in options:
        if opt.replace(" ", "") == squeezed:
            return opt
    starting = [opt for opt in options if opt.replace(" ", "").startswith(squeezed)]
    return starting[0] if len(starting) == 1 else text


def _read_checklist(value: str) -> Choice | None:
    """A list of marks and options: `[○] A [] B`, `[<input/>] A [] B`, `<input checked/> A <input/> B`.

    Which marks to believe, strongest first: circles; bracketed boxes where other options have empty
    brackets (the converter boxed only the chosen ones); radio buttons among checkboxes (the converter
    turned the chosen ones into radios); `checked` attributes; else nothing is known.
    """
    parts = _MARK.split(value)
    marks = list(zip(parts[1::2], parts[2::2]))
    items: list[tuple[str, str, str]] = []  # (mark kind, input type, option text)
    for mark, text in marks:
        label = strip_html(text).replace("\n", " ").strip()
        label = _GROUP_TAIL.sub("", label).strip().strip("[]").strip()  # "情報提供ネットワークシステム [" (torn)
        if not label:
            continue
        items.append((_mark_kind(mark), _input_type(mark), label))
    if len(items) == 1 and items[0][0] == "circle" and len(marks) == 1:
        # 004: "[ ○ ] 情報提供ネットワークシステム [" — the other options were torn off by the layout.
        return Choice([items[0][2]], [items[0][2]])
    if len(items) < 2:
        return None
    options = [label for _, _, label in items]

    def chosen(pred) -> list[str]:
        return list(dict.fromkeys(label for kind, typ, label in items if pred(kind, typ)))

    kinds = {kind for kind, _, _ in items}
    circles = chosen(lambda k, t: k == "circle")
    if circles:
        return Choice(circles, options)
    boxed_kinds = {"boxed", "boxed-checked"}
    if kinds & boxed_kinds and "empty" in kinds:
        return Choice(chosen(lambda k, t: k in boxed_kinds), options)
    boxed_types = {typ for kind, typ, _ in items if kind in boxed_kinds}
    if kinds <= boxed_kinds and boxed_types == {"radio", "checkbox"}:
        return Choice(chosen(lambda k, t: t == "radio"), options)
    checked = chosen(lambda k, t: k in ("checked", "boxed-checked"))
    if checked:
        return Choice(checked, options)
    if kinds == {"empty"}:
        return Choice([], options)  # "[] A [] B": an empty template field
    return Choice(None, options)


def _mark_kind(mark: str) -> str:
    if "○" in mark:
        return "circle"
    if "<input" in mark:
        checked = bool(re.search(r"\bchecked\b", mark))
        if mark.startswith("["):
            return "boxed-checked" if checked else "boxed"
        return "checked" if checked else "box"
    return "empty"


def _input_type(mark: str) -> str:
    m = re.search(r"type=\"?(\w+)", mark)
    return m.group(1).lower() if m else ""
