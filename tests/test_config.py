"""Settings: every wrong or missing one is named in one line, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from support.runner import write_config

from sweeper.cli import main
from sweeper.errors import ConfigError
from sweeper.settings import load_settings

SIGN_IN = {
    "AZURE_TENANT_ID": "11111111-1111-1111-1111-111111111111",
    "AZURE_CLIENT_ID": "22222222-2222-2222-2222-222222222222",
    "AZURE_CLIENT_SECRET": "test-only-secret",
}


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        ("[graph]\ncloud = 'moon'\n", {}, "graph.cloud: 'moon' is not one of"),
        ("[graph]\nauth = 'password'\n", {}, "graph.auth"),
        ("[graph]\nclient_secret = 'hunter2hunter2'\n", {}, "graph.client_secret: secrets never"),
        ("[graph]\ncloud = 'custom'\n", {}, "SWEEPER_GRAPH_URL: must be set"),
        (
            "[graph]\ncloud = 'custom'\n",
            {"SWEEPER_GRAPH_URL": "http://graph.example/v1.0", "AZURE_AUTHORITY_HOST": "https://x"},
            "SWEEPER_GRAPH_URL: 'http://graph.example/v1.0' must use https",
        ),
        (
            "[graph]\ncloud = 'custom'\n",
            {"SWEEPER_GRAPH_URL": "http://127.0.0.1:1/v1.0", "AZURE_AUTHORITY_HOST": "http://x"},
            "AZURE_AUTHORITY_HOST",
        ),
        ("[detection]\nmin_visible_external = 0\n", {}, "detection.min_visible_external"),
        ("[detection]\nmin_visible_external = '10'\n", {}, "must be an integer"),
        ("[detection]\nmin_visible_external = true\n", {}, "detection.min_visible_external"),
        ("[sweep]\npage_size = 5000\n", {}, "sweep.page_size: must be between 1 and 1000"),
        ("[sweep]\nconcurrency = -1\n", {}, "sweep.concurrency"),
        ("[sweep]\noverlap_minutes = -5\n", {}, "sweep.overlap_minutes: must not be negative"),
        ("[sweep]\nwindow_hours = 0\n", {}, "sweep.window_hours"),
        ("[sweep]\nwindow = 24\n", {}, "sweep.window: unknown setting"),
        ("[mail]\nto = 'dpo'\n", {}, "mail: unknown section"),
        ("[organisation]\nown_domains = ['not a domain']\n", {}, "organisation.own_domains"),
        ("graph = 'x'\n", {}, "graph: must be a [section] table"),
        ("[graph\n", {}, "--config: "),
        ("[graph]\nauth = 'certificate'\n", {}, "AZURE_CLIENT_CERTIFICATE_PATH: must be set"),
        ("[severity]\nhigh_at = 10\n", {}, "severity.high_at: must be more than"),
        ("[severity]\ncritical_at = 40\n", {}, "severity.critical_at: must be more than"),
        ("[severity]\npublic_min_personal_share = 1.5\n", {}, "share between 0 and 1"),
        ("[severity]\nbcc_raises = 'yes'\n", {}, "severity.bcc_raises: must be true or false"),
        ("[severity]\nsensitive_terms = ['', 'x']\n", {}, "severity.sensitive_terms"),
        ("[severity]\npersonal_domains = ['gmail']\n", {}, "severity.personal_domains"),
        ("[severity]\nsensitive_senders = ['victim care']\n", {}, "severity.sensitive_senders[0]"),
        ("[severity]\nsensitive_senders = ['a*b*@x.example']\n", {}, "is not an address or"),
        ("[severity]\nsensitive_departments = ['  ']\n", {}, "severity.sensitive_departments[0]"),
        ("[organisation]\nlanguages = ['en', 'xx']\n", {}, "organisation.languages[1]: 'xx'"),
        ("[organisation]\nlanguages = []\n", {}, "organisation.languages: name one"),
        ("[severity]\nterms_dir = 'no-such-folder'\n", {}, "severity.terms_dir: "),
        ("[severity]\nmixed_with = ['bloggers']\n", {}, "severity.mixed_with[0]"),
        ("[severity]\npublic_critical_at = 0\n", {}, "severity.public_critical_at"),
        ("[detection]\nmin_private_people = 1\n", {}, "detection.min_private_people"),
        ("[incidents]\nreexposure_days = -1\n", {}, "incidents.reexposure_days"),
        ("[severity]\nsensitive_functions = []\n", {}, "severity.sensitive_functions: unknown"),
        ("[incidents]\nwindow_hours = -1\n", {}, "incidents.window_hours"),
        ("[sweep]\nwindow_hours = nan\n", {}, "sweep.window_hours: must be a finite number"),
        ("[sweep]\noverlap_minutes = inf\n", {}, "sweep.overlap_minutes: must be a finite"),
        ("[sweep]\nwindow_hours = 1e12\n", {}, "sweep.window_hours: must be at most"),
        ("[graph]\ntimeout_seconds = 0\n", {}, "graph.timeout_seconds: must be between 1"),
        ("[graph]\ntimeout_seconds = -inf\n", {}, "graph.timeout_seconds: must be between 1"),
        ("[graph]\ncloud = 'germany'\n", {}, "graph.cloud: 'germany' is not one of"),
        ("[retention]\naddresses_days = -30\n", {}, "retention.addresses_days: must be between"),
        (
            "[[allow]]\nreason = 'r'\nsender = 'a@b.example'\nexpires = 2027-02-30\n",
            {},
            "is not valid TOML",  # no such day: refused by the TOML parser, with the line
        ),
        ("[[allow]]\nsender = 'a@b.example'\n", {}, "allow[0].reason: every allowlist rule"),
        ("[[allow]]\nreason = 'r'\n", {}, "allow[0]: needs at least one of"),
        ("[[allow]]\nreason = 'r'\nsubject = '(unclosed'\n", {}, "allow[0].subject: not a valid"),
        ("[[allow]]\nreason = 'r'\nsender = 'nobody'\n", {}, "allow[0].sender"),
        (
            "[[allow]]\nreason = 'r'\nsender = 'a@b.example'\nexpires = '2027-01-01'\n",
            {},
            "allow[0].expires: must be a date",
        ),
        (
            "[[allow]]\nreason = 'r'\nsender = 'a@b.example'\nexpires = 2027-01-01T10:00:00\n",
            {},
            "allow[0].expires: must be a date",
        ),
        (
            "[[allow]]\nreason = 'r'\nsender = 'a@b.example'\nwho = 'me'\n",
            {},
            "allow[0].who: unknown setting",
        ),
        ("allow = 'everything'\n", {}, "allow: must be a list of [[allow]] tables"),
        ("[console]\nurl = 'http://dpo.northwick.example'\n", {}, "console.url: 'http://dpo"),
        ("[console]\nurl = 'ftp://dpo.northwick.example'\n", {}, "console.url: 'ftp://"),
        ("[console]\nport = 70000\n", {}, "console.port: 70000 is not a TCP port"),
        ("[console]\nurl = 'https://intranet.example/sweeper'\n", {}, "has a path"),
        ("[console]\nsession_minutes = 1\n", {}, "console.session_minutes: 1 is not between"),
        ("[console]\neasy_auth = 'yes'\n", {}, "console.easy_auth"),
    ],
)
def test_a_bad_setting_is_named_in_one_line_and_nothing_is_written(
    tmp_path: Path, toml: str, env: dict[str, str], named: str
) -> None:
    config = write_config(tmp_path / "bad.toml", toml)
    db = tmp_path / "never.db"

    result = CliRunner().invoke(
        main, ["--config", str(config), "sweep"], env={**SIGN_IN, "SWEEPER_DB": str(db), **env}
    )

    assert result.exit_code == 2
    assert named in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not db.exists()


ENTRA_SECRET = "Abc8Q~" + "x" * 34  # the shape Entra ID gives client secrets (not a real one)


@pytest.mark.parametrize(
    ("toml", "mode", "said"),
    [
        (
            "[graph]\nclient_secret = 'hunter2hunter2'\n",
            0o644,
            "graph.client_secret: {path} holds a secret and other users can read it (mode 0644): "
            "treat the secret as exposed and rotate it",
        ),
        (
            "[graph]\nclient_secret = 'hunter2hunter2'\n",
            0o600,
            "graph.client_secret: secrets never go in the configuration file",
        ),
        (
            f"[graph]\nclient_id = '{ENTRA_SECRET}'\n",
            0o640,
            "graph.client_id: {path} holds a secret and other users can read it (mode 0640)",
        ),
        (
            f"[[allow]]\nreason = 'partner {ENTRA_SECRET}'\nsender = 'a@b.example'\n",
            0o600,
            "allow[0].reason: secrets never go in the configuration file",
        ),
        (
            "[digest]\nsmtp_username = '-----BEGIN RSA PRIVATE KEY-----'\n",
            0o604,
            "digest.smtp_username: {path} holds a secret and other users can read it (mode 0604)",
        ),
    ],
)
def test_a_secret_in_the_file_is_refused_and_why_depends_on_who_can_read_it(
    tmp_path: Path, toml: str, mode: int, said: str
) -> None:
    config = write_config(tmp_path / "sweeper.toml", toml)
    config.chmod(mode)

    result = CliRunner().invoke(main, ["--config", str(config), "sweep"], env=SIGN_IN)

    assert result.exit_code == 2
    assert said.format(path=config) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert ENTRA_SECRET not in result.output and "hunter2" not in result.output


@pytest.mark.parametrize("missing", ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"])
def test_a_missing_sign_in_variable_is_named(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in SIGN_IN.items() if k != missing}
    result = CliRunner().invoke(main, ["sweep"], env={**env, "SWEEPER_DB": str(tmp_path / "x.db")})
    assert result.exit_code == 2
    assert result.output.strip() == f"sweeper: configuration error: {missing}: must be set for " + (
        "graph.auth = 'client_secret'"
    )


def test_a_missing_config_file_is_an_error_not_the_defaults(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "nope.toml"), "sweep"], env=SIGN_IN
    )
    assert result.exit_code == 2
    assert "--config: file not found" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--since", "2026-02-30"], "--since"),
        (["--since", "yesterday-ish"], "--since"),
        (["--since", "1d", "--until", "2d"], "must be before --until"),
    ],
)
def test_impossible_windows_are_refused(tmp_path: Path, args: list[str], named: str) -> None:
    db = tmp_path / "x.db"
    result = CliRunner().invoke(main, ["sweep", *args], env={**SIGN_IN, "SWEEPER_DB": str(db)})
    assert result.exit_code == 2
    assert named in result.output
    assert not db.exists()


@pytest.mark.parametrize(
    ("cloud", "graph", "authority", "scope"),
    [
        ("global", "https://graph.microsoft.com/v1.0", "https://login.microsoftonline.com", "https://graph.microsoft.com/.default"),
        ("usgov", "https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us", "https://graph.microsoft.us/.default"),
        ("usgov-dod", "https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us/.default"),
        ("china", "https://microsoftgraph.chinacloudapi.cn/v1.0", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/.default"),
    ],
)  # fmt: skip
def test_each_national_cloud_has_its_own_endpoints(
    tmp_path: Path, cloud: str, graph: str, authority: str, scope: str
) -> None:
    config = write_config(tmp_path / "c.toml", f"[graph]\ncloud = '{cloud}'\n")
    settings = load_settings(config, SIGN_IN)
    assert (settings.graph_url, settings.authority_host, settings.graph_scope) == (
        graph,
        authority,
        scope,
    )


def test_a_custom_cloud_takes_its_endpoints_from_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "[graph]\ncloud = 'custom'\n")
    env = {
        **SIGN_IN,
        "SWEEPER_GRAPH_URL": "http://127.0.0.1:8080/v1.0/",
        "AZURE_AUTHORITY_HOST": "https://127.0.0.1:8443",
    }
    settings = load_settings(config, env)
    assert settings.graph_url == "http://127.0.0.1:8080/v1.0"  # no trailing slash: no //users
    assert settings.authority_host == "https://127.0.0.1:8443"
    assert settings.graph_scope == "http://127.0.0.1/.default"  # never a port in a scope


def test_the_database_path_is_relative_to_the_config_file_and_the_environment_wins(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "c.toml", "[storage]\ndatabase = 'data/sweeper.db'\n")
    assert load_settings(config, SIGN_IN).database == tmp_path / "data" / "sweeper.db"
    env = {**SIGN_IN, "SWEEPER_DB": "/srv/sweeper/x.db"}
    assert load_settings(config, env).database == Path("/srv/sweeper/x.db")


def test_commands_that_only_read_the_database_need_no_sign_in(tmp_path: Path) -> None:
    settings = load_settings(None, {}, need_graph=False)
    assert settings.database == Path("sweeper.db")
    with pytest.raises(ConfigError) as error:
        load_settings(None, {})
    assert error.value.setting == "AZURE_TENANT_ID"


def test_the_example_configuration_is_valid_and_has_the_defaults() -> None:
    example = Path(__file__).parent.parent / "sweeper.example.toml"
    settings = load_settings(example, SIGN_IN)
    defaults = load_settings(None, SIGN_IN)
    assert settings.min_visible_external == defaults.min_visible_external == 10
    assert settings.severity == defaults.severity  # the example shows the defaults
    severity_page = Path(__file__).parent.parent / "docs" / "severity.md"
    severity_section = severity_page.read_text(encoding="utf-8")
    for term in defaults.severity.sensitive_terms:
        assert term in severity_section, term
    assert (settings.window, settings.overlap, settings.page_size, settings.concurrency) == (
        defaults.window,
        defaults.overlap,
        defaults.page_size,
        defaults.concurrency,
    )


def test_allowlist_rules_and_the_severity_rule_are_read(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        """
[detection]
min_visible_external = 12

