"""``sweeper doctor``: a preflight for the administrator, one line per check with a fix.

It signs in, reads the access token's ``roles`` claim (what the tenant granted), and tries
each thing a nightly run does: list domains and users, read one mailbox's Sent Items, open
the database, write a report; with ``--send-test`` it also sends a test message the way the
digest goes.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from azure.core.exceptions import AzureError

from sweeper import store
from sweeper.commands.deliver import email_message, graph_payload, send_smtp
from sweeper.errors import SweeperError
from sweeper.graph.answers import sign_in_error
from sweeper.graph.gateway import GraphGateway
from sweeper.graph.permissions import BROADER, MAIL_SEND, NEEDED
from sweeper.graph.signin import gateway_for, make_credential
from sweeper.present.escape import terminal
from sweeper.rules.accounts import unmatched
from sweeper.settings import Settings


@dataclass(frozen=True)
class Check:
    """One line of the report: passed (✓), passed with a warning (!) or failed (✗)."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    warning: bool = False  # works, but should be changed

    def line(self) -> str:
        mark = "✗" if not self.ok else "!" if self.warning else "✓"
        text = terminal(f"{mark} {self.name}: {self.detail}")
        shown = self.fix and (not self.ok or self.warning)
        return text + (f"\n    fix: {terminal(self.fix or '')}" if shown else "")


