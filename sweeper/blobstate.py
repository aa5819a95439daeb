"""The database in Azure Blob Storage, for hosts whose disk does not last (Azure Functions).

At job start the blob is leased and downloaded; when the job ends it is uploaded and the
lease released, even when the job failed (what was found before the failure is kept). The
lease lasts 60 seconds and is renewed in the background while the job runs, so a second
instance is refused while the job lives, and a crashed instance blocks the next night for a
minute at most.

Settings, from the environment: ``SWEEPER_STATE_CONNECTION`` (a storage connection string,
e.g. the Functions app's ``AzureWebJobsStorage``) or ``SWEEPER_STATE_ACCOUNT_URL`` (signed in
with azure-identity's default chain, e.g. the app's managed identity); then
``SWEEPER_STATE_CONTAINER`` (default ``sweeper``) and ``SWEEPER_STATE_BLOB`` (default
``sweeper.db``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.errors import AlreadyRunning, ConfigError, StateError

LEASE_SECONDS = 60
RENEW_EVERY = 20.0


@dataclass(frozen=True)
class BlobLocation:
    container: str
    blob: str
    connection_string: str | None = None
    account_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BlobLocation:
        connection = env.get("SWEEPER_STATE_CONNECTION") or None
        account_url = env.get("SWEEPER_STATE_ACCOUNT_URL") or None
        if not connection and not account_url:
            raise ConfigError(
                "SWEEPER_STATE_CONNECTION",
                "set it (or SWEEPER_STATE_ACCOUNT_URL) to keep the database in Blob Storage",
            )
        return cls(
            container=env.get("SWEEPER_STATE_CONTAINER") or "sweeper",
            blob=env.get("SWEEPER_STATE_BLOB") or "sweeper.db",
            connection_string=connection,
            account_url=account_url,
        )

    def client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string)
        from azure.identity import DefaultAzureCredential

        return BlobServiceClient(self.account_url or "", credential=DefaultAzureCredential())


@contextmanager
def leased_database(location: BlobLocation, local: Path) -> Iterator[Path]:
    """Lease, download to ``local``, yield; then upload and release, whatever happened."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError

    service = location.client()
    container = service.get_container_client(location.container)
    try:
        if not container.exists():
            container.create_container()
        blob = container.get_blob_client(location.blob)
        if not blob.exists():
            # A lease needs a blob to hold; if another instance created it first, the
            # lease decides.
            with contextlib.suppress(ResourceExistsError):
                blob.upload_blob(b"", overwrite=False)
        try:
            lease = blob.acquire_lease(lease_duration=LEASE_SECONDS)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise AlreadyRunning(
                    f"the database blob {location.container}/{location.blob} is leased by "
                    "another instance; this one did nothing"
                ) from None
            raise
    except HttpResponseError as exc:
        raise StateError(f"Blob Storage refused the database blob: {exc.reason}") from None

    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease, stop), daemon=True)
    renewer.start()
    try:
        _download(blob, lease, local)
        yield local
    finally:
        stop.set()
        renewer.join(5)
        try:
            if local.exists():
                _checkpoint(local)
                with local.open("rb") as data:
                    blob.upload_blob(data, overwrite=True, lease=lease)
        finally:
            lease.release()


def _download(blob: Any, lease: Any, local: Path) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        blob.download_blob(lease=lease).readinto(handle)
    if local.stat().st_size == 0:
        local.unlink()  # a new, empty blob: let sweeper create the database


def _checkpoint(local: Path) -> None:
    """Fold the write-ahead log into the file itself: only the file is uploaded."""
    conn = sqlite3.connect(local)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _renew(lease: Any, stop: threading.Event) -> None:
    while not stop.wait(RENEW_EVERY):
        try:
            lease.renew()
        except Exception:  # the upload at the end will fail loudly if the lease is lost
            return
