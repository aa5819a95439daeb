"""Each sign-in method, through the real azure-identity against the local token endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from support.runner import Sweeper, write_config
from support.tenant import DAY_FINDINGS

from sweeper.fakegraph import FakeGraph


def use_auth(sweeper: Sweeper, method: str) -> None:
    text = sweeper.config.read_text().replace('auth = "client_secret"', f'auth = "{method}"')
    write_config(sweeper.config, text)


def without_secret(sweeper: Sweeper, **extra: str) -> dict[str, str]:
    env = sweeper.env(**extra)
    del env["AZURE_CLIENT_SECRET"]
    return env


def test_client_certificate(sweeper: Sweeper, tmp_path: Path) -> None:
    pem = tmp_path / "app.pem"
    leaf = trustme.CA().issue_cert("sweeper-app", key_type=trustme.KeyType.RSA)
    leaf.private_key_and_cert_chain_pem.write_to_path(str(pem))
    use_auth(sweeper, "certificate")

    result = sweeper.run(
        "sweep", env=without_secret(sweeper, AZURE_CLIENT_CERTIFICATE_PATH=str(pem))
    )

    assert result.exit_code == 0, result.output
    assert len(sweeper.findings()) == DAY_FINDINGS


def test_an_unusable_certificate_is_a_configuration_error(sweeper: Sweeper, tmp_path: Path) -> None:
    pem = tmp_path / "app.pem"  # an EC key: Entra ID signs client assertions with RS256 only
    trustme.CA().issue_cert("sweeper-app").private_key_and_cert_chain_pem.write_to_path(str(pem))
    use_auth(sweeper, "certificate")

    result = sweeper.run(
        "sweep", env=without_secret(sweeper, AZURE_CLIENT_CERTIFICATE_PATH=str(pem))
    )

    assert result.exit_code == 2
    assert "AZURE_CLIENT_CERTIFICATE_PATH: " in result.output
    assert "RSA private key" in result.output
    assert "Traceback" not in result.output


def test_managed_identity(sweeper: Sweeper) -> None:
    use_auth(sweeper, "managed_identity")
    fake: FakeGraph = sweeper.fake
    env = without_secret(
        sweeper,
        IDENTITY_ENDPOINT=f"http://127.0.0.1:{fake.graph_port}/msi/token",
        IDENTITY_HEADER=fake.identity_header,
    )
    del env["AZURE_CLIENT_ID"]  # a system-assigned identity needs no client id

    result = sweeper.run("sweep", env=env)

    assert result.exit_code == 0, result.output
    assert len(sweeper.findings()) == DAY_FINDINGS


def test_the_default_chain_picks_up_the_environment(sweeper: Sweeper) -> None:
    use_auth(sweeper, "default")
    result = sweeper.run("sweep")
    assert result.exit_code == 0, result.output
    assert len(sweeper.findings()) == DAY_FINDINGS


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"AZURE_CLIENT_SECRET": "wrong"}, "AADSTS7000215: Invalid client secret provided."),
        ({"AZURE_CLIENT_ID": "33333333-3333-3333-3333-333333333333"}, "AADSTS700016"),
        ({"AZURE_TENANT_ID": "44444444-4444-4444-4444-444444444444"}, "AADSTS90002"),
    ],
)
def test_refused_sign_in_fails_the_run_with_the_reason(
    sweeper: Sweeper, change: dict[str, str], expected: str
) -> None:
    result = sweeper.run("sweep", env=sweeper.env(**change))
    assert result.exit_code == 3
    assert expected in result.output
    assert "Traceback" not in result.output


def test_an_app_without_the_mail_permission_fails_every_mailbox_visibly(sweeper: Sweeper) -> None:
    sweeper.fake.roles = ("User.Read.All", "Domain.Read.All")
    result = sweeper.run("sweep")
    assert result.exit_code == 1
    assert result.stdout.count("403 ErrorAccessDenied") == len(sweeper.fake.tenant.users)


def test_the_secret_and_the_token_never_reach_the_output_or_the_database(
    sweeper: Sweeper,
) -> None:
    result = sweeper.run("-vv", "sweep")
    assert result.exit_code == 0
    listed = sweeper.run("findings", "--format", "json").output
    stored = sweeper.db.read_bytes()
    wal = sweeper.db.with_name(sweeper.db.name + "-wal")
    stored += wal.read_bytes() if wal.exists() else b""
    secrets = [sweeper.fake.client_secret, *sweeper.fake.issued_tokens]
    assert sweeper.fake.issued_tokens
    for secret in secrets:
        assert secret not in result.output
        assert secret not in listed
        assert secret.encode() not in stored
