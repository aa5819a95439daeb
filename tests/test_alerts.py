"""Alerts at once, after any sweep: each incident and level once per channel, failures shown.

The mail channel goes through the local Graph's sendMail, as the digest does; the Teams and
webhook channels through real HTTP receivers on loopback (tests/test_alert_channels.py
covers their payloads and signatures).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.alerts import on_receivers, run_with_secret, with_alerts
from support.receivers import Receiver, closed_port
from support.runner import Sweeper, write_config
from support.smtp import Relay, smtp_digest
from support.tenant import late_batch

from sweeper.errors import AlreadyRunning
from sweeper.fakegraph.tenant import DPO
from sweeper.fakegraph.tenant import recipient as graph_recipient

SERVICE = "victim.care@northwick.example"


@pytest.fixture
def by_mail(sweeper: Sweeper) -> Sweeper:
    return with_alerts(sweeper, "mail = true\n")


def alert_mails(sweeper: Sweeper) -> list[dict[str, Any]]:
    """What the local Graph was asked to send: these tests never send a digest."""
    return list(sweeper.fake.sent_mail)


def test_a_sweep_alerts_each_high_or_critical_incident_once(by_mail: Sweeper) -> None:
    result = by_mail.run("sweep")

    assert result.exit_code == 0, result.output
    serious = [i for i in by_mail.incidents() if i["severity"] in ("high", "critical")]
    mails = alert_mails(by_mail)
    assert len(mails) == len(serious) and serious
    assert f"Alerts: {len(serious)} sent." in result.output
    subjects = [str(m["message"]["subject"]) for m in mails]
    assert subjects[0].startswith("sweeper: critical incident: ")  # most severe first
    assert all(m["message"]["toRecipients"] == [{"emailAddress": {"address": DPO}}] for m in mails)

    again = by_mail.run("sweep", "--since", "1d")  # the same incidents, nothing new

    assert again.exit_code == 0 and "Alerts:" not in again.output
    assert len(alert_mails(by_mail)) == len(serious)


def test_an_alert_masks_every_outside_address(by_mail: Sweeper) -> None:
    assert by_mail.run("sweep").exit_code == 0
    body = " ".join(str(m["message"]["body"]) for m in alert_mails(by_mail))
    conn_rows = by_mail.rows("select distinct address from finding_addresses where external = 1")
    addresses = [r["address"] for r in conn_rows]

    assert addresses
    assert not [a for a in addresses if a in body]
    assert "sweeper incident show" in body and "report by" in body


def test_a_grown_incident_is_alerted_again_once(by_mail: Sweeper) -> None:
    assert by_mail.run("sweep").exit_code == 0
    before = len(alert_mails(by_mail))
    people = [graph_recipient(f"later.person{i}@gmail.com") for i in range(1200)]
    late_batch(by_mail.fake, SERVICE, "late", 10, people)

    assert by_mail.run("sweep", "--since", "1d").exit_code == 0

    [grew] = alert_mails(by_mail)[before:]
    assert "grew to" in str(grew["message"]["subject"])
    assert by_mail.run("sweep", "--since", "1d").exit_code == 0
    assert len(alert_mails(by_mail)) == before + 1


def test_a_failing_channel_keeps_the_findings_and_shows_in_the_digest(by_mail: Sweeper) -> None:
    by_mail.fake.add_fault(path="sendmail", status=503, times=None)

    result = by_mail.run("sweep")

    assert result.exit_code == 0, result.output  # the findings are stored all the same
    assert by_mail.findings()
    assert "failed (tried again by the next sweep)" in result.output
    assert "alerts.mail: sendMail answered 503" in result.output
    listed = by_mail.listing("alerts")
    assert listed and {a["status"] for a in listed} == {"failed"}
    by_mail.fake.faults.clear()
    digest = by_mail.run("digest", "--dry-run").output
    assert "Alert failed: incident" in digest


def test_failed_alerts_are_tried_again_by_the_next_sweep_then_sent_once(by_mail: Sweeper) -> None:
    fault = by_mail.fake.add_fault(path="sendmail", status=503, times=None)
    assert by_mail.run("sweep").exit_code == 0
    failed = len(by_mail.listing("alerts"))
    fault.times = fault.hits  # the channel is back

    assert by_mail.run("sweep", "--since", "1d").exit_code == 0

    listed = by_mail.listing("alerts")
    assert len(listed) == failed and {a["status"] for a in listed} == {"sent"}
    assert {a["tries"] for a in listed} == {2}
    assert len(alert_mails(by_mail)) == failed


def test_alerts_test_tries_each_channel_and_says_how_it_went(by_mail: Sweeper) -> None:
    result = by_mail.run("alerts", "test")

    assert result.exit_code == 0, result.output
    assert "✓ mail: sent" in result.output
    [mail] = alert_mails(by_mail)
    assert "test alert" in str(mail["message"]["subject"])
    [listed] = by_mail.listing("alerts")
    assert (listed["incident_id"], listed["status"]) == (0, "sent")


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ('webhook_url = "http://hooks.example/in"', "alerts.webhook_url"),
        ('teams_url = "ftp://teams.example/x"', "alerts.teams_url"),
        ('min_severity = "urgent"', "alerts.min_severity"),
        ('sweep_every = "30s"', "alerts.sweep_every"),
        ("budget_seconds = 0", "alerts.budget_seconds"),
        ('webhook_url = "https://hooks.example/in"', "SWEEPER_WEBHOOK_SECRET"),
    ],
)
def test_a_bad_alert_setting_is_one_line_naming_it(
    sweeper: Sweeper, setting: str, named: str
) -> None:
    with_alerts(sweeper, setting + "\n")

    result = sweeper.run("sweep")

    assert result.exit_code == 2
    assert named in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "hooks.example/in" not in result.output  # a URL is never printed


def test_alerts_test_without_a_channel_is_a_configuration_error(sweeper: Sweeper) -> None:
    result = sweeper.run("alerts", "test")

    assert result.exit_code == 2
    assert "alerts: no channel is set" in result.output


def test_the_listing_is_empty_before_any_alert(sweeper: Sweeper, tmp_path: Path) -> None:
    assert sweeper.run("sweep").exit_code == 0

    assert sweeper.run("alerts").output.strip() == "No alerts."


def test_the_scheduler_runs_a_frequent_sweep_at_the_configured_pace() -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from sweeper.commands.schedule import FREQUENT_ID, add_frequent

    scheduler = BackgroundScheduler(timezone="UTC")
    add_frequent(scheduler, lambda: None, timedelta(minutes=15))

    job = scheduler.get_job(FREQUENT_ID)
    assert job.trigger.interval == timedelta(minutes=15)
    assert (job.max_instances, job.coalesce) == (1, True)


def test_a_frequent_sweep_alerts_sends_no_digest_and_waits_for_the_nightly_job(
    by_mail: Sweeper,
) -> None:
    from sweeper.commands.nightly import lock_path_for, run_frequent
    from sweeper.processes import single_run
    from sweeper.settings import load_settings

    settings = load_settings(by_mail.config, by_mail.env())
    with single_run(lock_path_for(settings)), pytest.raises(AlreadyRunning):
        run_frequent(settings, by_mail.env())

    result = run_frequent(settings, by_mail.env())

    assert result.exit_code == 0
    assert any(line.startswith("Alerts: ") for line in result.lines)
    subjects = [str(m["message"]["subject"]) for m in by_mail.fake.sent_mail]
    assert subjects and all(" incident" in s for s in subjects)  # alerts, no digest
    assert len(by_mail.rows("select id from runs")) == 1


# -- Teams and webhooks, through real receivers on loopback ----------------------------------


def test_each_alert_reaches_teams_and_the_signed_webhook_once(
    sweeper: Sweeper, receiver: Receiver, teams: Receiver
) -> None:
    on_receivers(sweeper, teams, receiver)

    assert run_with_secret(sweeper, "sweep").exit_code == 0
    assert run_with_secret(sweeper, "sweep", "--since", "1d").exit_code == 0

    serious = [i for i in sweeper.incidents() if i["severity"] in ("high", "critical")]
    hooks, cards = receiver.deliveries, teams.deliveries
    assert len(hooks) == len(cards) == len(serious)  # verified signatures, once each
    assert len({r.headers["webhook-id"] for r in hooks}) == len(serious)
    first = orjson.loads(hooks[0].body)
    assert first["type"] == "incident.alert" and first["data"]["severity"] == "critical"
    card = orjson.loads(cards[0].body)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    addresses = [r["address"] for r in sweeper.rows("select address from finding_addresses")]
    bodies = b" ".join(r.body for r in [*receiver.requests, *teams.requests]).decode()
    assert not [a for a in addresses if a in bodies and not a.endswith("northwick.example")]


def test_a_receiver_answering_429_gets_each_alert_once(
    sweeper: Sweeper, receiver: Receiver, teams: Receiver
) -> None:
    receiver.script["/hook"] = [(429, {"Retry-After": "1"}), (200, {})]
    on_receivers(sweeper, teams, receiver, 'min_severity = "critical"\n')

    assert run_with_secret(sweeper, "sweep").exit_code == 0

    critical = [i for i in sweeper.incidents() if i["severity"] == "critical"]
    hooks = [r for r in receiver.requests if r.path == "/hook"]
    assert len([r for r in hooks if r.status == 200]) == len(critical)
    assert [r.status for r in hooks][:2] == [429, 200]
    assert hooks[0].headers["webhook-id"] == hooks[1].headers["webhook-id"]  # one message
    listed = sweeper.listing("alerts")
    assert {(a["channel"], a["status"]) for a in listed} == {("teams", "sent"), ("webhook", "sent")}


def test_a_receiver_that_is_down_fails_its_alerts_not_the_sweep(
    sweeper: Sweeper, receiver: Receiver
) -> None:
    with_alerts(
        sweeper,
        f'webhook_url = "http://127.0.0.1:{closed_port()}/hook"\nmin_severity = "critical"\n',
    )

    result = run_with_secret(sweeper, "sweep")

    assert result.exit_code == 0 and sweeper.findings()
    assert "alerts.webhook_url: " in result.output and "127.0.0.1" in result.output
    assert "/hook" not in result.output  # never the URL's path
    assert {a["status"] for a in sweeper.listing("alerts")} == {"failed"}
    assert "Alert failed: incident" in run_with_secret(sweeper, "digest", "--dry-run").output


def test_an_alert_by_smtp_is_a_short_mail_through_the_digest_relay(
    sweeper: Sweeper, relay: Relay, tmp_path: Path
) -> None:
    config = smtp_digest(relay, tmp_path) + '\n[alerts]\nmail = true\nmin_severity = "critical"\n'
    write_config(sweeper.config, sweeper.config.read_text() + config)
    both = tmp_path / "both-cas.pem"  # the local Graph's sign-in CA and the relay's
    both.write_text(sweeper.fake.ca_path.read_text() + relay.ca.read_text())
    env = sweeper.env(SWEEPER_SMTP_PASSWORD="relay-test-password", SSL_CERT_FILE=str(both))

    result = sweeper.run("sweep", env=env)

    assert result.exit_code == 0, result.output
    critical = [i for i in sweeper.incidents() if i["severity"] == "critical"]
    assert len(relay.received) == len(critical) and relay.tls_seen == [True] * len(critical)
    mail = relay.received[0]
    assert mail["Subject"].startswith("sweeper: critical incident: ")
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode()
    assert "Next: `sweeper incident show " in body and "report by" in body
    exposed = [r["address"] for r in sweeper.rows("select address from finding_addresses")]
    assert not [a for a in exposed if a in body and not a.endswith("northwick.example")]
