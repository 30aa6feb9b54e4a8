"""Who answers for a task's failures, and its runbook: the decorator's, else the app's map.

``app.conf.notifier_owners = {"shop.imports.*": "team-imports"}`` and
``app.conf.notifier_runbooks`` map task-name patterns (``fnmatch``, case-sensitive) to an
owner or a runbook URL; an exact name beats a pattern, and a longer pattern a shorter one.
Read when a task fails (never per success), so an app configured late is read as configured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from notifier.validation import runbook_problem

from .decorators import JobSpec

logger = logging.getLogger("notifier.worker")


def ownership(task: Any, spec: JobSpec, task_name: str) -> tuple[str | None, str | None]:
    """The ``owner`` and ``runbook`` of a failure of ``task`` (None where nothing says)."""
    conf = getattr(getattr(task, "app", None), "conf", None)
    owner = spec.owner or _lookup(conf, "notifier_owners", task_name)
    runbook = spec.runbook or _lookup(conf, "notifier_runbooks", task_name)
    if runbook is not None and runbook_problem(runbook):
        logger.warning("notifier: the runbook of %s is not an http(s) URL; left out", task_name)
        runbook = None
    return owner, runbook


def _lookup(conf: Any, setting: str, task_name: str) -> str | None:
    mapping = conf.get(setting) if conf is not None else None
    if not isinstance(mapping, Mapping):
        return None
    if isinstance(mapping.get(task_name), str):
        return str(mapping[task_name])
    matches = [
        (len(pattern), str(value))
        for pattern, value in mapping.items()
        if isinstance(pattern, str) and isinstance(value, str) and fnmatchcase(task_name, pattern)
    ]
    return max(matches)[1] if matches else None