def token_roles(token: str) -> list[str]:
    """The ``roles`` claim of a JWT access token (read, not verified: Graph verifies it)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, orjson.JSONDecodeError):
        return []
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []


def permission_checks(roles: list[str], graph_digest: bool) -> list[Check]:
    """Missing permissions, and granted ones broader than sweeper needs.

    ``Mail.Send`` scoped to one mailbox by Exchange RBAC for Applications is not in the
    token's roles (the grant lives in Exchange), so its absence is noted, not failed:
    ``--send-test`` is what proves delivery.
    """
    checks = []
    missing = [r for r in NEEDED if r not in roles]
    checks.append(
        Check(
            "permissions needed",
            not missing,
            f"missing {', '.join(missing)}" if missing else f"granted {', '.join(NEEDED)}",
            "add these application permissions to the app registration and grant admin "
            "consent (deploy/app-registration)",
        )
    )
    if graph_digest:
        tenant_wide = MAIL_SEND in roles
        checks.append(
            Check(
                MAIL_SEND,
                True,
                "granted tenant-wide: this app can send mail as any mailbox"
                if tenant_wide
                else "not in the token: expected when scoped by RBAC for Applications; "
                "--send-test proves delivery",
                "remove the tenant-wide Mail.Send consent and scope it to the digest sender "
                "with RBAC for Applications (deploy/app-registration)",
                warning=tenant_wide,
            )
        )
    broader = {r: why for r, why in BROADER.items() if r in roles}
    if MAIL_SEND in roles and not graph_digest:
        broader[MAIL_SEND] = "is not needed: the digest goes by SMTP"
    checks.append(
        Check(
            "least privilege",
            not broader,
            "; ".join(f"{r} {why}" for r, why in broader.items()) or "nothing broader than needed",
            f"remove {', '.join(broader)} from the app registration",
        )
    )
    return checks


async def run_checks(
    settings: Settings, env: Mapping[str, str], *, send_test: bool = False
) -> list[Check]:
    checks: list[Check] = []
    credential = make_credential(settings.sign_in, env)
    try:
        token = (await credential.get_token(settings.graph_scope)).token
    except Exception as exc:  # azure-identity raises several kinds; all mean "no token"
        await credential.close()
        if isinstance(exc, AzureError):
            message = str(sign_in_error(exc)).removeprefix("sign-in failed: ")
        else:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        checks.append(
            Check(
                "sign-in",
                False,
                message[:300],
                "check AZURE_TENANT_ID, AZURE_CLIENT_ID and the secret or certificate "
                "(expired?); for a managed identity, that it is assigned to this host",
            )
        )
        return checks + _local_checks(settings)
    checks.append(Check("sign-in", True, f"token for {settings.graph_scope}"))
    checks += permission_checks(token_roles(token), settings.digest.transport == "graph")
    async with gateway_for(settings.sign_in, env, credential) as gateway:
        checks += await _graph_checks(gateway, settings)
        checks += _local_checks(settings)
        if send_test:
            checks.append(await _send_test(gateway, settings, env))
    return checks


async def _graph_checks(gateway: GraphGateway, settings: Settings) -> list[Check]:
    checks = []
    try:
        domains = await gateway.verified_domains()
        checks.append(Check("domains", True, f"{len(domains)} verified: {', '.join(domains[:5])}"))
    except SweeperError as exc:
        checks.append(Check("domains", False, str(exc), "grant Domain.Read.All"))
    try:
        users = await gateway.users(include_disabled=settings.include_disabled)
        disabled = sum(1 for u in users if not u.enabled)
        checks.append(
            Check(
                "users",
                True,
                f"{len(users) - disabled} enabled users, {disabled} disabled accounts "
                + ("(swept if they have a mailbox: shared mailboxes, leavers')"
                   if settings.include_disabled else "(not swept: sweep.include_disabled)"),
            )
        )  # fmt: skip
    except SweeperError as exc:
        checks.append(Check("users", False, str(exc), "grant User.Read.All"))
        return checks
    for pattern in unmatched(settings.exclude, ((u.upn, u.mail) for u in users)):
        checks.append(
            Check(
                "sweep.exclude",
                True,
                f"{pattern!r} matches no account",
                "correct or remove it: a pattern that matches nothing excludes nothing",
                warning=True,
            )
        )
    checks.append(await _probe_mailbox(gateway, users))
    return checks


async def _probe_mailbox(gateway: GraphGateway, users: list[Any]) -> Check:
    from sweeper.errors import MailboxNotEnabled

    until = datetime.now(UTC)
    for user in users[:20]:
        try:
            async for page in gateway.sent_pages(user, until - timedelta(days=7), until, 1):
                if not page:
                    break
                messages = f"{len(page)} message{'' if len(page) == 1 else 's'}"
                return Check("Sent Items", True, f"read {user.upn} ({messages} on a first page)")
            return Check("Sent Items", True, f"read {user.upn} (no mail in 7 days)")
        except MailboxNotEnabled:
            continue
        except SweeperError as exc:
            return Check(
                "Sent Items",
                False,
                f"{user.upn}: {exc}",
                "grant Mail.ReadBasic.All; if an Exchange application access policy or RBAC "
                "for Applications scope exists, include the swept mailboxes",
            )
    return Check("Sent Items", False, "no user with a mailbox among the first 20", None)


def _local_checks(settings: Settings) -> list[Check]:
    checks = []
    path = settings.database
    try:
        store.open_db(path).conn.close()
        mode = stat.S_IMODE(path.stat().st_mode)
        private = not mode & 0o077
        checks.append(
            Check(
                "database",
                private,
                f"{path} is writable, mode {mode:04o}",
                f"chmod 600 {path}",
            )
        )
    except SweeperError as exc:
        checks.append(Check("database", False, str(exc), "set storage.database or SWEEPER_DB"))
    reports = settings.digest.reports_dir
    try:
        reports.mkdir(parents=True, exist_ok=True, mode=0o700)
        writable = os.access(reports, os.W_OK)
    except OSError:
        writable = False
    checks.append(
        Check(
            "reports",
            writable,
            f"{reports} is {'writable' if writable else 'not writable'}",
            "set digest.reports_dir",
        )
    )
    checks.append(_space_check(path))
    return checks


DISK_LOW = 100 * 2**20  # below this, warn: a busy night can write tens of MB
DISK_FULL = 16 * 2**20  # below this, fail: the next sweep would likely not be stored


def _space_check(database: Path) -> Check:
    """Free space where the database lives: a full disk fails every sweep."""
    where = database.parent if str(database.parent) else Path(".")
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return Check("disk space", False, f"{where}: {exc.strerror or exc}", None)
    text = f"{free / 2**20:,.0f} MiB free for {database}"
    fix = f"free space on the disk of {where}, or move storage.database"
    return Check("disk space", free >= DISK_FULL, text, fix, warning=free < DISK_LOW)


async def _send_test(gateway: GraphGateway, settings: Settings, env: Mapping[str, str]) -> Check:
    config = settings.digest
    subject = "sweeper test message (sweeper doctor --send-test)"
    text = "This is a test from sweeper doctor: the digest will arrive this way."
    html = f"<p>{text}</p>"
    try:
        config.check_sendable(env)
        if config.transport == "smtp":
            message = email_message(subject, html, text, config.sender or "", config.recipients)
            send_smtp(config, env, message, settings.ca_bundle)
        else:
            payload = graph_payload(subject, html, config.recipients, config.save_to_sent_items)
            await gateway.send_mail(config.sender or "", payload)
    except SweeperError as exc:
        return Check(
            "test message",
            False,
            str(exc),
            "check [digest]; for Graph, Mail.Send and its RBAC for Applications scope",
        )
    return Check(
        "test message", True, f"sent by {config.transport} to {', '.join(config.recipients)}"
    )