[severity]
high_at = 40
sensitive_terms = ["Tenant", "arrears"]
bcc_raises = false

[incidents]
window_hours = 6

[[allow]]
name = "board"
reason = "the board's own list"
subject = "^board pack"
expires = 2027-03-31

[[allow]]
reason = "partners"
domains = ["Harbour-Law.example"]
""",
    )
    settings = load_settings(config, SIGN_IN)
    assert (settings.severity.medium_at, settings.severity.high_at) == (12, 40)
    assert settings.severity.sensitive_terms == ("tenant", "arrears")
    assert settings.severity.bcc_raises is False
    assert settings.incident_window.total_seconds() == 6 * 3600
    board, partners = settings.allow
    assert (board.name, board.expires.isoformat() if board.expires else None) == (
        "board",
        "2027-03-31",
    )
    assert board.subject is not None and board.subject.search("BOARD PACK - May")
    assert (partners.name, partners.domains) == ("allow[1]", frozenset({"harbour-law.example"}))


ENDPOINTS = {
    "SWEEPER_GRAPH_URL": "https://127.0.0.1:8443/v1.0",
    "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9443",
}


def test_the_endpoint_variables_mean_a_custom_cloud_when_the_file_names_none() -> None:
    settings = load_settings(None, {**SIGN_IN, **ENDPOINTS})

    assert settings.cloud == "custom"
    assert settings.graph_url == ENDPOINTS["SWEEPER_GRAPH_URL"]
    assert settings.authority_host == ENDPOINTS["AZURE_AUTHORITY_HOST"]


@pytest.mark.parametrize("given", sorted(ENDPOINTS))
def test_one_endpoint_variable_alone_asks_for_the_other(given: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, {**SIGN_IN, given: ENDPOINTS[given]})

    other = next(name for name in ENDPOINTS if name != given)
    assert error.value.setting == other
    assert "custom cloud" in str(error.value)


@pytest.mark.parametrize("given", sorted(ENDPOINTS))
def test_an_endpoint_variable_that_contradicts_the_named_cloud_is_refused(
    tmp_path: Path, given: str
) -> None:
    config = write_config(tmp_path / "c.toml", "[graph]\ncloud = 'global'\n")

    with pytest.raises(ConfigError) as error:
        load_settings(config, {**SIGN_IN, given: ENDPOINTS[given]})

    assert error.value.setting == given
    assert "graph.cloud is 'global'" in str(error.value)


def test_an_endpoint_variable_that_agrees_with_the_named_cloud_is_accepted(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "[graph]\ncloud = 'usgov'\n")
    env = {**SIGN_IN, "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/"}

    assert load_settings(config, env).authority_host == "https://login.microsoftonline.us"


def test_a_contradicting_endpoint_is_refused_before_any_sign_in(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "[graph]\ncloud = 'global'\n")
    env = {**SIGN_IN, **ENDPOINTS, "SWEEPER_DB": str(tmp_path / "x.db")}

    result = CliRunner().invoke(main, ["--config", str(config), "sweep"], env=env)

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "sweeper: configuration error: SWEEPER_GRAPH_URL: is set to "
        "'https://127.0.0.1:8443/v1.0' but graph.cloud is 'global' "
        "(https://graph.microsoft.com/v1.0): unset it, or set graph.cloud = 'custom' to use it"
    ]
    assert not (tmp_path / "x.db").exists()


def test_the_business_cap_is_a_level_and_the_lines_are_categories(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "[severity]\nbusiness_at_most = 'severe'\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config, SIGN_IN)
    assert error.value.setting == "severity.business_at_most"
    low = write_config(tmp_path / "low.toml", "[severity]\nbusiness_at_most = 'low'\n")
    assert load_settings(low, SIGN_IN).severity.business_at_most == "low"
    lines = write_config(
        tmp_path / "lines.toml", "[severity]\nreveals_critical_at = { hardship = 40 }\n"
    )
    rule = load_settings(lines, SIGN_IN).severity
    assert dict(rule.reveals_critical_at)["hardship"] == 40
    assert dict(rule.reveals_critical_at)["hiv"] == 10  # the others keep their defaults
    for text, setting in (
        ("{ weather = 10 }", "severity.reveals_critical_at.weather"),
        ("{ health = 0 }", "severity.reveals_critical_at.health"),
        ("{ health = 'many' }", "severity.reveals_critical_at.health"),
    ):
        bad = write_config(tmp_path / "bad.toml", f"[severity]\nreveals_critical_at = {text}\n")
        with pytest.raises(ConfigError) as error:
            load_settings(bad, SIGN_IN)
        assert error.value.setting == setting


@pytest.mark.parametrize(
    ("url", "secure"),
    [("https://dpo.northwick.example/", True), ("http://127.0.0.1:8765", False)],
)
def test_the_console_is_reached_at_its_url_and_signs_in_back_to_it(
    tmp_path: Path, url: str, secure: bool
) -> None:
    config = write_config(tmp_path / "sweeper.toml", f"[console]\nurl = '{url}'\n")

    console = load_settings(config, SIGN_IN).console

    assert console.redirect_uri == url.rstrip("/") + "/auth/callback"
    assert console.secure is secure  # Secure cookies and HSTS over https only
    assert (console.host, console.port, console.easy_auth) == ("127.0.0.1", 8765, False)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no terms in the file"),
        ("health vacc1ne\n", "is not a word"),
        ("wellbeing yoga\n", "unknown category"),
    ],
)
def test_a_bad_own_term_file_is_one_line_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    terms = tmp_path / "terms"
    terms.mkdir()
    (terms / "en.txt").write_text(content, encoding="utf-8")
    config = write_config(tmp_path / "c.toml", "[severity]\nterms_dir = 'terms'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, SIGN_IN)
    text = str(caught.value)
    assert text.startswith("configuration error: severity.terms_dir: ") and message in text
    assert "en.txt" in text and "\n" not in text
