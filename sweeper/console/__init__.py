"""The DPO's web console (``sweeper console``): incidents in a browser, signed in with
Entra ID, every look at personal data recorded (:mod:`sweeper.store.audit`)."""
