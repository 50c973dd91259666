"""Find the machine words a board member should never read: metric ids, warehouse table names, snake_case
identifiers, file paths and Python reprs, plus the number slips that give them away (unformatted thousands,
"1 months").

Pure functions of text, so the page-text test and any check of the board pack share one definition."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

# Words with underscores that are names, not jargon: the product's own name in the header.
ALLOWED = frozenset({"ibp_pipeline"})

_URL = re.compile(r"https?://\S+|www\.\S+")
_SNAKE = re.compile(r"(?<![\w.])[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+(?![\w])")
_QUALIFIED = re.compile(r"(?<![\w.])(?:s\d_[a-z_]+|raw|latest|serving|records)\.[a-z][a-z0-9_]*(?![\w(])")
_PATH = re.compile(r"(?<![\w:/.])(?:~|\.{1,2})?/(?:[\w.-]+/)+[\w.-]*[A-Za-z][\w.-]*")
_FILE = re.compile(r"(?<![\w.])[\w-]+\.(?:ya?ml|py|duckdb|csv|parquet|toml|json|gz)(?![\w])")
_REPR = re.compile(r"\b[A-Z]{2,}\([A-Z](?:,[A-Z]{1,2})+\)|\b[a-z_]+\([a-z_]+=|\bnan\b|<[\w.]+ object at 0x|"
                   r"\b[a-z][a-z0-9]*=\S")
_BARE_THOUSANDS = re.compile(r"(?<![\w.,/-])\d{5,}(?:\.\d+)?(?![\w%/-])")
_POINT_ZERO = re.compile(r"\d,\d{3}\.0\b")
_ONE_PLURAL = re.compile(r"(?<![\d.,])\b1 (?:months|years|weeks|days|patients|beds|trusts)\b")


@dataclass(frozen=True)
class Leak:
    rule: str
    found: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.found!r} in {self.text[:160]!r}"


def leaks(text: str, metric_ids: Iterable[str] = (), table_names: Iterable[str] = (), *,
          numbers: bool = True) -> list[Leak]:
    """Every machine word in one visible string. metric_ids and table_names ('schema.table') come from the
    catalogue; numbers=False skips the number-format rules (for table cells, where the grid formats numbers)."""
    found: list[Leak] = []
    plain = _URL.sub(" ", text)
    ids = {m for m in metric_ids if m}
    for table in table_names:
        if re.search(rf"(?<![\w.]){re.escape(table)}(?![\w])", plain):
            found.append(Leak("table name", table, text))
    for match in _QUALIFIED.finditer(plain):
        if not any(lk.found == match.group(0) for lk in found):
            found.append(Leak("table name", match.group(0), text))
    for match in _SNAKE.finditer(plain):
        word = match.group(0)
        if word in ALLOWED or word.isupper() or any(word in lk.found for lk in found):
            continue
        found.append(Leak("metric id" if word in ids else "snake_case identifier", word, text))
    for rule, pattern in (("file path", _PATH), ("file name", _FILE), ("python repr", _REPR)):
        found += [Leak(rule, m.group(0), text) for m in pattern.finditer(plain)]
    for metric in ids:  # ids shown with spaces for underscores ('ae 4hr pct') still read as ids
        spaced = metric.replace("_", " ")
        if "_" in metric and re.search(rf"(?<![\w]){re.escape(spaced)}(?![\w])", plain):
            found.append(Leak("metric id", spaced, text))
    if numbers:
        found += [Leak("number without thousands separators", m.group(0), text)
                  for m in _BARE_THOUSANDS.finditer(plain)]
        found += [Leak("whole number shown with .0", m.group(0), text) for m in _POINT_ZERO.finditer(plain)]
        found += [Leak("plural after 1", m.group(0), text) for m in _ONE_PLURAL.finditer(plain)]
    return found
