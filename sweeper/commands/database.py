"""The database a command works on: opened, and set right after runs that died.

A command that writes opens the database, creating it if needed; one that only reads
requires it to exist (reading never creates one). Either way, what a dead run left behind
(a run still marked running, findings not yet in an incident) is put right first. A file
a command writes (``--out``) must never replace the database or the configuration.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlite_utils import Database

from sweeper import store
from sweeper.files import own_files
from sweeper.settings import Settings
from sweeper.store.recovery import recover

# What the command line says keeps the command line's logger name.
log = logging.getLogger("sweeper")


def open_database(settings: Settings) -> Database:
    """Open (creating if needed) the database and set right what dead runs left behind."""
    db = store.open_db(settings.database)
    recovered = recover(
        db, settings.incident_window, settings.severity, reexposure=settings.reexposure_window
    )
    if recovered.runs or recovered.findings:
        log.warning("%s", recovered.summary())
    return db


def existing_database(settings: Settings) -> Database:
    """The configured database, which must exist already: reading never creates one."""
    store.require_existing(settings.database)
    return open_database(settings)


def protected(settings: Settings) -> dict[Path, str]:
    """The files an ``--out`` must never replace: the database, its side files, the
    configuration file."""
    return own_files(settings.database, settings.config_path)
