"""A webhook's URL and signing secret, and the Standard Webhooks signature: no HTTP.

Kept apart from :mod:`.posting`, which posts through httpx, so that reading the settings
(which checks the URLs and the secret) never loads httpx.

:func:`standard_webhook_headers` signs a body as the Standard Webhooks specification says
(https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``,
keyed with the secret's bytes). The secret comes from :data:`SECRET_VARIABLE`, in the
specification's ``whsec_`` form (:func:`webhook_secret`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from sweeper.errors import ConfigError

SECRET_VARIABLE = "SWEEPER_WEBHOOK_SECRET"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)  # the specification: at least 24 bytes, at most 512 bits
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

Signer = Callable[[int], Mapping[str, str]]


# -- settings -------------------------------------------------------------------------------


def check_webhook_url(setting_name: str, url: str) -> str:
    """``url`` stripped, if it may receive alerts: https, or http to this machine (127.0.0.1,
    ::1, localhost: a local relay, or a test). Raises ConfigError naming ``setting_name``;
    the message never shows the URL, whose path and query may hold a secret."""
    text = url.strip()
    if not text:
        raise ConfigError(setting_name, "is empty: give the webhook's https:// URL")
    if re.search(r"[\s\x00-\x1f\x7f]", text):
        raise ConfigError(setting_name, "holds spaces or control characters: not a URL")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # an out-of-range or non-numeric port raises here
    except ValueError:
        raise ConfigError(setting_name, "is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise ConfigError(setting_name, "must be an https:// URL naming a host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            setting_name, "holds a user name or password, which sweeper does not send"
        )
    if scheme == "http" and host not in LOOPBACK:
        raise ConfigError(
            setting_name,
            "must be https:// (plain http only to 127.0.0.1, ::1 or localhost): an alert "
            "names people and their mail, and the URL carries its own secret",
        )
    return text


def webhook_secret(env: Mapping[str, str]) -> bytes:
    """The signing key from :data:`SECRET_VARIABLE` in ``env`` (``whsec_`` and base64).
    Raises ConfigError naming the variable; the message never shows its value."""
    value = env.get(SECRET_VARIABLE, "").strip()
    if not value:
        raise ConfigError(
            SECRET_VARIABLE,
            "is not set: the webhook channel signs every alert with it (whsec_ and 24 to 64 "
            "random bytes in base64; see the README's Webhooks section)",
        )
    try:
        return secret_key(value)
    except ValueError as exc:
        raise ConfigError(SECRET_VARIABLE, str(exc)) from None


def secret_key(secret: str) -> bytes:
    """The key of a ``whsec_...`` secret. Raises ValueError (never showing the secret)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("must start with whsec_ (the Standard Webhooks form: whsec_ + base64)")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not whsec_ followed by base64") from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"holds a {len(key)}-byte key; Standard Webhooks asks for {low} to {high}")
    return key


# -- Standard Webhooks ----------------------------------------------------------------------

_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


def standard_webhook_headers(
    secret: str | bytes, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, sent at Unix time ``timestamp``.

    ``secret`` is the ``whsec_...`` text or the key's bytes (:func:`webhook_secret`);
    ``msg_id`` the message's id, the same on every attempt (receivers use it to see a retry
    they already have): letters, digits, ``_`` and ``-`` only, as the specification wants
    no ``.`` in it. Raises ValueError for a malformed secret or id.
    """
    key = secret if isinstance(secret, bytes) else secret_key(secret)
    if not _MESSAGE_ID.fullmatch(msg_id):
        raise ValueError("a webhook-id holds only letters, digits, _ and - (at most 200)")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


def signed_by(secret: str | bytes, msg_id: str, body: bytes) -> Signer:
    """A ``sign`` for :func:`.outbound.post_json`: each attempt signed at its own time, same id."""
    return lambda timestamp: standard_webhook_headers(secret, msg_id, timestamp, body)
