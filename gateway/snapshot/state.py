"""The runtime snapshot: everything the request path reads that can change while the gateway runs.

A request takes ``LiveSnapshot.current`` once and reads only that object to the end, so a change
made while it runs (a new version, a limit) reaches the next request whole, never half of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.catalog.registry import Catalog
from gateway.quotas.plan import RuleIndex


@dataclass(frozen=True, slots=True)
class Snapshot:
    number: int
    """Counts the snapshots this process has built; each swap takes a higher one."""
    generation: int
    """The control plane's generation (SQL) this snapshot holds every change up to."""
    built_at: datetime
    catalog: Catalog
    """Model routes (active versions and canaries), each with its backend and credentials."""
    limits: RuleIndex
    """The quota limits in force: the quotas file's, then those set through the API or the CLI."""


class LiveSnapshot:
    """The one reference to the snapshot in force. Swapping it is a single assignment: a reader sees
    the old snapshot or the new one, whole."""

    def __init__(self, first: Snapshot) -> None:
        self._current = first

    @property
    def current(self) -> Snapshot:
        return self._current

    def swap(self, new: Snapshot) -> None:
        if new.number <= self._current.number:
            return  # a slower rebuild that started earlier must not undo a newer one
        self._current = new
