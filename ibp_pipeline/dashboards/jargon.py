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
          numbers: bool = True, file_names: bool = True) -> list[Leak]:
    """Every machine word in one visible string. metric_ids and table_names ('schema.table') come from the
    catalogue; numbers=False skips the number-format rules (for table cells, where the grid formats numbers);
    file_names=False allows a bare file name (a table cell naming the NHS England file a figure was loaded
    from, on the Data quality page's audit tables); paths are never allowed."""
    found: list[Leak] = []
    plain = _URL.sub(" ", text)
    if not file_names:  # a file's own name may have underscores: it is the file's name, not an identifier
        plain = re.sub(r"(?<![\w.])[\w-]+\.(?:ya?ml|py|duckdb|csv|parquet|toml|json|xlsx?|zip)(?:\.gz|\.zip)?(?![\w])",
                       " ", plain)
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
    for rule, pattern in (("file path", _PATH), ("file name", _FILE if file_names else None), ("python repr", _REPR)):
        if pattern is None:
            continue
        found += [Leak(rule, m.group(0), text) for m in pattern.finditer(plain)]
    for metric in ids:  # ids shown with spaces for underscores ('ae 4hr pct') still read as ids, when they
        spaced = metric.replace("_", " ")  # have a machine-made part ('4hr', 'pct', '52wk'), unlike 'ae attendances'
        machine = any(re.search(r"\d", part) or part in ("pct", "fte", "ga", "vw") for part in metric.split("_"))
        if "_" in metric and machine and re.search(rf"(?<![\w]){re.escape(spaced)}(?![\w])", plain):
            found.append(Leak("metric id", spaced, text))
    if numbers:
        found += [Leak("number without thousands separators", m.group(0), text)
                  for m in _BARE_THOUSANDS.finditer(plain)]
        found += [Leak("whole number shown with .0", m.group(0), text) for m in _POINT_ZERO.finditer(plain)]
        found += [Leak("plural after 1", m.group(0), text) for m in _ONE_PLURAL.finditer(plain)]
    return found


# ---- turning the warehouse's words into a reader's ------------------------------------------------------------

_ETS = re.compile(r"\bETS\(([AM]),([NA]d?),([NAM])\)")
_PARAMS = re.compile(r"\s*\((?:[a-z_]+=[^,;()]+[,;]?\s*)+\)")
_CANDIDATES = re.compile(r",?\s*lowest AICc of \[[^\]]*\]")
_RATIO = re.compile(r"\bratio\(num=([^;()]*(?:\([^)]*\))?[^;()]*);\s*den=([^;()]*(?:\([^)]*\))?[^;()]*)\)")
_FILE_REF = re.compile(r"\s*(?:in |from |e\.g\. )?\b[\w-]+\.(?:ya?ml|py|duckdb|csv|parquet|toml|json|xlsx)"
                       r"(?:\.gz)?\b:?")


def ets_words(match: re.Match) -> str:
    """ETS(A,Ad,A) -> 'exponential smoothing with a damped trend and seasonality' (the model in words)."""
    _error, trend, season = match.groups()
    parts = []
    if trend != "N":
        parts.append("a damped trend" if trend.endswith("d") else "a trend")
    if season != "N":
        parts.append("seasonality")
    return "exponential smoothing" + (" with " + " and ".join(parts) if parts else " (level only)")


def in_words(text: str | None, names: dict[str, str] | None = None) -> str:
    """Technical text from the warehouse (methods, formulas, sources, rule names) in a reader's words: metric ids
    and publication names become their catalogue names, schema.table references and file names go, model reprs
    are spelt out (ETS(A,N,A) -> 'exponential smoothing with seasonality'), fitted parameters and the AICc
    league are dropped, and any other snake_case word loses its underscores. The meaning stays; the code goes."""
    if not text:
        return text or ""
    from ..step1_current_state.sources import BY_NAME

    names = dict(names or {})
    names.update({k: v.title for k, v in BY_NAME.items() if k not in names})
    out = text.replace("`", "")
    out = _CANDIDATES.sub("", out)
    out = _PARAMS.sub("", out)
    out = _RATIO.sub(lambda m: f"a ratio of two forecasts (the numerator by {m.group(1).strip()}, the denominator "
                               f"by {m.group(2).strip()})", out)
    out = _ETS.sub(ets_words, out)
    out = _FILE_REF.sub("", out)

    def qualified(m: re.Match) -> str:
        parts = m.group(0).split(".")
        if len(parts) == 3 and parts[2] in names:
            return names[parts[2]]
        return "the " + ("published figures" if parts[1] == "metric_values" else parts[1].replace("_", " "))

    out = re.sub(r"(?<![\w.])(?:s\d_[a-z_]+|raw|latest)\.[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?", qualified, out)

    def word(m: re.Match) -> str:
        w = m.group(0)
        if w in ALLOWED:
            return w
        if w in names:
            return names[w]
        part, _, whole = w.partition("_pct_of_")  # a derived ratio measure: 'x_pct_of_y'
        if whole and part in names and whole in names:
            return f"{names[part]} as a percentage of {names[whole]}"
        prefix = max((m for m in names if "_" in m and w.startswith(m + "_")), key=len, default=None)
        if prefix:  # a column of a measure ('ae_attendances_type_1'): the measure's name, then the rest
            return f"{names[prefix]} {w[len(prefix) + 1:].replace('_', ' ')}"
        return w.replace("_", " ")

    out = _SNAKE.sub(word, out)
    out = re.sub(r"(?<![\w.,/-])\d{5,}(?![\w%/-])", lambda m: f"{int(m.group(0)):,}", out)
    return re.sub(r"\s{2,}", " ", out).strip()


def visible_html(markup: str) -> list[str]:
    """The words a reader meets in a piece of HTML: its text without tags or style sheets, and each title
    attribute (a hover tooltip) on its own."""
    import html as html_lib

    body = re.sub(r"<style\b.*?</style>", " ", markup, flags=re.S | re.I)
    titles = [html_lib.unescape(t) for t in re.findall(r'\btitle="([^"]*)"', body)]
    titles += [html_lib.unescape(t) for t in re.findall(r'\baria-label="([^"]*)"', body)]
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", body))
    return [t for t in [re.sub(r"\s+", " ", text).strip(), *titles] if t]
