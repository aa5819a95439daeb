"""Mail alerts through an SMTP relay, as the relay sees them (issue 24, items 3 and 5).

- A relay that keeps the exchange going a line at a time holds a sweep no longer than
  ``alerts.budget_seconds``: the bound is on the whole exchange, not on each line.
- A mail alert tried again (its first try was taken but not answered in time) goes with the
  Message-ID of its first try, so the mailbox that has it can drop the repeat.
"""

from __future__ import annotations

import re
import time

from support.misbehaving_relays import Late, Trickling, running
from support.runner import Sweeper, write_config

from sweeper.fakegraph.tenant import DIGEST_SENDER, DPO

WITHIN = 30.0  # far above a 3 s budget; far below a relay that trickles for ever


def by_relay(sweeper: Sweeper, port: int, budget: int) -> Sweeper:
    write_config(
        sweeper.config,
        sweeper.config.read_text()
        + f"""
[digest]
transport = "smtp"
sender = "{DIGEST_SENDER}"
recipients = ["{DPO}"]
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_starttls = false

[alerts]
mail = true
min_severity = "critical"
budget_seconds = {budget}
""",
    )
    return sweeper


def test_a_relay_that_trickles_its_greeting_holds_the_sweep_only_its_budget(
    sweeper: Sweeper,
) -> None:
    with running(Trickling()) as relay:
        by_relay(sweeper, relay.port, budget=3)
        started = time.monotonic()
        result = sweeper.run("sweep")
        took = time.monotonic() - started

    assert result.exit_code == 0, result.output
    assert took < WITHIN
    statuses = {r["status"] for r in sweeper.rows("select status from alerts")}
    assert statuses <= {"pending", "failed"} and statuses  # none taken for sent
    assert "Alerts:" in result.output


def test_a_mail_alert_tried_again_keeps_its_message_id(sweeper: Sweeper) -> None:
    with running(Late(late_by=6)) as relay:
        by_relay(sweeper, relay.port, budget=2)
        first = sweeper.run("sweep")
        assert first.exit_code == 0, first.output
        assert len(relay.message_ids) == 1  # taken, never answered within the budget
        [row] = sweeper.rows("select status from alerts where channel = 'mail' limit 1")
        assert row["status"] in ("pending", "failed")

        again = sweeper.run("sweep")  # the next run tries the alert again
        assert again.exit_code == 0, again.output

    first_try, *later = relay.message_ids
    assert later.count(first_try) == 1  # the same delivery, the same id, once more
    assert len(set(later)) == len(later)  # and no other alert's
    assert re.fullmatch(r"<msg_sweeper_[0-9a-f]+_\d+_[\w-]+_[0-9a-f]+@[\w.-]+>", first_try)
