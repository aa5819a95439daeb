"""The presentation ring: what a reader sees, each format through its own escaping layer.

- :mod:`.escape`: the layers (CSV, terminal, Markdown, Adaptive Cards, JSON, masking).
- :mod:`.output`: tables, CSV and JSON listings of findings and incidents.
- :mod:`.render`: the template environment; the digest as HTML and plain text.
- :mod:`.response`: the people export, the breach worksheet, ``incident show``.
- :mod:`.teams`: an alert as a Teams Workflows message holding an Adaptive Card.
- :mod:`.webhook`: an alert as a webhook's JSON (the Standard Webhooks payload shape).
- :mod:`.siem`: the records Microsoft Sentinel gets, addresses masked.
"""
