"""The Graph ring: the only code that knows HTTP, the Microsoft Graph SDK and sign-in.

- :mod:`.gateway`: :class:`~.gateway.GraphGateway`, every Graph call sweeper makes, paging
  and throttling included; answers are plain data or one of :mod:`sweeper.errors`.
- :mod:`.answers`: Graph's answers read (pages, JSON batches, users), its errors mapped, and
  the Retry-After arithmetic.
- :mod:`.requests`: the fields sweeper selects, its URLs and the SDK's request builders.
- :mod:`.transport`: the transport that counts round trips and throttling, and the
  credential that renews a refused token.
- :mod:`.slots`: the reading slots, none held while a mailbox is throttled.
- :mod:`.outbound`: alerts posted to webhooks (Teams Workflows, Standard Webhooks), with
  retries.
- :mod:`.webhooks`: a webhook's URL and signing secret checked, the Standard Webhooks
  signature; no HTTP, so the settings can use it without loading httpx.
- :mod:`.signin`: the azure-identity credential for a :class:`~.signin.SignIn`, and the
  gateway signed in with it.
- :mod:`.ingestion`: records to Azure Monitor's Logs Ingestion API (Microsoft Sentinel).
- :mod:`.network`: the one outbound HTTP configuration (proxy, CA bundle, timeouts) every
  client takes, and answers read whole under one deadline and a decompressed-size bound.
- :mod:`.paging`: the bounds of every paging loop (a repeated link, another origin, a page
  cap).
"""
