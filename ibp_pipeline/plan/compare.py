"""What moved between two versions of a plan: the lines whose numbers changed (derived lines included, so a change
shows where it flows) and the checks whose verdict changed."""
from __future__ import annotations

import numpy as np

from .document import PlanDocument
from .lines import by_id
from .triangulation import CHECK_NAMES, Check


def changed_lines(old: PlanDocument, new: PlanDocument) -> list[str]:
    """One sentence per line whose values differ: how many months, and the change over the period."""
    lines = by_id()
    out = []
    for line_id, line in lines.items():
        a, b = old.values.get(line_id), new.values.get(line_id)
        if a is None or b is None or len(a) != len(b):
            continue
        diff = np.nan_to_num(b) - np.nan_to_num(a)
        moved = np.flatnonzero((np.abs(diff) > 1e-9) | (np.isnan(a) != np.isnan(b)))
        if not len(moved):
            continue
        months = new.period.months
        span = (f"{months[moved[0]]:%b %Y}" if len(moved) == 1
                else f"{len(moved)} months, {months[moved[0]]:%b %Y} to {months[moved[-1]]:%b %Y}")
        total = diff.sum()
        amount = (f"{total:+,.2f} points summed" if line.percent else f"{total:+,.{line.decimals}f} {line.unit}")
        out.append(f"{line.label}: {span} ({amount})" + (" [worked out]" if line.derived else ""))
    return out


def changed_checks(old: list[Check], new: list[Check]) -> list[str]:
    """One sentence per check whose verdict changed, with its new numbers."""
    before = {(c.check_id, c.subject, c.period): c.status for c in old}
    out = []
    for c in new:
        was = before.get((c.check_id, c.subject, c.period))
        if was is not None and was != c.status:
            out.append(f"{CHECK_NAMES[c.check_id]}: {was} -> {c.status}: {c.message}")
    return out
