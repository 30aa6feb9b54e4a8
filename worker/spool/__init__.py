"""The spool between a failing task and the database, and the drainer that empties it.

A task's failure report is put in a spool (``folder``: a local folder of one-event files;
``stream``: a Redis stream), tagged with its worker's database; a drainer (``drain``, run
by ``drainer`` as a process beside a prefork worker) records batches of them and lets go
of each only once its transaction committed. ``choice`` picks the spool an app's settings
name; ``bypass`` holds what no spool takes.
"""

from __future__ import annotations

from .choice import configured_spool as configured_spool
from .choice import database_tag as database_tag
from .contract import Claim as Claim
from .contract import EventSpool as EventSpool
from .contract import SpoolUnavailable as SpoolUnavailable
from .contract import read_report as read_report
from .drain import BatchRecorder as BatchRecorder
from .drain import Drainer as Drainer
from .drain import NotReady as NotReady
from .drain import Recorder as Recorder
from .folder import Spool as Spool
from .stream import StreamSpool as StreamSpool

__all__ = [
    "BatchRecorder",
    "Claim",
    "Drainer",
    "EventSpool",
    "NotReady",
    "Recorder",
    "Spool",
    "SpoolUnavailable",
    "StreamSpool",
    "configured_spool",
    "database_tag",
    "read_report",
]
