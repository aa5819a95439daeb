"""Running the nightly job where the disk does not last: Azure Functions.

The Functions app (``deploy/azure-functions/function_app.py``) calls :func:`run_in_function`
from its timer trigger. The database is kept in Blob Storage under a lease
(:mod:`sweeper.blobstate`) and worked on in a private temporary directory.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from sweeper.blobstate import BlobLocation, leased_database
from sweeper.commands.nightly import NightlyResult, frequent_sweep, run_nightly
from sweeper.settings import load_settings

log = logging.getLogger(__name__)


def run_in_function(
    past_due: bool, env: Mapping[str, str], *, frequent: bool = False
) -> NightlyResult:
    """One nightly run, or with ``frequent`` one frequent sweep (sweep and alerts only).

    A late timer (``past_due``) still runs: a late sweep beats none. The blob's lease keeps
    runs apart: a frequent sweep firing while the nightly run holds it raises AlreadyRunning.
    """
    if past_due:
        log.warning("the timer fired late (past due); running now")
    settings = load_settings(None, env)
    location = BlobLocation.from_env(env)
    run = frequent_sweep if frequent else run_nightly
    with tempfile.TemporaryDirectory(prefix="sweeper-") as work:
        local = Path(work) / "sweeper.db"
        with leased_database(location, local):
            return run(replace(settings, database=local), env)
