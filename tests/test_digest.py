"""The DPO's digest: content, escaping, masking, delivery by Graph and SMTP, exactly once."""

from __future__ import annotations

import re
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.digest import (
    GRAPH_DIGEST,
    incident_of,
    swept_with_subject,
    with_digest,
    written_digest,
)
from support.runner import Sweeper, write_config
from support.smtp import Relay, smtp_digest
from support.tenant import DAY_INCIDENTS, late_batch

from sweeper import store
from sweeper.commands.digest import run_digest
from sweeper.fakegraph.tenant import DIGEST_SENDER, DPO, recipient
from sweeper.present import render
from sweeper.settings import load_settings


def external_addresses(sweeper: Sweeper) -> list[str]:
    conn = sqlite3.connect(sweeper.db)
    try:
        rows = conn.execute("select distinct address from finding_addresses where external = 1")
        return [r[0] for r in rows]
    finally:
        conn.close()


class Elements(HTMLParser):
    """Every start tag and its attributes, to check what a mail client would run."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


@pytest.fixture
def swept(sweeper: Sweeper, tmp_path: Path) -> Sweeper:
    with_digest(sweeper, GRAPH_DIGEST + f'reports_dir = "{tmp_path / "reports"}"\n')
    assert sweeper.run("sweep").exit_code == 0
    return sweeper


def test_the_digest_says_what_needs_doing_and_masks_every_address(swept: Sweeper) -> None:
    result = swept.run("digest")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{DAY_INCIDENTS} new incidents need review, 3 critical")
    path = Path(result.output.split("Written to ")[1].split(" (not sent)")[0])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    html = path.read_text()
    text = swept.run("digest", "--dry-run").output
    users = swept.fake.tenant.users
    swept_count = len([u for u in users if u.has_mailbox])  # shared mailboxes too
    shared = len([u for u in users if u.has_mailbox and not u.enabled])
    no_mailbox = len([u for u in users if not u.has_mailbox])
    for body in (html, text):
        assert "Victim satisfaction survey - your views" in body
        assert "1136 unique addresses in 7 messages (largest batch 198)" in body
        assert "critical for 100+ people" in body
        assert f"{swept_count} swept, {no_mailbox} skipped (no mailbox), 0 failed" in body
        assert f"{shared} of the swept belong to disabled accounts: shared mailboxes" in body
        assert "100.0% of readable mailboxes" in body
        assert "Working group agenda" in body  # a low incident is still reported
    addresses = external_addresses(swept)
    assert len(addresses) > 1500
    leaked = [a for a in addresses if a in html or a in text]
    assert leaked == []
    # A masked sample from each of an incident's top three domains (fewer when it has fewer).
    samples = sum(min(3, i["domains"]) for i in swept.incidents())
    assert html.count("***@") >= samples


def incident_blocks(text: str) -> list[str]:
    """The text digest's incident blocks: from a ``[SEVERITY] Incident N:`` line on."""
    return [block for block in text.split("\n[")[1:] if "] Incident " in block.split("\n")[0]]


def test_the_text_digest_has_one_line_per_field_of_each_incident(swept: Sweeper) -> None:
    text = swept.run("digest", "--dry-run").output

    blocks = incident_blocks(text)

    assert len(blocks) == DAY_INCIDENTS
    for block in blocks:
        lines = block.split("\n")
        starts = [line.split(":")[0].strip() for line in lines[1:] if line.startswith("  ")]
        for label in ("Why", "Sender", "Sent", "Exposed", "Top domains", "For example"):
            assert label in starts, block[:80]
    assert max(len(line) for line in text.splitlines()) <= 400  # the longest: a reason
    assert len(text.splitlines()) > 10 * DAY_INCIDENTS


def test_each_incident_links_to_its_console_page_when_the_console_has_an_address(
    swept: Sweeper,
) -> None:
    before = swept.run("digest", "--dry-run").output
    assert "/incidents/" not in before  # without console.url, as before
    console = "https://dpo.northwick.example"
    write_config(swept.config, swept.config.read_text() + f'\n[console]\nurl = "{console}"\n')

    text = swept.run("digest", "--dry-run").output
    html = written_digest(swept)

    ids = [int(block.split(":")[0].split()[-1]) for block in incident_blocks(text)]
    assert len(ids) == DAY_INCIDENTS
    for incident in ids:
        assert f"  Open:        {console}/incidents/{incident}\n" in text
    links = [dict(attrs).get("href") for tag, attrs in elements(html).tags if tag == "a"]
    assert sorted(h for h in links if h and "/incidents/" in h) == sorted(
        f"{console}/incidents/{i}" for i in ids
    )
    assert "open each incident in the console" in text


