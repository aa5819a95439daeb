"""The commands ring: the glue each command runs, over the rings below, and the settings.

- :mod:`.settings`: the TOML file and the environment, checked once (``Settings``).
- :mod:`.sweep`: read every mailbox's window, classify, store, group.
- :mod:`.nightly`: sweep, digest, purge, one run at a time.
- :mod:`.lookup`: every copy and batch of a reported message, in one incident.
- :mod:`.reclassify`: judge stored findings again under the current settings.
- :mod:`.digest` and :mod:`.deliver`: build, write and deliver the DPO's digest.
- :mod:`.doctor`: the administrator's preflight.
- :mod:`.schedule`: the cron schedule of ``sweeper schedule``.
- :mod:`.siem`: the Microsoft Sentinel export, after each run and ``sweeper siem send``.
- :mod:`.aftersweep`: what follows every sweep: its alerts, then the run to Sentinel.
- :mod:`.service`: ``sweeper schedule``'s loop and the jobs it runs.
- :mod:`.database`: the database a command opens, set right after runs that died.
- :mod:`.reported`, :mod:`.preflight`, :mod:`.incidentfiles`: ``lookup``'s sign-in, the
  ``doctor`` and ``alerts test`` tries, an incident's export and worksheet.
"""
