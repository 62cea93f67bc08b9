"""HTML fragments inside cells → plain text, and the selected options of choice fields.

The converters that produced these files left `<input>` boxes whose `checked` attribute is unreliable
(most are unchecked even for the chosen option). The form's own bracket text is the better witness:
`[委託する] <選択肢> 1) 委託する 2) 委託しない` or `[ ○ ] 情報提供ネットワークシステム`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_BLOCK_TAGS = re.compile(r"</?(p|br|li|ul|ol|tr|table|tbody|thead|div|h\d)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]{0,400}>")
_INPUT = re.compile(r"<input\b[^>]*?/?>", re.I)
_SPACES = re.compile(r"[ \t\u3000]+")
_OPTIONS = re.compile(r"(\d{1,2})\)\s*([^\d<>\[\]]+?)(?=\s*\d{1,2}\)|$)")
_BRACKET_TEXT = re.compile(r"\[\s*([^\[\]<>○]{1,60}?)\s*\]")
# One mark of a checkbox list and the option text after it.
_MARK = re.compile(
    r"(\[\s*○\s*\]|\[\s*<input\b[^>]*>\s*\]|\[\s*\]|<input\b[^>]*>)"
)


def strip_html(value: str) -> str:
    """Plain text of a cell: tags removed (block tags become line breaks), entities decoded."""
    text = _INPUT.sub(lambda m: " ", value)
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

    `selected` is None when the field is a choice but the file does not say which (all boxes alike).
    """
    if "<選択肢>" in value or "＜選択肢＞" in value:
        head, _, tail = re.split(r"(<選択肢>|＜選択肢＞)", value, maxsplit=1)
        options = [o.strip() for _, o in _OPTIONS.findall(strip_html(tail).replace("\n", " "))]
        options = [o for o in options if o]
        bracket = [b.strip() for b in _BRACKET_TEXT.findall(_INPUT.sub("", head)) if b.strip()]
        if bracket:
            return Choice([_closest(bracket[0], options)], options)
        plain = strip_html(re.sub(r"\[\s*\]", " ", head)).strip()
        for opt in options:
            if plain and (plain == opt or plain.endswith(opt)):
                return Choice([opt], options)
        return Choice(None, options)
    return _read_checklist(value)


def _closest(text: str, options: list[str]) -> str:
    squeezed = text.replace(" ", "")
    for opt in options:
        if opt.replace(" ", "") == squeezed:
            return opt
    return text


def _read_checklist(value: str) -> Choice | None:
    parts = _MARK.split(value)
    if len(parts) < 4:  # fewer than two marks: not a checkbox list
        return None
    items: list[tuple[str, str]] = []  # (mark kind, option text)
    for mark, text in zip(parts[1::2], parts[2::2]):
        label = strip_html(text).replace("\n", " ").strip()
        if not label:
            continue
        items.append((_mark_kind(mark), label))
    if len(items) < 2:
        return None
    options = [label for _, label in items]
    strong = list(dict.fromkeys(label for kind, label in items if kind in ("circle", "checked")))
    if strong:
        return Choice(strong, options)
    kinds = {kind for kind, _ in items}
    if "boxed" in kinds and "empty" in kinds:  # boxes only where chosen, empty brackets elsewhere
        return Choice([label for kind, label in items if kind == "boxed"], options)
    return Choice(None, options)


def _mark_kind(mark: str) -> str:
    if "○" in mark:
        return "circle"
    if "<input" in mark:
        if re.search(r"\bchecked\b", mark):
            return "checked"
        return "boxed" if mark.startswith("[") else "box"
    return "empty"
