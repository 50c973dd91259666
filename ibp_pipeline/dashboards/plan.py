"""The Plan page: an organisation's plan versions, the tracked version against its actuals (by part, with a
variance waterfall of the year to date and the exceptions in words), its triangulation and its lines by year, and
the workbook to download. Reads the served `plan` tables only.

Data functions take the served database; pure functions reshape frames for tables and figures and are tested on
small hand-made frames."""
from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from . import theme
from .serving import Serving

PARTS = {"activity": "Activity and performance", "workforce": "Workforce", "finance": "Finance"}
STATUS = {"pass": "Agrees", "fail": "Does not agree", "explained": "Explained", "not checked": "Not checked"}


def versions(db: Serving, org_code: str) -> pl.DataFrame:
    """Every version of every plan for the organisation, newest first."""
    if not db.has_table("plan", "versions"):
        return pl.DataFrame()
    return db.query("""select plan_id, period, version, status, loaded_by, loaded_at, file_name, data_as_of,
                              coalesce(example, false) as example, is_plan_of_record, productivity_explanation
                       from plan.versions where org_code = $org order by period, version desc""", {"org": org_code})


def version_label(row: dict) -> str:
    record = ", plan of record" if row["is_plan_of_record"] else ""
    example = ", EXAMPLE" if row["example"] else ""
    return (f"{row['period']}: version {row['version']} ({row['status']}{record}{example}), loaded "
            f"{row['loaded_at']:%-d %b %Y} by {row['loaded_by']}")


def tracked(frame: pl.DataFrame) -> int:
    """Index (in `versions` order) of the version a reader sees first: the plan of record, else the newest."""
    records = frame["is_plan_of_record"].fill_null(False).to_list()
    return records.index(True) if True in records else 0


def plan_vs_actual(db: Serving, plan_id: str, version: int) -> pl.DataFrame:
    return db.query("""select * from plan.plan_vs_actual where plan_id = $p and version = $v
                       order by part, line_id, month""", {"p": plan_id, "v": version})


def triangulation(db: Serving, plan_id: str, version: int) -> pl.DataFrame:
    return db.query("""select check_id, check_name, subject, period, status, planned, expected, tolerance, unit,
                              message
                       from plan.triangulation where plan_id = $p and version = $v
                       order by check_name, subject, period""", {"p": plan_id, "v": version})


def lines(db: Serving, plan_id: str, version: int) -> pl.DataFrame:
    return db.query("""select part, line_id, line, unit, staff_group, contract, derived, month, financial_year,
                              value, source
                       from plan.lines where plan_id = $p and version = $v order by part, line_id, month""",
                    {"p": plan_id, "v": version})


def budget(db: Serving, plan_id: str, version: int) -> pl.DataFrame:
    if not db.has_table("plan", "budget"):
        return pl.DataFrame()
    return db.query("""select financial_year, kind, item, cost_gbp, headroom_gbp, headroom_after_gbp, fits,
                              months_costed, source
                       from plan.budget where plan_id = $p and version = $v
                       order by financial_year, kind = 'headroom' desc, kind, item""", {"p": plan_id, "v": version})


def budget_table(frame: pl.DataFrame) -> pl.DataFrame:
    """The budget in words: each year's surplus, then each need or scenario against it alone."""
    from ..plan.budget import KINDS

    return frame.select(pl.col("financial_year").alias("Year"),
                        pl.col("kind").replace_strict(KINDS).alias("What"), pl.col("item").alias("Item"),
                        pl.col("cost_gbp").alias("Cost in the year (£)"),
                        pl.col("headroom_gbp").alias("Plan's surplus (£)"),
                        pl.col("headroom_after_gbp").alias("Left after it (£)"),
                        pl.when(pl.col("fits")).then(pl.lit("Fits")).otherwise(pl.lit("Does not fit"))
                        .alias("Within the budget?"), pl.col("source").alias("Where it came from"))


def stored(db: Serving, plan_id: str, version: int) -> dict[str, pl.DataFrame]:
    """The version's rows as the plan store holds them (for rebuilding its workbook)."""
    args = {"p": plan_id, "v": version}
    return {t: db.query(f"select * from plan.{t} where plan_id = $p and version = $v", args)
            for t in ("versions", "lines", "assumptions", "capital")}


def triangulation_summary(checks: pl.DataFrame) -> pl.DataFrame:
    """One row per check: how many periods agree, and the first disagreement in words."""
    if checks.is_empty():
        return pl.DataFrame(schema={"Check": pl.String, "Verdict": pl.String, "Agree": pl.UInt32,
                                    "Checked": pl.UInt32, "First problem": pl.String})
    return (checks.group_by("check_name", maintain_order=True)
            .agg((pl.col("status").is_in(["pass", "explained"])).sum().alias("Agree"), pl.len().alias("Checked"),
                 pl.col("message").filter(pl.col("status") == "fail").first().alias("First problem"),
                 (pl.col("status") == "explained").any().alias("explained"))
            .with_columns(pl.when(pl.col("Agree") == pl.col("Checked"))
                          .then(pl.when(pl.col("explained")).then(pl.lit("Explained")).otherwise(pl.lit("Agrees")))
                          .otherwise(pl.lit("Does not agree")).alias("Verdict"))
            .select(pl.col("check_name").alias("Check"), "Verdict", "Agree", pl.col("Checked").cast(pl.UInt32),
                    "First problem"))


