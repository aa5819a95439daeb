"""``sweeper doctor`` against the local Graph: too few, too many and just the right roles."""

from __future__ import annotations

import base64
import re

import orjson
import pytest
from support.runner import Sweeper

from sweeper.commands.doctor import permission_checks, token_roles

EXACT = ("Mail.ReadBasic.All", "User.Read.All", "Domain.Read.All", "Mail.Send")


@pytest.fixture
def configured(sweeper: Sweeper) -> Sweeper:
    return sweeper.with_digest(sweeper.db.parent / "reports")


def lines(output: str) -> dict[str, str]:
    return {
        line[2:].split(":")[0]: line[0]
        for line in output.splitlines()
        if line[:1] in ("✓", "✗", "!")
    }


def test_a_correct_set_up_passes_every_check_and_sends_a_test(configured: Sweeper) -> None:
    configured.fake.roles = EXACT
    result = configured.run("doctor", "--send-test")

    assert result.exit_code == 0, result.output
    checks = lines(result.output)
    assert checks.pop("Mail.Send") == "!"  # works, but tenant-wide: a warning with the fix
    assert "fix: remove the tenant-wide Mail.Send consent" in result.output
    assert set(checks.values()) == {"✓"}
    assert set(checks) | {"Mail.Send"} == {
        "configuration",
        "sign-in",
        "permissions needed",
        "Mail.Send",
        "least privilege",
        "domains",
        "users",
        "Sent Items",
        "database",
        "reports",
        "disk space",
        "test message",
    }
    assert "12 checks passed (1 with a warning), 0 failed" in result.output
    probe = re.search(r"\((\d+) (messages?) on a first page\)", result.output)
    assert probe is not None and (probe[2] == "message") == (probe[1] == "1")
    [mail] = configured.fake.sent_mail
    assert mail["message"]["subject"].startswith("sweeper test message")


def test_too_few_roles_are_named_with_the_fix(configured: Sweeper) -> None:
    configured.fake.roles = ("User.Read.All", "Domain.Read.All")
    result = configured.run("doctor")

    assert result.exit_code == 1
    checks = lines(result.output)
    assert checks["permissions needed"] == "✗"
    assert "missing Mail.ReadBasic.All\n" in result.output
    assert "Mail.Send: not in the token: expected when scoped" in result.output
    assert "fix: add these application permissions" in result.output
    assert checks["Sent Items"] == "✗"
    assert checks["users"] == "✓"


def test_too_many_roles_are_named_as_broader_than_needed(configured: Sweeper) -> None:
    configured.fake.roles = (*EXACT, "Mail.Read", "Mail.ReadWrite", "Directory.Read.All")
    result = configured.run("doctor")

    assert result.exit_code == 1
    assert lines(result.output)["least privilege"] == "✗"
    assert "Mail.Read reads bodies and attachments too" in result.output
    assert "fix: remove Mail.Read, Mail.ReadWrite, Directory.Read.All" in result.output
    assert lines(result.output)["permissions needed"] == "✓"


def test_a_refused_sign_in_is_one_failed_check(configured: Sweeper) -> None:
    result = configured.run("doctor", env=configured.env(AZURE_CLIENT_SECRET="wrong"))
    assert result.exit_code == 1
    assert lines(result.output)["sign-in"] == "✗"
    assert "AADSTS7000215" in result.output
    assert "Traceback" not in result.output


def test_a_broken_configuration_is_reported_by_doctor(configured: Sweeper) -> None:
    result = configured.run("doctor", env=configured.env(AZURE_TENANT_ID=""))
    assert result.exit_code == 2
    assert result.output.startswith("✗ configuration: configuration error: AZURE_TENANT_ID")


def test_roles_are_read_from_the_token() -> None:
    claims = base64.urlsafe_b64encode(orjson.dumps({"roles": ["A", "B"]})).decode().rstrip("=")
    assert token_roles(f"e30.{claims}.sig") == ["A", "B"]
    assert token_roles("not a jwt") == []


def test_mail_send_is_broader_than_needed_when_the_digest_goes_by_smtp() -> None:
    checks = permission_checks(list(EXACT), graph_digest=False)
    assert [(c.name, c.ok) for c in checks] == [
        ("permissions needed", True),
        ("least privilege", False),
    ]
    assert "Mail.Send is not needed" in checks[1].detail
