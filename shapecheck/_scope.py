"""Findings made since a mark: what one test (pytest) or one notebook cell recorded.

The recorder's logs are process-wide and aggregated per site and signature.  A
mark notes each record's count and each site's drift entries at one moment;
`findings_since` judges only the records hit after it.  Marking is O(records),
never per operation: the hooks stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _recorder, _rules
from ._events import Record, SiteLog
from ._report import Finding


class Mark:
    """The recorder's counts at one moment."""

    __slots__ = ("counts", "drift")

    def __init__(self, counts: dict[int, int], drift: dict[int, int]):
        self.counts = counts  # id(record) -> its count then (records live as long as the process)
        self.drift = drift  # site id -> how many shape-drift entries its log had then

    def hit(self, rec: Record) -> bool:
        """Was this record (a signature at a site) run since the mark?"""
        return rec.count > self.counts.get(id(rec), 0)

    def drifted(self, log: SiteLog) -> bool:
        """Did this site record a new shape drift since the mark?"""
        return len(log.drift) > self.drift.get(log.site.id, 0)


def mark() -> Mark:
    logs = _recorder.snapshot()
    return Mark({id(rec): rec.count for log in logs for rec in log.records},
                {log.site.id: len(log.drift) for log in logs if log.drift})


def findings_since(m: Mark, ignore: Iterable[str] = ()) -> list[Finding]:
    """The findings made by what ran after `m` (all severities; callers filter)."""
    return _rules.run(_recorder.snapshot(), ignore, since=m)


def hit_sites(m: Mark) -> set[int]:
    """Ids of the sites that recorded anything since `m`."""
    return {log.site.id for log in _recorder.snapshot() if any(m.hit(r) for r in log.records)}