def test_article_33_clock_is_shown_for_high_and_critical_only(swept: Sweeper) -> None:
    text = swept.run("digest", "--dry-run").output
    blocks = incident_blocks(text)
    assert len(blocks) == DAY_INCIDENTS
    assert any("ARTICLE 33:" in block for block in blocks)
    assert not all("ARTICLE 33:" in block for block in blocks)
    for block in blocks:
        severity = block.split("]")[0]
        has_clock = "ARTICLE 33:" in block
        assert has_clock == (severity in ("CRITICAL", "HIGH")), block[:60]
    conn = sqlite3.connect(swept.db)
    detected = conn.execute("select created_at from incidents where id = 1").fetchone()[0]
    conn.close()
    deadline = datetime.fromisoformat(detected) + timedelta(hours=72)
    assert f"report by {deadline:%d %b %Y %H:%M UTC}".replace("by 0", "by ") in text


def test_the_html_is_safe_for_mail_clients(swept: Sweeper) -> None:
    html = Path(swept.run("digest").output.split("Written to ")[1].split(" (")[0]).read_text()
    tags = elements(html).tags
    names = {t for t, _ in tags}
    assert not names & {"script", "link", "iframe", "object", "style", "img", "form"}
    attrs = [(t, a) for t, attrs in tags for a, _ in attrs]
    assert not [a for _, a in attrs if a.startswith("on")]
    assert any(a == "style" for _, a in attrs)  # CSS inlined into the elements
    assert "http://" not in html and "https://" not in html  # no remote assets
    assert "<table" in html and 'width="100%"' in html


