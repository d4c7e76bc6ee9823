"""Fault injection for tests: make a chosen trial fail at a chosen point, in a real study.

A test sets the environment variable ``POLYTASK_FAULT`` before Ray starts (Ray's workers inherit
the driver's environment); this module is the one place that reads it. Unset (always, outside
tests), nothing happens. The value is one or more faults separated by ``;``, each
``raise:<run name>:<epoch>[:<marker file>]``:

- the trial whose run is ``<run name>`` (``equal/seed0``) raises :class:`InjectedFault` when it
  is about to train an epoch after epoch ``<epoch>``, i.e. after epoch ``<epoch>``'s report and
  checkpoint; a retry that resumes from that checkpoint raises again (a fault that never heals);
- with a marker file, only while the file exists: the fault deletes it as it fires, so it fires
  once (a transient fault, healed by the retry).

tests/integration/test_faults.py uses it (docs/reliability-faults.md).
"""

from __future__ import annotations

import os
from pathlib import Path

FAULT_ENV = "POLYTASK_FAULT"


class InjectedFault(RuntimeError):
    """The error a fault raises (an ordinary exception: Tune retries the trial)."""


def before_epoch(run_name: str, epoch: int) -> None:
    """Called by the training loop before it trains ``epoch`` (1-based)."""
    value = os.environ.get(FAULT_ENV)
    if not value:
        return
    for fault in filter(None, (part.strip() for part in value.split(";"))):
        kind, name, after, *marker = fault.split(":", 3)
        if kind != "raise":
            raise ValueError(f"{FAULT_ENV}: unknown fault {kind!r} in {fault!r}; known: raise")
        if name != run_name or epoch <= int(after):
            continue
        if marker:
            try:
                Path(marker[0]).unlink()
            except FileNotFoundError:
                continue  # fired already: healed
        raise InjectedFault(f"injected fault ({FAULT_ENV}) in {run_name} before epoch {epoch}")