def by_year(frame: pl.DataFrame) -> pl.DataFrame:
    """A part's lines by financial year: flows summed, levels (lists, FTE, beds, percentages) averaged."""
    if frame.is_empty():
        return frame
    from ..plan.lines import all_lines

    stock = pl.col("line_id").is_in([line.line_id for line in all_lines() if line.stock])
    out = (frame.group_by("line_id", "line", "unit", "financial_year", maintain_order=True)
           .agg(pl.col("value").mean().alias("mean"), pl.col("value").sum().alias("sum"),
                stock.first().alias("stock"), pl.col("source").first())
           .with_columns(pl.when(pl.col("stock")).then(pl.col("mean")).otherwise(pl.col("sum")).alias("value"))
           .pivot(on="financial_year", index=["line_id", "line", "unit", "source"], values="value"))
    return out.rename({"line": "Line", "unit": "Unit", "source": "Where the numbers came from"}).drop("line_id")


def variance_table(rows: pl.DataFrame) -> pl.DataFrame:
    variation = {code: label for code, (label, _, _) in theme.VARIATION.items()}
    return rows.filter(pl.col("planned").is_not_null()).select(
        pl.col("line").alias("Line"), pl.col("month").alias("Month"), pl.col("planned").alias("Plan"),
        pl.col("actual").alias("Actual"), pl.col("variance").alias("Variance"),
        pl.col("variance_pct").alias("Variance (%)"), pl.col("ytd_planned").alias("Plan, year to date"),
        pl.col("ytd_actual").alias("Actual, year to date"), pl.col("year_planned").alias("Plan for the year"),
        pl.col("outturn").alias("Forecast outturn"), pl.col("outturn_method").alias("Outturn from"),
        (100 * pl.col("p_meeting_plan")).alias("Chance of meeting the plan for the year (%)"),
        pl.col("variance_variation").replace_strict(variation, default="Not enough data")
        .alias("Variance: is it changing?"), pl.col("actual_source").alias("Actual from"))


def variance_figure(rows: pl.DataFrame, line_id: str) -> go.Figure:
    """The Making Data Count chart of one line's monthly variance (actual - plan): is the gap to plan moving, or
    is it noise around its usual level?"""
    from .charts import spc_figure

    these = rows.filter((pl.col("line_id") == line_id) & pl.col("planned").is_not_null()).sort("month")
    unit = {"GBP": "£", "FTE": "FTE"}.get(these["unit"][0], "") if these.height else ""
    return spc_figure(these.select(pl.col("month").alias("period_start"), pl.col("variance").alias("value"),
                                   pl.col("variance_centre").alias("mean"), pl.col("variance_lower").alias("lpl"),
                                   pl.col("variance_upper").alias("upl"),
                                   pl.col("variance_variation").alias("point_type"),
                                   pl.col("variance_signal").alias("special_cause_type")),
                      title=f"{these['line'][0] if these.height else ''}: actual minus plan", unit=unit, height=330)


def _millions(v: float) -> str:
    """£1.25m, -£10.47m; never -£0.00m."""
    v = round(v / 1e6, 2) + 0.0
    return f"-£{-v:,.2f}m" if v < 0 else f"£{v:,.2f}m"


def surplus_waterfall(rows: pl.DataFrame) -> tuple[go.Figure, str] | None:
    """The year to date's planned surplus, each finance line's variance as it moves the surplus, and the actual
    surplus: a waterfall that adds up. None without finance actuals."""
    fin = rows.filter((pl.col("part") == "finance") & pl.col("planned").is_not_null())
    if fin.is_empty():
        return None
    last = fin["month"].max()
    year = fin.filter(pl.col("month") == last)["financial_year"][0]
    ytd = fin.filter((pl.col("financial_year") == year) & (pl.col("month") <= last))
    sign = pl.when(pl.col("line_id").str.starts_with("income") | (pl.col("line_id") == "cip")).then(1.0) \
        .otherwise(-1.0)
    parts = (ytd.group_by("line_id", "line").agg(pl.col("planned").sum(), pl.col("actual").sum())
             .with_columns((sign * pl.col("planned")).alias("p"), (sign * (pl.col("actual") - pl.col("planned")))
                           .alias("effect")).sort("effect"))
    planned = float(parts["p"].sum())
    effects = parts.filter(pl.col("effect").abs() >= 0.5)
    actual = planned + float(effects["effect"].sum())
    labels = ["Planned surplus"] + effects["line"].to_list() + ["Actual surplus"]
    values = [planned / 1e6] + (effects["effect"] / 1e6).to_list() + [actual / 1e6]
    fig = go.Figure(go.Waterfall(
        x=labels, y=values, measure=["absolute"] + ["relative"] * effects.height + ["total"],
        increasing={"marker": {"color": theme.NHS_BLUE}}, decreasing={"marker": {"color": theme.NHS_ORANGE}},
        totals={"marker": {"color": theme.NHS_DARK_GREY}},
        hovertemplate="%{x}: %{y:+,.2f} £ million<extra></extra>"))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), yaxis_title="£ million",
                      showlegend=False, xaxis_tickangle=-30)
    months = ytd["month"].unique().sort()
    span = f"{months[0]:%b %Y} to {last:%b %Y}" if len(months) > 1 else f"{last:%b %Y}"
    return fig, (f"Surplus (+) or deficit (-), {year} year to date ({span}): planned {_millions(planned)}, "
                 f"actual {_millions(actual)}. Blue bars improve the surplus against plan, orange bars worsen "
                 "it.")