def test_a_hostile_subject_comes_out_escaped(sweeper: Sweeper, tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror="alert(1)">'
    swept_with_subject(sweeper, "hostile", hostile, tmp_path)

    html = Path(sweeper.run("digest").output.split("Written to ")[1].split(" (")[0]).read_text()

    assert "&lt;script&gt;alert(" in html
    assert "&lt;img src=x onerror=" in html
    tags = elements(html).tags
    assert not [t for t, _ in tags if t in ("script", "img")]
    assert not [a for _, attrs in tags for a, _ in attrs if a.startswith("on")]


TEMPLATE_DIR = Path(render.__file__).parent.parent / "templates"


def test_every_template_escapes_values_for_its_own_format() -> None:
    names = sorted(p.name for p in TEMPLATE_DIR.glob("*.j2"))
    hostile = "<b>x</b> [y](https://evil.example)"

    shown = {name: render.escape_for(name)(hostile) for name in names}

    assert len(names) >= 5
    for name in names:
        if name.endswith(".html.j2"):
            assert shown[name] == "&lt;b&gt;x&lt;/b&gt; [y](https://evil.example)"
        elif name.endswith(".md.j2"):
            assert shown[name] == "\\<b\\>x\\</b\\> \\[y\\](`https://evil.example`)"
        else:
            assert name.endswith(".txt.j2") and shown[name] == hostile


@pytest.mark.parametrize(
    "name", sorted(str(p.relative_to(TEMPLATE_DIR)) for p in TEMPLATE_DIR.rglob("*.j2"))
)
def test_no_template_turns_a_value_into_finished_text(name: str) -> None:
    source = (TEMPLATE_DIR / name).read_text()
    # |safe, |e, |escape, |forceescape, ~ and Markup make a value pass finalize unescaped.
    assert not re.search(r"\|\s*(safe|e|escape|forceescape)\b|~|Markup|autoescape", source)


def test_macro_output_keeps_its_lines_and_values_do_not() -> None:
    template = render.TEMPLATES.from_string(
        "{% macro block(v) %}\nA: {{ v }}\nB: {{ v }}\n{% endmacro %}{{ block(value) }}"
    )

    out = template.render(value="one\ntwo\u2028three\x1b[0m", **{render.INTERNAL: frozenset()})

    assert out == "\nA: one two three [0m\nB: one two three [0m\n"


def test_a_subject_cannot_forge_lines_of_the_text_digest_or_the_worksheet(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    forged = "Rota\r\nVerdict: nothing needs review\n| 0 | people |\u2028<b>x</b>"
    swept_with_subject(sweeper, "forged", forged, tmp_path)
    incident = incident_of(sweeper, "forged")

    text = sweeper.run("digest", "--dry-run").stdout
    markdown = sweeper.run("incident", "report", str(incident), "--format", "md").stdout

    assert "Rota  Verdict: nothing needs review | 0 | people |" in text
    assert "Rota  Verdict: nothing needs review \\| 0 \\| people \\|" in markdown
    for rendered in (text, markdown):
        lines = rendered.splitlines()
        assert not [line for line in lines if line.startswith(("Verdict: nothing", "| 0 |"))]
    assert "<b>x</b>" in text  # plain text: shown as sent, nothing to escape
    assert "\\<b\\>x\\</b\\>" in markdown and "&lt;" not in markdown  # Markdown, not HTML


EXPOSING = (
    "Call Jane.Doe@gmail.com, desk@mail.northwick.example or ops@northwick-trust.example "
    "re \u202etxt.exe"
)


def test_addresses_in_a_subject_or_an_outside_sender_are_masked_in_all_of_the_digest(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    swept_with_subject(
        sweeper, "exposing", EXPOSING, tmp_path, sender="outsider.person@evil.example"
    )

    html = written_digest(sweeper)
    text = sweeper.run("digest", "--dry-run").stdout
    assert sweeper.run("digest", "--send").exit_code == 0
    sent = sweeper.fake.sent_mail[-1]["message"]["body"]["content"]

    for body in (html, text, sent):
        assert "Jane.Doe@gmail.com" not in body and "J***@gmail.com" in body
        assert "outsider.person@evil.example" not in body and "o***@evil.example" in body
        # The tenant's verified domain (with its subdomains) and own_domains stay readable.
        assert "desk@mail.northwick.example" in body
        assert "ops@northwick-trust.example" in body
        assert "victim.care@northwick.example" in body  # the other incidents' sender
        assert "\u202e" not in body and "[U+202E]txt.exe" in body
    shown = re.findall(r"[\w.*'-]+@gmail\.com", html + text + sent)
    assert shown and all(a.endswith("***@gmail.com") for a in shown)


def test_graph_delivery_sends_once_and_saves_to_sent_items_as_configured(swept: Sweeper) -> None:
    result = swept.run("digest", "--send")

    assert result.exit_code == 0, result.output
    assert f"Sent by graph to {DPO}" in result.output
    [mail] = swept.fake.sent_mail
    assert mail["sender"] == DIGEST_SENDER
    assert mail["saveToSentItems"] is True  # the default: what makes a digest exactly once
    message = mail["message"]
    [row] = swept.rows("select * from digests")
    assert message["internetMessageId"] == row["internet_message_id"]
    mailbox = swept.fake.tenant.user(DIGEST_SENDER)
    assert mailbox is not None
    assert mailbox.sent[0]["internetMessageId"] == row["internet_message_id"]
    assert message["subject"] == f"sweeper: {DAY_INCIDENTS} new incidents need review, 3 critical"
    assert message["toRecipients"] == [{"emailAddress": {"address": DPO}}]
    assert message["body"]["contentType"] == "html"
    assert "Victim satisfaction survey" in message["body"]["content"]
    posts = [e for e in swept.fake.log if e.path.lower().endswith("/sendmail")]
    assert [e.status for e in posts] == [202]


def test_a_503_is_not_retried_and_leaves_everything_pending(swept: Sweeper) -> None:
    swept.fake.add_fault(path="/sendMail", status=503, times=1, retry_after=1)

    failed = swept.run("digest", "--send")

    assert failed.exit_code == 3
    assert "may or may not have been sent" in failed.output
    assert "Everything stays pending" in failed.output
    posts = [e for e in swept.fake.log if e.path.lower().endswith("/sendmail")]
    assert [e.status for e in posts] == [503]  # one POST: the SDK did not retry it

    again = swept.run("digest", "--send")
    assert again.exit_code == 0
    assert f"{DAY_INCIDENTS} new incidents need review" in again.output
    assert len(swept.fake.sent_mail) == 1


def test_exactly_once_across_two_runs_and_resend_on_request(swept: Sweeper) -> None:
    assert swept.run("digest", "--send").exit_code == 0
    second = swept.run("digest", "--send")
    assert second.exit_code == 0
    assert "Nothing new since today's digest" in second.output
    assert len(swept.fake.sent_mail) == 1

    resent = swept.run("digest", "--send", "--resend")
    assert resent.exit_code == 0
    assert len(swept.fake.sent_mail) == 2
    assert (
        swept.fake.sent_mail[1]["message"]["subject"]
        == (swept.fake.sent_mail[0]["message"]["subject"])
    )


def test_a_grown_incident_and_a_failed_run_are_reported_once_each(swept: Sweeper) -> None:
    assert swept.run("digest", "--send").exit_code == 0
    late = [recipient(f"late{i}@gmail.com") for i in range(20)]
    late_batch(swept.fake, "victim.care@northwick.example", "late", 30, late)
    swept.fake.add_fault(mailbox="clinic.bookings@northwick.example", status=500, times=None)
    assert swept.run("sweep", "--since", "2d").exit_code == 1  # a backfill finds the late batch

    settings = load_settings(swept.config, swept.env())
    db = store.open_db(swept.db)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    outcome = run_digest(db, settings, swept.env(), send=True, now=tomorrow)

    assert outcome.status == "sent"
    assert outcome.digest is not None
    assert outcome.digest.verdict == (
        "1 incident grew since reported; sweep incomplete: 1 mailbox not read"
    )
    [grown] = outcome.digest.grown
    assert (grown.reported_before, grown.unique_exposed) == (1136, 1156)
    text = swept.fake.sent_mail[-1]["message"]["body"]["content"]
    assert "1136 → 1156 people (+20)" in text
    assert "clinic.bookings@northwick.example: 500" in text

    later = run_digest(db, settings, swept.env(), send=True, now=tomorrow + timedelta(days=1))
    assert later.digest is not None
    assert later.digest.grown == () and later.digest.health.failed_runs == ()
    assert later.digest.verdict == "No sweep ran since the last digest: nothing was checked"


def test_an_all_clear_is_sent_when_nothing_is_new_unless_turned_off(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    for user in sweeper.fake.tenant.users:
        user.sent = [m for m in user.sent if m["subject"] in ("Rota", "Minutes")]
    with_digest(sweeper, GRAPH_DIGEST + f'reports_dir = "{tmp_path}"\n')
    assert sweeper.run("sweep").exit_code == 0

    result = sweeper.run("digest", "--send")

    assert result.exit_code == 0
    swept_count = len([u for u in sweeper.fake.tenant.users if u.has_mailbox])
    subject = sweeper.fake.sent_mail[0]["message"]["subject"]
    assert subject == f"sweeper: All clear: no new incidents; {swept_count} mailboxes swept"

    write_config(sweeper.config, sweeper.config.read_text() + "all_clear = false\n")
    settings = load_settings(sweeper.config, sweeper.env())
    db = store.open_db(sweeper.db)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    quiet = run_digest(db, settings, sweeper.env(), send=True, now=tomorrow)
    assert quiet.status == "nothing"
    assert len(sweeper.fake.sent_mail) == 1


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[digest]\ntransport = "pigeon"\n', "digest.transport"),
        ('[digest]\nrecipients = ["not an address"]\n', "digest.recipients[0]"),
        ('[digest]\nsmtp_password = "hunter2hunter2"\n', "digest.smtp_password: secrets"),
        ("[digest]\nsmtp_port = 0\n", "digest.smtp_port"),
    ],
)
def test_bad_digest_settings_are_named(swept: Sweeper, toml: str, named: str) -> None:
    write_config(swept.config, swept.config.read_text().split("[digest]")[0] + toml)
    result = swept.run("digest")
    assert result.exit_code == 2
    assert named in result.output


def test_sending_needs_recipients_and_a_sender(swept: Sweeper) -> None:
    write_config(swept.config, swept.config.read_text().split("[digest]")[0])
    result = swept.run("digest", "--send")
    assert result.exit_code == 2
    assert "digest.recipients: must list at least one address" in result.output
    assert swept.fake.sent_mail == []


# -- SMTP ---------------------------------------------------------------------------------


def test_smtp_delivery_uses_starttls_and_login_and_sends_both_parts(
    sweeper: Sweeper, relay: Relay, tmp_path: Path
) -> None:
    with_digest(sweeper, smtp_digest(relay, tmp_path))
    assert sweeper.run("sweep").exit_code == 0
    env = sweeper.env(SWEEPER_SMTP_PASSWORD="relay-test-password", SSL_CERT_FILE=str(relay.ca))

    result = sweeper.run("digest", "--send", env=env)

    assert result.exit_code == 0, result.output
    assert relay.tls_seen == [True]
    assert relay.logins == ["sweeper-relay"]
    [mail] = relay.received
    assert mail["Subject"] == f"sweeper: {DAY_INCIDENTS} new incidents need review, 3 critical"
    assert mail["To"] == "dpo@northwick.example, deputy.dpo@northwick.example"
    assert mail.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk()
             if not p.is_multipart()}  # fmt: skip
    assert set(parts) == {"text/plain", "text/html"}
    assert "1136 unique addresses in 7 messages" in parts["text/plain"]
    assert "1136 unique addresses in 7 messages" in parts["text/html"]
    assert not [a for a in external_addresses(sweeper) if a in parts["text/html"]]


def test_a_refused_smtp_login_keeps_everything_pending(
    sweeper: Sweeper, relay: Relay, tmp_path: Path
) -> None:
    with_digest(sweeper, smtp_digest(relay, tmp_path))
    assert sweeper.run("sweep").exit_code == 0
    env = sweeper.env(SWEEPER_SMTP_PASSWORD="wrong", SSL_CERT_FILE=str(relay.ca))

    result = sweeper.run("digest", "--send", env=env)

    assert result.exit_code == 3
    assert "the relay refused the login" in result.output
    assert "wrong" not in result.output
    assert relay.received == []
    env["SWEEPER_SMTP_PASSWORD"] = "relay-test-password"
    assert sweeper.run("digest", "--send", env=env).exit_code == 0
    assert len(relay.received) == 1
