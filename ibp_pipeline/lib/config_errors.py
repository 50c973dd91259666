"""Pydantic validation errors as one readable line each: 'file: where: what, got value'.

Why shared: standards, local ambitions, initiatives and scenarios are all YAML documents an analyst edits, and a
mistake in any of them must name the file, the item (by its id where it has one) and the field the same way.
"""
from __future__ import annotations

from typing import Any, Callable

Label = Callable[[str, int, Any], str]  # (list name, index, raw item) -> ' (its id)' or ''

TYPE_HINTS = {
    "date_type": "a date written unquoted as YYYY-MM-DD",
    "float_type": "a number",
    "int_type": "a whole number",
    "string_type": "text (quote it)",
    "list_type": "a list",
    "bool_type": "true or false",
}


def id_label(id_fields: dict[str, str]) -> Label:
    """Label items of the named top-level lists by an id field: {'standards': 'standard_id'}."""
    def label(kind: str, index: int, item: Any) -> str:
        field = id_fields.get(kind)
        if field is None or not isinstance(item, dict):
            return ""
        return f" ({item.get(field, f'no {field}')})"
    return label


def loc_text(loc: tuple[Any, ...], raw: Any, label: Label) -> str:
    """('standards', 3, 'source', 'year') -> 'standards[3] (rtt_18wk_2026).source.year'."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            text = f"[{item}]"
            if i == 1 and isinstance(raw, dict) and isinstance(raw.get(loc[0]), list) and item < len(raw[loc[0]]):
                text += label(str(loc[0]), item, raw[loc[0]][item])
            parts.append(text)
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def error_line(file: str, err: dict[str, Any], raw: Any, *, label: Label, fields_hint: str,
               hints: dict[str, str] | None = None, strip: tuple[str, ...] = ("Value error, ", "Assertion failed, "),
               pattern_message: str | None = None, no_value_types: tuple[str, ...] = (),
               no_value_inputs: tuple[type, ...] = (dict, list)) -> str:
    """One pydantic error (an item of ValidationError.errors()) as 'file: where: what'."""
    loc = tuple(x for x in err.get("loc", ()) if not (isinstance(x, str) and x.startswith("function-")))
    etype = err.get("type", "")
    where = loc_text(loc, raw, label) or "(top level)"
    msg = str(err.get("msg", "invalid"))
    for prefix in strip:
        msg = msg.removeprefix(prefix)
    if etype == "missing":
        return f"{file}: {where}: required field is missing"
    if etype == "extra_forbidden":
        return f"{file}: {where}: unknown field ({fields_hint})"
    hints = {**TYPE_HINTS, **(hints or {})}
    if etype in hints:
        msg = f"must be {hints[etype]}"
    elif msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    elif pattern_message and msg.startswith("String should match pattern"):
        msg = pattern_message
    if etype not in no_value_types and "got " not in msg and "input" in err \
            and not isinstance(err["input"], no_value_inputs):
        value = err["input"]
        msg += f", got {value!r}" if isinstance(value, str) else f", got {value}"
    return f"{file}: {where}: {msg}"