def workbook_bytes(tables: dict[str, pl.DataFrame]) -> bytes:
    """The stored version as the workbook a planner edits (the same sheets `ibp plan draft` writes)."""
    import tempfile
    from pathlib import Path

    from ..plan.store import document_from_rows
    from ..plan.workbook import write_workbook

    head = tables["versions"].row(0, named=True)
    doc = document_from_rows(
        (head["org_code"], head["org_name"], head["period"], head["data_as_of"], head["productivity_explanation"],
         head["example"]),
        tables["lines"].select("line_id", "month", "value", "source").rows(),
        tables["assumptions"].select("assumption_id", "assumption", "value", "unit", "source").rows(),
        tables["capital"].select("scheme", "category", "beds_added", "opens", "financial_year", "cost_gbp").rows())
    with tempfile.TemporaryDirectory() as tmp:
        return write_workbook(doc, Path(tmp) / "plan.xlsx").read_bytes()


REVIEWS_SQL = """select line_id, month, revision, what_happened, why, action, owner, due_date, status, entered_by,
                        entered_at
                 from plan.reviews where org_code = $org
                 qualify row_number() over (partition by line_id, month order by revision desc) = 1
                 order by status = 'closed', month desc, line_id"""


def reviews(db: Serving, org_code: str) -> pl.DataFrame:
    """Each review's latest revision for the organisation, open ones first (shown every month until closed):
    straight from the plan store when this machine holds it, so a review saved on the page shows at once, else the
    served copy (as of the last refresh)."""
    fresh = _store_reviews(org_code)
    if fresh is not None:
        return fresh
    if not db.has_table("plan", "reviews"):
        return pl.DataFrame()
    return db.query(REVIEWS_SQL, {"org": org_code})


def _store_reviews(org_code: str) -> pl.DataFrame | None:
    """None when the store is not on this machine, or is held by a refresh at this moment."""
    import duckdb

    from ..config import get_paths

    store = get_paths().plan_store
    if not store.exists():
        return None
    try:
        with duckdb.connect(str(store), read_only=True) as con:
            if not con.execute("select count(*) from information_schema.tables where table_schema = 'plan' "
                               "and table_name = 'reviews'").fetchone()[0]:
                return None
            return con.execute(REVIEWS_SQL, {"org": org_code}).pl()
    except duckdb.Error:
        return None


def review_sentence(row: dict, label: str) -> str:
    why = f" Why: {row['why']}." if row["why"] else ""
    return (f"**{label}, {row['month']:%B %Y}** ({row['status']}; owner {row['owner']}, due "
            f"{row['due_date']:%-d %B %Y}): {row['what_happened']}.{why} Action: {row['action']}.")


def may_review(user) -> bool:
    """ICB and admin users enter reviews from the page (and anyone in local mode, with no users configured)."""
    return user is None or user.role in ("icb", "admin")


def save_review(org_code: str, line_id: str, month, fields: dict, who: str) -> int:
    """Store a review entered on the page as the next revision of its (organisation, line, month) in the plan
    store (IBP_PLAN_STORE), the one place the dashboards write; returns the revision. A blank required field, or a
    store held by a refresh at that moment, is a ValueError in words (the page shows it; nothing is saved)."""
    from ..config import get_paths
    from ..plan.reviews import Review, save_reviews

    for key, label in (("what_happened", "What happened"), ("action", "Action"), ("owner", "Owner")):
        if not str(fields.get(key) or "").strip():
            raise ValueError(f"{label} is empty: every review says what happened, the action and its owner")
    review = Review(org_code, line_id, month, fields["what_happened"].strip(), str(fields.get("why") or "").strip(),
                    fields["action"].strip(), fields["owner"].strip(), fields["due_date"], fields["status"])
    import duckdb

    try:
        return save_reviews(get_paths().plan_store, [review], who, "dashboard")[0]
    except duckdb.IOException as exc:  # a refresh or a plan load holds the store for a moment
        raise ValueError("The plan store is busy (a refresh or a plan load is reading it): nothing was saved; "
                         "save the review again in a few seconds") from exc
