"""The rules ring: sweeper's judgement as pure functions over plain data, no I/O.

- :mod:`.classify`: what a message's visible recipients expose (external, unique, how many).
- :mod:`.severity`: how severe an exposure is, with the reason in words.
- :mod:`.allow`: allowlist rules.
- :mod:`.incidents`: which findings are one incident, and its figures.
- :mod:`.triage`: the triage workflow's statuses and steps.
- :mod:`.digest`: the digest's content as data, and its verdict.
"""
