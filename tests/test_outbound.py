"""Issue 24, item 19: one outbound HTTP configuration for every client sweeper runs.

A real forward proxy on loopback (``forward_proxy.py``) is named in ``HTTP_PROXY`` and
``HTTPS_PROXY`` (``NO_PROXY`` empty, so that even 127.0.0.1 goes through it, as on a
proxy-only network): the sweep's sign-in, user and domain listings and page reads, an alert
to a webhook, the Sentinel export and the console's people sign-in all go through it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from support.forward_proxy import ForwardProxy
from support.receivers import Receiver
from support.runner import Sweeper, write_config

from sweeper.graph.network import Outbound
from sweeper.graph.origins import origin
from sweeper.graph.people import PeopleSignIn
from sweeper.settings import load_settings

SECRET = "whsec_" + "c3dlZXBlci1wcm94eS10ZXN0LWtleS1vZi0zMi1ieXRlcyE="


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


def through(sweeper: Sweeper, proxy: ForwardProxy, **extra: str) -> dict[str, str]:
    return sweeper.env(
        HTTP_PROXY=proxy.url,
        HTTPS_PROXY=proxy.url,
        http_proxy=proxy.url,
        https_proxy=proxy.url,
        NO_PROXY="",
        no_proxy="",
        **extra,
    )


def _host_port(url: str) -> str:
    _, host, port = origin(url)
    return f"{host}:{port}"


def test_every_graph_request_of_a_sweep_and_its_sign_in_go_through_the_proxy(
    sweeper: Sweeper, proxy: ForwardProxy
) -> None:
    fake = sweeper.fake
    text = sweeper.config.read_text().replace("[sweep]\n", "[sweep]\nbatch = false\n")
    write_config(sweeper.config, text)

    result = sweeper.run("sweep", env=through(sweeper, proxy))

    assert result.exit_code == 0, result.output
    graph = fake.graph_url.removesuffix("/v1.0")
    proxied = Counter(
        re.sub(r"/{2,}", "/", t.removeprefix(graph).partition("?")[0])
        for t in proxy.targets("GET")
        if t.startswith(graph + "/")
    )
    answered = Counter(e.path for e in fake.log)
    assert proxied == answered  # every request the local Graph answered came by the proxy
    assert {"/v1.0/users", "/v1.0/domains"} <= set(proxied)
    assert any(p.endswith("/mailFolders/sentitems/messages") for p in proxied)
    assert _host_port(fake.authority) in proxy.targets("CONNECT")  # the token, tunnelled


def test_an_alert_to_a_webhook_goes_through_the_proxy(
    sweeper: Sweeper, proxy: ForwardProxy
) -> None:
    with Receiver(secret=SECRET) as hook:
        text = sweeper.config.read_text() + f'\n[alerts]\nwebhook_url = "{hook.url("/hook")}"\n'
        write_config(sweeper.config, text)

        result = sweeper.run(
            "alerts", "test", env=through(sweeper, proxy, SWEEPER_WEBHOOK_SECRET=SECRET)
        )

    assert result.exit_code == 0, result.output
    assert len(hook.deliveries) == 1
    assert proxy.targets("POST") == [hook.url("/hook")]


def test_the_sentinel_export_goes_through_the_proxy(sweeper: Sweeper, proxy: ForwardProxy) -> None:
    fake = sweeper.fake
    assert sweeper.run("sweep").exit_code == 0  # straight to the local Graph: no proxy yet
    section = f'\n[siem]\nendpoint = "{fake.ingestion_url}"\nrule_id = "{fake.rule_id}"\n'
    write_config(sweeper.config, sweeper.config.read_text() + section)

    result = sweeper.run("siem", "send", env=through(sweeper, proxy))

    assert result.exit_code == 0, result.output
    assert fake.ingested  # records arrived
    assert _host_port(fake.ingestion_url) in proxy.targets("CONNECT")


def test_the_consoles_people_sign_in_goes_through_the_proxy(
    sweeper: Sweeper, proxy: ForwardProxy
) -> None:
    fake = sweeper.fake
    callback = "http://localhost:8400/auth/callback"
    fake.redirect_uris = [callback]
    env = through(sweeper, proxy)
    settings = load_settings(sweeper.config, env)

    flow = PeopleSignIn(settings.sign_in, env, callback).start()

    assert flow["auth_uri"].startswith(fake.authority)
    assert _host_port(fake.authority) in proxy.targets("CONNECT")  # MSAL's discovery


@pytest.mark.parametrize(
    ("url", "proxied"),
    [
        ("https://graph.microsoft.com/v1.0/users", True),
        ("https://graph.internal.example/v1.0", False),  # NO_PROXY names it
        ("https://eu.graph.internal.example/v1.0", False),  # a host under a NO_PROXY domain
        ("https://login.microsoftonline.com:8443/x", False),  # NO_PROXY names it on this port
        ("https://login.microsoftonline.com/x", True),  # ... and only on that port
        ("http://127.0.0.1:8080/hook", True),  # not named: loopback too goes through it
        ("https://10.20.30.40/v1.0", False),  # an address in a NO_PROXY network
        ("https://[fd00::5]/x", False),  # and in an IPv6 one
        ("https://10.0.0.0.example/x", True),  # a host name is in no network
    ],
)
def test_no_proxy_exempts_the_hosts_and_ports_it_names_for_every_client(
    url: str, proxied: bool
) -> None:
    env = {
        "HTTPS_PROXY": "http://proxy.corp.example:3128",
        "HTTP_PROXY": "http://proxy.corp.example:3128",
        "NO_PROXY": ".graph.internal.example, graph.internal.example,"
        "login.microsoftonline.com:8443, 10.20.0.0/16, fd00::/8, not-a-network/99",
    }
    outbound = Outbound.of(env)

    want = "http://proxy.corp.example:3128" if proxied else None
    assert outbound.proxy_for(url) == want
    assert bool(outbound.azure_options(url).get("proxies")) is proxied
    assert bool(outbound.requests_proxies(url)) is proxied
