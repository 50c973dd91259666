"""IBP dashboards: the Streamlit entry point (`ibp dashboard`).

Runs on every page view: the NHS look, the login (when users are configured), the global organisation and
period selector in the sidebar (kept across pages and in the address bar), then the chosen page."""
from __future__ import annotations

from datetime import date

import streamlit as st

from ibp_pipeline import access
from ibp_pipeline.dashboards import organisations, theme, ui
from ibp_pipeline.dashboards.serving import ServingUnavailable

st.set_page_config(page_title="IBP dashboards", layout="wide",  # no page_icon: a material icon is fetched from Google
                   initial_sidebar_state="expanded")
st.markdown(theme.APP_CSS, unsafe_allow_html=True)
masthead = st.empty()  # the blue header strip's words: the product now, the organisation once it is chosen
masthead.markdown(theme.masthead_html(None), unsafe_allow_html=True)
theme.register_plotly_template()

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
            default=True),
    st.Page("app_pages/performance.py", title="Performance", icon=":material/show_chart:", url_path="performance"),
    st.Page("app_pages/ipr.py", title="Performance report", icon=":material/summarize:", url_path="report"),
    st.Page("app_pages/benchmarking.py", title="Benchmarking", icon=":material/leaderboard:",
            url_path="benchmarking"),
    st.Page("app_pages/resources.py", title="Resources", icon=":material/groups:", url_path="resources"),
    st.Page("app_pages/gaps.py", title="Gaps and needs", icon=":material/straighten:", url_path="gaps"),
    st.Page("app_pages/forecasts.py", title="Forecasts and risk", icon=":material/timeline:", url_path="forecasts"),
    st.Page("app_pages/scenarios.py", title="Scenarios", icon=":material/alt_route:", url_path="scenarios"),
    st.Page("app_pages/plan.py", title="Plan", icon=":material/assignment:", url_path="plan"),
    st.Page("app_pages/workforce.py", title="Workforce plan", icon=":material/badge:", url_path="workforce"),
    st.Page("app_pages/data_quality.py", title="Data quality", icon=":material/fact_check:",
            url_path="data-quality"),
]


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises rather than returning empty
        return False


def authenticate() -> access.User | None:
    """The logged-in user, None in local mode; shows the login and stops the script when nobody is logged in."""
    try:
        users = access.load_users(access.users_file_path())
    except access.UsersFileError as exc:
        st.error(f"The dashboard's users file is wrong, so nobody can log in: {exc}")
        st.stop()
    oidc = _oidc_configured()
    if not users and not oidc:
        st.markdown('<div class="ibp-banner">Local mode: no users are configured, so anyone who can open this '
                    "address sees every organisation. See README, 'Dashboards: access', to require a login."
                    "</div>", unsafe_allow_html=True)
        return None
    if oidc and not st.session_state.get("ibp_user"):
        if not st.user.get("is_logged_in", False):
            st.title("IBP dashboards")
            st.write("Log in with your organisation's account to see the dashboards.")
            if st.button("Log in", type="primary"):
                st.login()
            st.stop()
        user = access.user_for_email(users, st.user.get("email"))
        if user is None:
            st.error(f"{st.user.get('email')} is signed in but has no dashboard access: ask your analyst team "
                     "to add this email to the users file.")
            if st.button("Log out"):
                st.logout()
            st.stop()
        st.session_state["ibp_user"] = user
    if not st.session_state.get("ibp_user"):
        st.title("IBP dashboards")
        with st.form("login"):
            username = st.text_input("Username", key="login_username")
            password = st.text_input("Password", type="password", key="login_password")
            submitted = st.form_submit_button("Log in", type="primary")
        if submitted:
            user = access.check_login(users, username, password)
            if user is None:
                st.error("Username or password not recognised.")
            else:
                st.session_state["ibp_user"] = user
                st.rerun()
        st.stop()
    return st.session_state["ibp_user"]


@st.cache_data(ttl=6 * 3600, show_spinner=False)
def _options(version: str):
    db = ui.db()
    return (organisations.selector_options(db),
            db.query("select org_code, peer_group_id from s2_triple_aim.peer_groups"),
            db.query("select distinct period_start from s1_current_state.metric_values "
                     "where period_grain = 'month' order by 1")["period_start"].to_list())


def sidebar_selection(user: access.User | None) -> ui.Selection:
    """The organisation and period selector; the address bar (?org=RXL&from=2023-04&to=2025-03) mirrors it,
    and a code in the address the user may not see is refused with a message, never shown."""
    orgs, peers, months = _options(ui.db().version())
    visible = access.visible_orgs(user, orgs, peers)
    allowed = orgs if visible is None else orgs.filter(orgs["org_code"].is_in(list(visible)))
    codes = allowed["org_code"].to_list()
    if not codes:
        st.error("Your account can see no organisation in the published data: ask your analyst team.")
        st.stop()
    default = user.org_code if user is not None and user.org_code in codes else codes[0]
    requested = st.query_params.get("org")
    if "ibp_org" not in st.session_state or st.session_state["ibp_org"] not in codes:
        st.session_state["ibp_org"] = requested if requested in codes else default
        if requested and requested not in codes:
            known = requested in set(orgs["org_code"].to_list())
            st.session_state["ibp_denied"] = (
                f"Your account cannot see organisation {requested}" if known else
                f"No organisation with code {requested[:12]!r} in the published data")
    labels = dict(zip(codes, allowed["label"].to_list()))
    with st.sidebar:
        if user is not None:
            st.caption(f"Logged in as {user.display}")
            if st.button("Log out", key="logout"):
                st.session_state.pop("ibp_user", None)
                if _oidc_configured() and st.user.get("is_logged_in", False):
                    st.logout()
                st.rerun()
        org = st.selectbox("Organisation", codes, format_func=lambda c: labels.get(c, c), key="ibp_org",
                           help="England, a region, an ICB or a trust (ODS code in brackets). Type to search.")
        end_default = months[-1]
        start_default = months[max(0, len(months) - 36)]
        initial = (_month_param("from", months, start_default), _month_param("to", months, end_default))
        period = st.select_slider("Period", options=months, value=initial, key="ibp_period",
                                  format_func=ui.month_label,
                                  help="Months shown in charts and tables; tiles show the latest month in the "
                                       "period that has data. Financial years run April to March.")
    row = allowed.row(codes.index(org), named=True)
    st.query_params.update({"org": org, "from": f"{period[0]:%Y-%m}", "to": f"{period[1]:%Y-%m}"})
    return ui.Selection(org_code=org, org_name=row["org_name"], org_level=row["org_level"],
                        parent_icb_code=row["parent_icb_code"], region_code=row["region_code"],
                        period_from=period[0], period_to=period[1],
                        visible=None if visible is None else frozenset(visible), user=user)


def _month_param(name: str, months: list[date], default: date) -> date:
    text = st.query_params.get(name) or ""
    return next((m for m in months if f"{m:%Y-%m}" == text), default)


user = authenticate()
try:
    selection = sidebar_selection(user)
except ServingUnavailable as exc:
    st.error(f"No published data yet: {exc}")
    st.stop()
denied = st.session_state.pop("ibp_denied", None)
if denied:
    st.error(f"{denied}: showing {selection.title} instead.")
st.session_state["ibp_selection"] = selection
masthead.markdown(theme.masthead_html(selection.title), unsafe_allow_html=True)
st.navigation(PAGES).run()
