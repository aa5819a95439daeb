"""Building the azure-identity credential for the configured sign-in method.

Secrets are read from the environment at this moment only and handed to azure-identity;
they are never stored in :class:`~sweeper.config.Settings`, logged or written anywhere.
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

from .config import Settings
from .errors import ConfigError
from .graph import GraphGateway


def make_credential(settings: Settings, env: Mapping[str, str]) -> AsyncTokenCredential:
    """An async credential for ``settings.auth``; the settings were checked by load_settings.

    A credential azure-identity refuses to build (an unreadable certificate, a key of the
    wrong kind) is a ConfigError naming the variable.
    """
    try:
        return _credential(settings, env)
    except (ValueError, OSError) as exc:
        setting = (
            "AZURE_CLIENT_CERTIFICATE_PATH" if settings.auth == "certificate" else "graph.auth"
        )
        raise ConfigError(setting, str(exc).strip().splitlines()[0]) from None


def _credential(settings: Settings, env: Mapping[str, str]) -> AsyncTokenCredential:
    # A custom authority (a sovereign deployment, or the local Graph) is not known to
    # Microsoft's public instance discovery, so MSAL must not ask it.
    custom = settings.cloud == "custom"
    common: dict[str, Any] = {
        "authority": settings.authority_host,
        "disable_instance_discovery": custom,
    }
    if settings.ca_bundle is not None:
        common["connection_verify"] = str(settings.ca_bundle)
    if settings.auth == "client_secret":
        return ClientSecretCredential(
            settings.tenant_id or "",
            settings.client_id or "",
            env["AZURE_CLIENT_SECRET"],
            **common,
        )
    if settings.auth == "certificate":
        return CertificateCredential(
            settings.tenant_id or "",
            settings.client_id or "",
            certificate_path=env["AZURE_CLIENT_CERTIFICATE_PATH"],
            password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
            **common,
        )
    if settings.auth == "managed_identity":
        extra = {k: v for k, v in common.items() if k == "connection_verify"}
        return ManagedIdentityCredential(client_id=settings.client_id, **extra)
    return DefaultAzureCredential(
        managed_identity_client_id=settings.client_id,
        exclude_interactive_browser_credential=True,
        **common,
    )


def gateway_for(settings: Settings, env: Mapping[str, str]) -> GraphGateway:
    """The Graph gateway for these settings, signed in the configured way. Use ``async with``."""
    ca_bundle = str(settings.ca_bundle) if settings.ca_bundle else None
    return GraphGateway(
        settings.graph_url,
        settings.graph_scope,
        make_credential(settings, env),
        ca_bundle=ca_bundle,
        timeout=settings.timeout,
    )
