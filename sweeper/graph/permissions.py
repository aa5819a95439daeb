"""The Microsoft Graph application permissions sweeper asks for: the one list.

``sweeper doctor`` checks the access token's roles against it, and the app registration
(``deploy/app-registration/create-app.sh``) and the READMEs that list the permissions name
exactly these (``tests/test_permissions.py`` reads them). :data:`BROADER` names the grants
that would also work but reach further than sweeper needs, for doctor to warn about.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    name: str
    why: str  # what sweeper does with it, as doctor says
    always: bool = True  # False: only for the digest sent through Graph


MAIL_SEND = "Mail.Send"
PERMISSIONS = (
    Permission(
        "Mail.ReadBasic.All", "read Sent Items: recipients, subject and dates, never bodies"
    ),
    Permission("User.Read.All", "list the users whose mailboxes are swept"),
    Permission("Domain.Read.All", "read the verified domains that decide what is internal"),
    Permission(MAIL_SEND, "send the digest through Graph", always=False),
)
NAMES = tuple(p.name for p in PERMISSIONS)
NEEDED = {p.name: p.why for p in PERMISSIONS if p.always}
"""What every run needs; ``Mail.Send`` only when the digest goes through Graph."""

BROADER = {
    "Mail.Read": "reads bodies and attachments too; Mail.ReadBasic.All is enough",
    "Mail.ReadWrite": "can change and delete mail; Mail.ReadBasic.All is enough",
    "Mail.ReadBasic": "is not needed besides Mail.ReadBasic.All",
    "MailboxSettings.Read": "is not needed",
    "MailboxSettings.ReadWrite": "is not needed",
    "Directory.Read.All": "reads the whole directory; User.Read.All and Domain.Read.All are enough",
    "Directory.ReadWrite.All": "can change the directory; read permissions are enough",
    "User.ReadWrite.All": "can change users; User.Read.All is enough",
    "Domain.ReadWrite.All": "can change domains; Domain.Read.All is enough",
    "full_access_as_app": "is full Exchange (EWS) access; Graph's Mail.ReadBasic.All is enough",
}
"""Grants broader than sweeper needs, and why each is too much."""
