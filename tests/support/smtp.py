"""A real SMTP relay on loopback (STARTTLS, then LOGIN) and a digest configured to use it."""

from __future__ import annotations

import email
import socket
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


@dataclass
class Relay:
    """A real SMTP server on loopback: STARTTLS required, then LOGIN, then mail."""

    host: str
    port: int
    ca: Path
    received: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_seen: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.tls_seen.append(session.ssl is not None)
        self.received.append(email.message_from_bytes(envelope.original_content or b""))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"relay-test-password"
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # the server answers 235 or 535


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp_digest(relay: Relay, tmp_path: Path) -> str:
    return f"""
[digest]
transport = "smtp"
sender = "sweeper@northwick.example"
recipients = ["dpo@northwick.example", "deputy.dpo@northwick.example"]
smtp_host = "{relay.host}"
smtp_port = {relay.port}
smtp_username = "sweeper-relay"
reports_dir = "{tmp_path}"
"""
