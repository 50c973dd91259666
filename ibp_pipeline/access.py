"""Who may see which organisations: the users file, password checks and the visibility rule.

A deployment turns access control on by giving a users file (data/config/users.yaml, or IBP_USERS_FILE) or by
configuring Streamlit's OIDC login ([auth] in .streamlit/secrets.toml). Passwords are stored only as bcrypt hashes
(`ibp user add` writes them). The rule, from the issue: a trust user sees their own trust, its ICB and its peer
group; an ICB user sees the ICB and every organisation in it; an admin sees everything. With neither a users file
nor OIDC the dashboards run in local mode (everything visible, with a banner saying so)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import bcrypt
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import settings

from .lib.config_errors import error_line, id_label

Role = Literal["admin", "icb", "trust"]


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{2,64}$")
    name: str = ""
    role: Role
    org_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3,9}$")
    password_hash: str | None = Field(default=None, pattern=r"^\$2[aby]\$\d\d\$.{53}$")
    email: str | None = None  # for OIDC logins: the identity provider's email claim is matched to this


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[UserEntry] = []


@dataclass(frozen=True)
class User:
    username: str
    name: str
    role: Role
    org_code: str | None
    password_hash: str | None = None
    email: str | None = None

    @property
    def display(self) -> str:
        scope = "all organisations" if self.role == "admin" else f"{self.role.upper()} {self.org_code}"
        return f"{self.name or self.username} ({scope})"


class UsersFileError(ValueError):
    """The users file is malformed: the message names the file, the user and the field."""


def users_file_path() -> Path:
    from .config import get_paths

    return settings.get_path("IBP_USERS_FILE", get_paths().data / "config" / "users.yaml")


def load_users(path: Path) -> dict[str, User]:
    """Read and validate the users file; {} when it does not exist (local mode)."""
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UsersFileError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    try:
        doc = UsersFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UsersFileError(error_line(str(path), err, raw, label=id_label({"users": "username"}),
                                        fields_hint="username, name, role, org_code, password_hash, email",
                                        no_value_types=("string_pattern_mismatch",))) from exc
    users: dict[str, User] = {}
    for i, u in enumerate(doc.users):
        if u.role != "admin" and not u.org_code:
            raise UsersFileError(f"{path}: users[{i}] ({u.username}): a {u.role} user needs an org_code")
        if u.username in users:
            raise UsersFileError(f"{path}: users[{i}] ({u.username}): this username appears twice")
        users[u.username] = User(u.username, u.name, u.role, u.org_code, u.password_hash, u.email)
    return users


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def check_login(users: dict[str, User], username: str, password: str) -> User | None:
    """The user when the password matches its bcrypt hash; None otherwise (same cost whether or not they exist)."""
    user = users.get(username.strip())
    stored = user.password_hash if user and user.password_hash else hash_password("not a user")
    ok = bcrypt.checkpw(password.encode("utf-8"), stored.encode("ascii"))
    return user if ok and user is not None and user.password_hash else None


def user_for_email(users: dict[str, User], email: str | None) -> User | None:
    """Map an OIDC identity to a users-file entry by email (case-insensitive); unknown emails get no access."""
    if not email:
        return None
    email = email.strip().lower()
    return next((u for u in users.values() if u.email and u.email.strip().lower() == email), None)


def visible_orgs(user: User | None, organisations: pl.DataFrame, peer_groups: pl.DataFrame) -> set[str] | None:
    """Organisation codes this user may see; None means all (admin or local mode).

    organisations: org_code, org_type, parent_icb_code; peer_groups: org_code, peer_group_id."""
    if user is None or user.role == "admin":
        return None
    code = user.org_code or ""
    if user.role == "icb":
        members = organisations.filter(pl.col("parent_icb_code") == code)["org_code"].to_list()
        return {code, *members}
    own = organisations.filter(pl.col("org_code") == code)
    icb = own["parent_icb_code"].to_list()
    group = peer_groups.filter(pl.col("org_code") == code)["peer_group_id"].to_list()
    peers = peer_groups.filter(pl.col("peer_group_id").is_in(group))["org_code"].to_list() if group else []
    return {code, *[c for c in icb if c], *peers}


def org_problem(serving: Path, org_code: str) -> str | None:
    """Why a user cannot be scoped to this organisation (unknown, or an ICB replaced in April 2026), or None.
    Without a served database yet (no `ibp run`), any code is accepted."""
    if not serving.exists():
        return None
    import duckdb

    con = duckdb.connect(str(serving), read_only=True)
    try:
        row = con.execute("select org_name, org_type, valid_to, replaced_by from s1_current_state.organisations "
                          "where org_code = ?", [org_code]).fetchone()
    finally:
        con.close()
    if row is None:
        return f"{org_code} is not an organisation in the served data (an ODS code such as RXL, or an ICB such as QE1)"
    name, org_type, valid_to, replaced_by = row
    if org_type == "icb" and valid_to is not None:
        return (f"{org_code} ({name}) closed on {valid_to:%-d %B %Y}" + (f"; it is part of {replaced_by} now: use "
                                                                          f"--org {replaced_by}" if replaced_by else ""))
    return None


def add_user(path: Path, username: str, role: Role, org_code: str | None, password: str,
             name: str = "", email: str | None = None) -> User:
    """Add or replace one user in the users file, storing only the bcrypt hash of the password."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    raw = raw or {"users": []}
    entry = {"username": username, "name": name, "role": role, "org_code": org_code,
             "password_hash": hash_password(password), **({"email": email} if email else {})}
    if role == "admin":
        entry.pop("org_code")
    raw["users"] = [u for u in raw.get("users", []) if u.get("username") != username] + [entry]
    UsersFile.model_validate(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Dashboard users: only bcrypt hashes of passwords (written by `ibp user add`).\n"
                   + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return load_users(path)[username]
