"""The store ring: the only code that speaks SQL. sqlite-utils over one SQLite file.

- :mod:`.db`: opening the file (owner-only, migrated), transactions, one-statement rows.
- :mod:`.runs`: runs, and the mailboxes each run swept.
- :mod:`.findings`: findings, their copies and the addresses they exposed; the tenant's
  domains they were judged against.
  These three modules' names are this package's (``store.open_db``, ``store.start_run``).
- :mod:`.migrations`: the schema, one migration at a time (:mod:`.schema_early`,
  :mod:`.schema_later`).
- :mod:`.incidents`: placing findings in incidents and keeping their figures.
- :mod:`.merges`: what follows an incident when it is merged into another.
- :mod:`.triage`: triage steps and their append-only history.
- :mod:`.digests`: what a digest reports, and what a sent one did report.
- :mod:`.sending`: a digest on its way, recorded before delivery and settled after.
- :mod:`.response`: the people to notify, the worksheet's facts, ``incident show``'s.
- :mod:`.retention`: removing addresses (and export files) past retention.
- :mod:`.recovery`: what a killed process left behind, put right.
- :mod:`.siem`: what Microsoft Sentinel has had, record by record, and the exports.
- :mod:`.integrity`: whether a copied database file is whole, sound and sweeper's.
"""

from sweeper.store.db import BUSY_TIMEOUT_MS, open_db, require_existing, transaction
from sweeper.store.findings import (
    copies_of,
    exposed_addresses,
    list_findings,
    save_findings,
    save_tenant_domains,
    stored_facts,
    update_judgement,
    verified_domains,
)
from sweeper.store.runs import (
    RunTotals,
    finish_run,
    get_run,
    mailbox_marks,
    record_mailbox,
    start_run,
    without_mailbox,
)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "RunTotals",
    "copies_of",
    "exposed_addresses",
    "finish_run",
    "get_run",
    "list_findings",
    "mailbox_marks",
    "open_db",
    "record_mailbox",
    "require_existing",
    "save_findings",
    "save_tenant_domains",
    "start_run",
    "stored_facts",
    "transaction",
    "update_judgement",
    "verified_domains",
    "without_mailbox",
]
