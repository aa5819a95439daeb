"""The Graph ring: Microsoft Graph and Entra ID, and the one outbound HTTP configuration.

What is sent elsewhere (webhooks, Azure Monitor) is the outbound ring, :mod:`sweeper.outbound`.

- :mod:`.gateway`: :class:`~.gateway.GraphGateway`, every Graph call sweeper makes, paging
  and throttling included; answers are plain data or one of :mod:`sweeper.errors`.
- :mod:`.answers`: Graph's answers read (pages, JSON batches, users), its errors mapped, and
  the Retry-After arithmetic.
- :mod:`.requests`: the fields sweeper selects, its URLs and the SDK's request builders.
- :mod:`.transport`: the transport that counts round trips and throttling, and the
  credential that renews a refused token.
- :mod:`.slots`: the reading slots, none held while a mailbox is throttled.
- :mod:`.signin`: the azure-identity credential for a :class:`~.signin.SignIn`, and the
  gateway signed in with it.
- :mod:`.network`: the one outbound HTTP configuration (proxy, CA bundle, timeouts) every
  client takes, and answers read whole under one deadline and a decompressed-size bound.
- :mod:`.origins`: the scheme, host and port two URLs must share for one token to serve both.
- :mod:`.permissions`: the one list of the Graph permissions sweeper asks for.
- :mod:`.paging`: the bounds of every paging loop (a repeated link, another origin, a page
  cap).
"""
