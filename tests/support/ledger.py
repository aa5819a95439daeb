"""The fault matrix's totals (tests/test_faults.py), printed at the end of the run by conftest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FaultLedger:
    """Totals of the fault matrix (tests/test_faults.py), printed at the end of the run."""

    cases: int = 0
    faults: int = 0  # faults the local Graph actually injected
    runs: int = 0  # sweeps run with faults about, reruns included
    lost: int = 0  # findings of the fault-free run missing after the faulty one
    duplicates: int = 0  # findings, addresses or incident members stored twice


LEDGER = FaultLedger()
