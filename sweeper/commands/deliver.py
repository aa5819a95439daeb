"""Delivering the digest: an email message for SMTP, a JSON body for Graph's sendMail."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import smtplib
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from sweeper.errors import DeliveryError
from sweeper.faultpoints import reached
from sweeper.graph.signin import gateway_for
from sweeper.rules.digest import Digest
from sweeper.settings import DigestSettings, Settings

# Header lines as long as RFC 5322 allows: a Message-ID (its id, token and nonce, and the
# sender's domain) stays on one line, as relays and receivers compare it.
UNFOLDED = email.policy.default.clone(max_line_length=998)


def deliver(
    settings: Settings,
    env: Mapping[str, str],
    digest: Digest,
    html: str,
    text: str,
    message_id: str,
) -> None:
    """Deliver the digest once, by the configured transport, with this Message-ID.

    Returns when Graph answered 202 or the relay accepted the message; raises DeliveryError
    or GraphError otherwise (the mail may then still have gone: see their messages).
    """
    config = settings.digest
    sender = config.sender or ""
    reached("digest-sending")
    if config.transport == "smtp":
        message = email_message(
            digest.subject_line, html, text, sender, config.recipients, message_id
        )
        send_smtp(config, env, message, settings.ca_bundle)
    else:
        payload = graph_payload(
            digest.subject_line, html, config.recipients, config.save_to_sent_items, message_id
        )
        asyncio.run(_send_graph(settings, env, sender, payload))
    reached("digest-accepted")


async def _send_graph(
    settings: Settings, env: Mapping[str, str], sender: str, payload: dict[str, object]
) -> None:
    async with gateway_for(settings.sign_in, env) as gateway:
        await gateway.send_mail(sender, payload)


def email_message(
    subject: str,
    html: str,
    text: str,
    sender: str,
    recipients: Sequence[str],
    message_id: str | None = None,
) -> EmailMessage:
    """multipart/alternative: the plain text first, the HTML as the preferred part.

    ``message_id``: the digest's own (the same each time that digest is sent); else a new one.
    """
    message = EmailMessage(policy=UNFOLDED)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_smtp(
    settings: DigestSettings,
    env: Mapping[str, str],
    message: EmailMessage,
    ca_bundle: Path | None = None,
    timeout: float = 60,
) -> None:
    """Deliver through an SMTP relay: STARTTLS (required unless turned off), then login.
    ``timeout`` bounds the whole exchange with the relay, not each line of it: a relay that
    answers a line at a time, for ever, is cut off then (an alert passes what is left of its
    run's time for delivery)."""
    host = settings.smtp_host or ""
    watchdog = _Watchdog(timeout)
    try:
        with _Watched(host, settings.smtp_port, timeout, watchdog) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, env.get("SWEEPER_SMTP_PASSWORD", ""))
            refused = smtp.send_message(message)
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError(
            f"the relay {host}:{settings.smtp_port} does not offer STARTTLS; "
            "sweeper will not send personal data in clear text"
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"the relay refused the login: {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        if watchdog.fired:
            raise DeliveryError(
                f"SMTP delivery to {host}:{settings.smtp_port} failed: the relay did not "
                f"finish within {timeout:.3g} s"
            ) from None
        raise DeliveryError(f"SMTP delivery to {host}:{settings.smtp_port} failed: {exc}") from None
    finally:
        watchdog.cancel()
    if refused:
        raise DeliveryError(f"the relay refused {len(refused)} recipient(s)")


class _Watchdog:
    """Closes a watched SMTP connection ``seconds`` from now, ending whatever read it is in."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._smtp: smtplib.SMTP | None = None
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, smtp: smtplib.SMTP) -> None:
        self._smtp = smtp

    def _cut(self) -> None:
        self.fired = True
        sock = self._smtp.sock if self._smtp is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


class _Watched(smtplib.SMTP):
    """An SMTP connection under a watchdog from before it connects (the greeting too)."""

    def __init__(self, host: str, port: int, timeout: float, watchdog: _Watchdog) -> None:
        watchdog.watch(self)
        super().__init__(host, port, timeout=timeout)


def graph_payload(
    subject: str,
    html: str,
    recipients: Sequence[str],
    save_to_sent_items: bool,
    internet_message_id: str | None = None,
) -> dict[str, Any]:
    """The sendMail body, in Graph's own camelCase, with ``saveToSentItems`` always set.

    ``internet_message_id``: the digest's own, so that its copy in Sent Items can be found.
    """
    message: dict[str, Any] = {
        "subject": subject,
        "body": {"contentType": "html", "content": html},  # bodyType member, as declared
        "toRecipients": [{"emailAddress": {"address": r}} for r in recipients],
        "importance": "normal",
    }
    if internet_message_id is not None:
        message["internetMessageId"] = internet_message_id
    return {"message": message, "saveToSentItems": save_to_sent_items}
