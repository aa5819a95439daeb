"""Building the azure-identity credential for the configured sign-in method.

:class:`SignIn` is what signing in needs, and no more: the endpoints, the method and the
ids (the settings build one, see ``Settings.sign_in``). Secrets are read from the
environment at this moment only and handed to azure-identity; they are never stored in a
``SignIn``, the settings, a log or a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sweeper.errors import ConfigError
from sweeper.graph.endpoints import SignIn
from sweeper.graph.gateway import GraphGateway

# azure-identity (and the HTTP libraries under it) is loaded when a credential is built.
if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from sweeper.graph.network import Outbound


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
    from azure.identity.aio import (
        CertificateCredential,
        ClientSecretCredential,
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    # A custom authority (a sovereign deployment, or the local Graph) is not known to
    # Microsoft's public instance discovery, so MSAL must not ask it.
    custom = sign_in.custom
    outbound = outbound_for(sign_in, env)
    common: dict[str, Any] = {
        "authority": sign_in.authority_host,
        "disable_instance_discovery": custom,
        **outbound.azure_options(sign_in.authority_host),
    }
    # One credential, one transport: each answer from Entra ID read whole within the
    # timeout and the size bound (DefaultAzureCredential's several credentials keep
    # azure-core's own, which they would otherwise share).
    bounded = outbound.azure_async_options(sign_in.authority_host, "Entra ID's answer")
    if sign_in.method == "client_secret":
        return ClientSecretCredential(
            sign_in.tenant_id or "",
            sign_in.client_id or "",
            env["AZURE_CLIENT_SECRET"],
            **{**common, **bounded},
        )
    if sign_in.method == "certificate":
        return CertificateCredential(
            sign_in.tenant_id or "",
            sign_in.client_id or "",
            certificate_path=env["AZURE_CLIENT_CERTIFICATE_PATH"],
            password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
            **{**common, **bounded},
        )
    if sign_in.method == "managed_identity":
        endpoint = env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT") or _IMDS
        return ManagedIdentityCredential(
            client_id=sign_in.client_id,
            **outbound.azure_async_options(endpoint, "the managed identity endpoint's answer"),
        )
    return DefaultAzureCredential(
        managed_identity_client_id=sign_in.client_id,
        exclude_interactive_browser_credential=True,
        **common,
    )


_IMDS = "http://169.254.169.254/metadata/identity/oauth2/token"  # a VM's managed identity


def outbound_for(sign_in: SignIn, env: Mapping[str, str]) -> Outbound:
    """The one outbound HTTP configuration: the environment's proxy settings, the CA bundle,
    the timeout and the answer size bound of these settings."""
    from sweeper.graph.network import Outbound

    return Outbound.of(
        env,
        ca_bundle=sign_in.ca_bundle,
        timeout=sign_in.timeout,
        max_answer_bytes=sign_in.max_answer_mb * 1024 * 1024,
    )


def gateway_for(
    sign_in: SignIn, env: Mapping[str, str], credential: AsyncTokenCredential | None = None
) -> GraphGateway:
    """The Graph gateway for these settings, signed in the configured way (or with
    ``credential``, which it then closes). Use ``async with``."""
    return GraphGateway(
        sign_in.graph_url,
        sign_in.scope,
        credential or make_credential(sign_in, env),
        outbound=outbound_for(sign_in, env),
        max_pages=sign_in.max_pages,
    )
