"""Building the azure-identity credential for the configured sign-in method.

:class:`SignIn` is what signing in needs, and no more: the endpoints, the method and the
ids (the settings build one, see ``Settings.sign_in``). Secrets are read from the
environment at this moment only and handed to azure-identity; they are never stored in a
``SignIn``, the settings, a log or a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

from sweeper.errors import ConfigError
from sweeper.graph.endpoints import SignIn
from sweeper.graph.gateway import GraphGateway


def make_credential(sign_in: SignIn, env: Mapping[str, str]) -> AsyncTokenCredential:
    """An async credential for ``sign_in.method``; the settings were checked when loaded.

    A credential azure-identity refuses to build (an unreadable certificate, a key of the
    wrong kind) is a ConfigError naming the variable.
    """
    try:
        return _credential(sign_in, env)
    except (ValueError, OSError) as exc:
        setting = (
            "AZURE_CLIENT_CERTIFICATE_PATH" if sign_in.method == "certificate" else "graph.auth"
        )
        raise ConfigError(setting, str(exc).strip().splitlines()[0]) from None


def _credential(sign_in: SignIn, env: Mapping[str, str]) -> AsyncTokenCredential:
    # A custom authority (a sovereign deployment, or the local Graph) is not known to
    # Microsoft's public instance discovery, so MSAL must not ask it.
    custom = sign_in.custom
    common: dict[str, Any] = {
        "authority": sign_in.authority_host,
        "disable_instance_discovery": custom,
    }
    if sign_in.ca_bundle is not None:
        common["connection_verify"] = str(sign_in.ca_bundle)
    if sign_in.method == "client_secret":
        return ClientSecretCredential(
            sign_in.tenant_id or "",
            sign_in.client_id or "",
            env["AZURE_CLIENT_SECRET"],
            **common,
        )
    if sign_in.method == "certificate":
        return CertificateCredential(
            sign_in.tenant_id or "",
            sign_in.client_id or "",
            certificate_path=env["AZURE_CLIENT_CERTIFICATE_PATH"],
            password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
            **common,
        )
    if sign_in.method == "managed_identity":
        extra = {k: v for k, v in common.items() if k == "connection_verify"}
        return ManagedIdentityCredential(client_id=sign_in.client_id, **extra)
    return DefaultAzureCredential(
        managed_identity_client_id=sign_in.client_id,
        exclude_interactive_browser_credential=True,
        **common,
    )


def gateway_for(sign_in: SignIn, env: Mapping[str, str]) -> GraphGateway:
    """The Graph gateway for these settings, signed in the configured way. Use ``async with``."""
    ca_bundle = str(sign_in.ca_bundle) if sign_in.ca_bundle else None
    return GraphGateway(
        sign_in.graph_url,
        sign_in.scope,
        make_credential(sign_in, env),
        ca_bundle=ca_bundle,
        timeout=sign_in.timeout,
    )
