"""The database in Azure Blob Storage, for hosts whose disk does not last (Azure Functions).

At job start the blob is leased and downloaded; when the job ends it is uploaded and the
lease released, even when the job failed (what was found before the failure is kept). The
lease lasts 60 seconds and is renewed in the background while the job runs, so a second
instance is refused while the job lives, and a crashed instance blocks the next night for a
minute at most.

Nothing is written back that was not read whole and verified: the download goes to a
temporary file, checked (its size against the blob's, its SHA-256 against the one stored with
it, SQLite's ``quick_check``, every schema change known) before it takes the working copy's
place; a run whose download failed raises :class:`StateError` (exit 3, one line) and leaves
the blob as it was. Only a missing blob is a new tenant: the empty placeholder created to
hold the lease is marked new in its metadata, and an empty blob without the mark is refused.

Settings, from the environment: ``SWEEPER_STATE_CONNECTION`` (a storage connection string,
e.g. the Functions app's ``AzureWebJobsStorage``) or ``SWEEPER_STATE_ACCOUNT_URL`` (signed in
with azure-identity's default chain, e.g. the app's managed identity); then
``SWEEPER_STATE_CONTAINER`` (default ``sweeper``) and ``SWEEPER_STATE_BLOB`` (default
``sweeper.db``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError

from sweeper.errors import AlreadyRunning, ConfigError, StateError
from sweeper.files import SQLITE_SIDE_FILES, new_private_file
from sweeper.graph.network import Outbound
from sweeper.store.integrity import checkpoint, problem_with

LEASE_SECONDS = 60
RENEW_EVERY = 20.0
# The blob's metadata: the SHA-256 of the database stored, or the mark of a placeholder
# created for a new tenant (the only empty blob taken for "no database yet").
MARK, NEW, SHA256 = "sweeperstate", "new", "sha256"


@dataclass(frozen=True)
class BlobLocation:
    container: str
    blob: str
    connection_string: str | None = None
    account_url: str | None = None
    # The proxy and trust of every other client's (HTTP(S)_PROXY, NO_PROXY, the CA bundle),
    # not azure-core's own reading of the environment.
    outbound: Outbound | None = None

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
            outbound=Outbound.of(
                env, ca_bundle=env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE")
            ),
        )

    def client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        outbound = self.outbound or Outbound.of(os.environ)
        if self.connection_string:
            url = BlobServiceClient.from_connection_string(self.connection_string).url
            return BlobServiceClient.from_connection_string(
                self.connection_string, **outbound.azure_options(url)
            )
        from azure.identity import DefaultAzureCredential

        url = self.account_url or ""
        options = outbound.azure_options(url)
        return BlobServiceClient(url, credential=DefaultAzureCredential(**options), **options)


@contextmanager
def leased_database(location: BlobLocation, local: Path) -> Iterator[Path]:
    """Lease, download to ``local``, yield; then upload and release, whatever happened.

    What is downloaded takes the place of ``local`` only once it is known whole and sound
    (:func:`_fetch`); what is uploaded at the end is checked the same way first. A download
    that fails, however often it was tried, raises :class:`StateError`: nothing runs and the
    blob is left as it was. ``local`` does not exist in the block when the tenant is new.
    """
    blob, lease = _lease(location)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease, stop), daemon=True)
    renewer.start()
    try:
        _fetch(blob, lease, local, _name(location))
        try:
            yield local
        finally:
            _store(blob, lease, local, _name(location))
    finally:
        stop.set()
        renewer.join(5)
        with contextlib.suppress(AzureError):  # an unreleased lease ends by itself in 60 s
            lease.release()


def _name(location: BlobLocation) -> str:
    return f"{location.container}/{location.blob}"


def _lease(location: BlobLocation) -> tuple[Any, Any]:
    """The blob client and a lease on it; the blob is created (marked new) if missing."""
    service = location.client()
    container = service.get_container_client(location.container)
    try:
        if not container.exists():
            container.create_container()
        blob = container.get_blob_client(location.blob)
        if not blob.exists():
            # A lease needs a blob to hold; if another instance created it first, the
            # lease decides. The mark tells this empty placeholder from an emptied database.
            with contextlib.suppress(ResourceExistsError):
                blob.upload_blob(b"", overwrite=False, metadata={MARK: NEW})
        try:
            return blob, blob.acquire_lease(lease_duration=LEASE_SECONDS)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise AlreadyRunning(
                    f"the database blob {_name(location)} is leased by another instance; "
                    "this one did nothing"
                ) from None
            raise
    except AzureError as exc:
        raise StateError(
            f"Blob Storage refused the database blob {_name(location)}: {_reason(exc)}"
        ) from None


def _fetch(blob: Any, lease: Any, local: Path, name: str) -> None:
    """Download the blob beside ``local`` and move it there once whole and verified."""
    try:
        properties = blob.get_blob_properties(lease=lease)
    except AzureError as exc:
        raise _unread(name, _reason(exc)) from None
    metadata = dict(properties.metadata or {})
    if properties.size == 0:
        if metadata.get(MARK) == NEW:
            local.unlink(missing_ok=True)  # a new tenant: sweeper creates the database
            return
        raise _unread(
            name,
            "it is empty (0 bytes) but was never a new placeholder: restore an earlier "
            "version of the blob, or delete it to start a new database",
        )
    local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, copy = new_private_file(local, ".part")
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as handle:
                received = blob.download_blob(lease=lease, max_concurrency=1).readinto(
                    _Hashing(handle, digest)
                )
        except (AzureError, OSError) as exc:
            raise _unread(name, f"the download failed ({_reason(exc)})") from None
        size = copy.stat().st_size
        if received != properties.size or size != properties.size:
            raise _unread(name, f"{size} of its {properties.size} bytes arrived")
        expected = metadata.get(SHA256)
        if expected and expected != digest.hexdigest():
            raise _unread(name, "what arrived differs from what was stored (SHA-256)")
        problem = problem_with(copy)
        if problem is not None:
            raise _unread(name, problem)
        os.replace(copy, local)
    finally:
        _remove_copy(copy)


def _store(blob: Any, lease: Any, local: Path, name: str) -> None:
    """Upload ``local`` under the lease, if it exists and is sound; else leave the blob."""
    if not local.exists():
        return  # a new tenant whose run created nothing: the placeholder stays
    try:
        checkpoint(local)
    except sqlite3.Error as exc:
        raise _unstored(name, f"it could not be checkpointed ({exc})") from None
    problem = problem_with(local) if local.stat().st_size else "it is empty"
    if problem is not None:
        raise _unstored(name, problem)
    metadata = {SHA256: _sha256_of(local)}
    try:
        with local.open("rb") as data:
            blob.upload_blob(data, overwrite=True, lease=lease, metadata=metadata)
    except AzureError as exc:
        raise StateError(
            f"the database could not be stored back in the blob {name} ({_reason(exc)}); "
            "the blob keeps the copy from before this run"
        ) from None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Hashing:
    """A writable file that also feeds what is written to a hash."""

    def __init__(self, handle: Any, digest: Any) -> None:
        self._handle = handle
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return int(self._handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _remove_copy(copy: Path) -> None:
    for suffix in ("", *SQLITE_SIDE_FILES):
        copy.with_name(copy.name + suffix).unlink(missing_ok=True)


def _unread(name: str, why: str) -> StateError:
    return StateError(
        f"the database blob {name} could not be read whole: {why}; nothing was run and "
        "the blob was left as it was"
    )


def _unstored(name: str, why: str) -> StateError:
    return StateError(
        f"the database after this run is not fit to store in the blob {name}: {why}; "
        "the blob keeps the copy from before this run"
    )


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "message", None) or str(exc)
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _renew(lease: Any, stop: threading.Event) -> None:
    while not stop.wait(RENEW_EVERY):
        try:
            lease.renew()
        except Exception:  # the upload at the end will fail loudly if the lease is lost
            return
