"""The outbound ring: what sweeper sends out that is not Microsoft Graph.

- :mod:`.posting`: alerts posted to webhooks (Teams Workflows, Standard Webhooks), with
  retries.
- :mod:`.webhooks`: a webhook's URL and signing secret checked, the Standard Webhooks
  signature; no HTTP, so the settings can use it without loading httpx.
- :mod:`.ingestion`: records to Azure Monitor's Logs Ingestion API (Microsoft Sentinel).

It may import the base ring and the graph ring (the one outbound HTTP configuration,
:mod:`sweeper.graph.network`, and sign-in), nothing above.
"""
