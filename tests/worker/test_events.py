"""From Celery facts to events: what ends up stored for hostile or unusual failures."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from notifier.worker.decorators import import_job, notify_on_failure, sync_job
from notifier.worker.events import failure_report, returned_reports
from notifier.worker.redaction import redact_text
from notifier.worker.spool import Spool, read_report
from sqlalchemy import select

from notifier import Database, FailureReport, record_failures
from notifier.models import AdminNotification, PlatformAlert


def _task(decorator: Any, name: str) -> Any:
    @decorator
    def run(store_id: int, since: str = "") -> None:
        """A job."""

    return SimpleNamespace(name=name, run=run, throws=())


def test_long_non_ascii_failure_is_recorded_not_dropped(database: Database) -> None:
    task = _task(import_job(store_id="store_id"), "shop.import")
    message = "Ошибка разбора строки " * 120  # about 2,600 Cyrillic characters
    event = failure_report(
        task,
        task_id="t-1",
        exc=ValueError(message),
        traceback_text="Traceback (most recent call last):\n" + "  Строка кода\n" * 2000,
        args=(5,),
        kwargs={},
        attempts=1,
        all_tasks=False,
    )
    assert event is not None
    assert record_batch(database, [event], cooldown=timedelta(minutes=15)) == [True]
    with database.session_scope() as db:
        note = db.scalars(select(AdminNotification)).one()
        assert note.store_id == 5 and "Ошибка" in note.message
        assert db.scalars(select(PlatformAlert)).one().occurrence_count == 1


def test_order_exceptions_with_the_same_or_no_number_each_notify(database: Database) -> None:
    task = _task(sync_job(store_id="store_id"), "shop.sync")
    result = {
        "order_exceptions": [
            {"unmatched_products": ["A"]},
            {"unmatched_products": ["B"]},
            {"order_number": "LS-1", "unmatched_products": ["C"]},
            {"order_number": "LS-1", "unmatched_products": ["D"]},
        ]
    }
    events = returned_reports(
        task, task_id="t-2", result=result, args=(3,), kwargs={}, default_threshold=lambda: 5
    )
    assert len({e.key for e in events}) == 4
    record_batch(database, events, cooldown=timedelta(minutes=15))
    # reported twice (a redelivery): still four
    record_batch(database, events, cooldown=timedelta(minutes=15))
    with database.session_scope() as db:
        assert len(db.scalars(select(AdminNotification)).all()) == 4


def test_secrets_in_messages_and_urls_are_redacted() -> None:
    url = "503 for url: https://api.example/orders?since=1&api_key=S3CRET&page=2"
    assert (
        redact_text(url)
        == "503 for url: https://api.example/orders?since=1&api_key=[redacted]&page=2"
    )
    assert (
        redact_text("connect postgresql://app:hunter2@db/x")
        == "connect postgresql://[redacted]@db/x"
    )
    assert redact_text("Authorization: Bearer abc.def") == "Authorization: [redacted]"
    assert redact_text("X-Auth-Token=zz; user=bob") == "X-Auth-Token=[redacted]; user=bob"
    assert redact_text("3 tokens left") == "3 tokens left"
    task = _task(import_job(store_id="store_id"), "shop.import")
    event = failure_report(
        task,
        task_id="t-3",
        exc=RuntimeError("GET https://u:pw@api.example/x?token=T0K failed"),
        traceback_text='File "x.py", line 1\n  call(password="pw1")\nRuntimeError: token=T0K',
        args=(1,),
        kwargs={},
        attempts=1,
        all_tasks=False,
    )
    assert event is not None
    stored = event.to_json()
    assert "T0K" not in stored and "u:pw@" not in stored and "pw1" not in stored


def test_spool_survives_its_folder_being_removed(tmp_path: Path) -> None:
    task = _task(import_job(store_id="store_id"), "shop.import")
    event = failure_report(
        task,
        task_id="t-4",
        exc=ValueError("x"),
        traceback_text="",
        args=(1,),
        kwargs={},
        attempts=1,
        all_tasks=False,
    )
    assert event is not None
    spool = Spool(tmp_path / "spool")
    spool.put(event)
    shutil.rmtree(tmp_path / "spool")
    spool.put(event)
    assert spool.stats()[0] == 1


def record_batch(database: Database, reports: list[FailureReport], **kwargs: Any) -> list[bool]:
    """Record ``reports`` in one transaction, as the drainer does."""
    with database.session_scope() as db:
        return record_failures(db, reports, **kwargs)


def test_spool_files_of_the_previous_format_are_recorded(
    database: Database, tmp_path: Path
) -> None:
    """A worker upgraded with files pending from the version before failure reports."""
    meta = {
        "event": "failure",
        "task_name": "shop.import",
        "task_id": "t1",
        "exception_class": "ValueError",
        "attempts": 2,
        "arguments": {"store_id": 5},
        "traceback": "tb",
        "alert_fingerprint": "celery:shop.import:ValueError",
    }
    alert = {
        "alert_type": "system",
        "severity": "error",
        "title": "shop.import failed: ValueError",
        "fingerprint": "celery:shop.import:ValueError",
        "description": "ValueError: x",
        "affected_stores": [5],
        "affected_systems": ["celery"],
        "metadata": {},
    }
    old = [
        {
            "key": "celery:t1:failure",
            "action": "notify_import_failure",
            "params": {
                "store_name": "Acme",
                "job_id": "t1",
                "error_message": "ValueError: x",
                "store_id": 5,
                "extra": meta,
            },
            "alert": alert,
            "occurred_at": 1764000000.5,
        },
        {
            "key": "celery:t2:failure",
            "action": "notify_critical_error",
            "params": {
                "error_type": "task plain failed",
                "error_message": "ZeroDivisionError: plain",
                "details": {**meta, "task_id": "t2", "task_name": "plain"},
            },
            "alert": {**alert, "fingerprint": "celery:plain:ZeroDivisionError"},
            "occurred_at": 1764000001.0,
        },
    ]
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    for n, document in enumerate(old):
        (spool.directory / f"{n:020d}-1-00000000.json").write_text(json.dumps(document))
    claims = spool.claim(10)
    reports = [c.event for c in claims if c.event is not None]
    assert len(reports) == 2
    assert record_batch(database, reports, cooldown=timedelta(minutes=15)) == [True, True]
    with database.session_scope() as db:
        notes = {n.dedup_key: n for n in db.scalars(select(AdminNotification))}
    assert notes["celery:t1:failure"].type == "import_failure"
    assert notes["celery:t1:failure"].store_id == 5
    assert notes["celery:t1:failure"].notification_metadata["attempts"] == 2
    assert notes["celery:t2:failure"].type == "critical_error"
    for claim in claims:
        spool.release(claim)


# -- whatever a task holds, its failure becomes a storable report ---------------------------


class _Hostile:
    """An argument whose ``str`` and ``repr`` both raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _BadRepr:
    """An argument whose ``repr`` raises, or says something that is not text UTF-8 can hold."""

    def __init__(self, said: str | None) -> None:
        self.said = said

    def __repr__(self) -> str:
        if self.said is None:
            raise ValueError("no repr")
        return self.said


class _SneakyStr(str):
    """A str whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


class _BrokenMapping(Mapping[str, Any]):
    """A mapping that cannot be walked."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Any:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


class _UnprintableError(Exception):
    """An exception whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


class _SurrogateError(Exception):
    """An exception whose ``__str__`` says text with lone surrogates."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "caf\udce9"


def _recursive(kind: str) -> Any:
    if kind == "list":
        loop: list[Any] = [1]
        loop.append(loop)
        return loop
    looped: dict[str, Any] = {"a": 1}
    looped["self"] = looped
    return looped


_SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
_TEXT = st.text(st.characters(exclude_categories=()) | _SURROGATE, max_size=40)
_LEAVES = (
    _TEXT
    | st.binary(max_size=20)
    | st.binary(max_size=20).map(os.fsdecode)  # a file name that is not UTF-8
    | st.integers()
    | st.integers(4400, 5000).map(lambda digits: 10**digits)  # too long for str()
    | st.floats()
    | st.none()
    | st.booleans()
    | st.builds(_Hostile)
    | st.builds(_BadRepr, st.none() | _TEXT)
    | _TEXT.map(_SneakyStr)
    | st.builds(_BrokenMapping)
    | st.sampled_from(["list", "dict"]).map(_recursive)
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | _TEXT, max_size=3)
        | st.dictionaries(_TEXT | st.integers() | st.builds(_Hostile), inner, max_size=4)
    ),
    max_leaves=12,
)
_EXCEPTIONS = (
    st.builds(ValueError, _VALUES)
    | st.builds(_UnprintableError)
    | st.builds(_SurrogateError, _TEXT)
    | st.builds(RuntimeError, st.builds(_Hostile))
)


def _raising_store_name(arguments: Mapping[str, Any]) -> Any:
    raise LookupError("no store name in these arguments")


_TASKS = st.sampled_from(
    [
        _task(import_job(store_id="store_id"), "shop.import"),
        _task(sync_job(store_id="store_id", store_name=_raising_store_name), "shop.sync"),
        _task(sync_job(store_name="since"), "shop.sync"),
        _task(notify_on_failure(title="{task_name} {nope.x}", store_id="store_id"), "nightly"),
    ]
)


def _assert_storable(database: Database, report: FailureReport | None) -> None:
    """The report exists, is valid UTF-8 JSON, reads back, and records one notification."""
    assert report is not None
    text = report.to_json()
    text.encode("utf-8")  # strict: a lone surrogate raises here

    def refuse(constant: str) -> None:  # NaN and Infinity: valid Python, not JSON
        raise AssertionError(f"{constant} in {text}")

    json.loads(text, parse_constant=refuse)
    assert read_report(text).key == report.key
    assert record_batch(database, [report], cooldown=timedelta(0)) == [True]
    with database.session_scope() as db:
        assert db.scalars(
            select(AdminNotification).where(AdminNotification.dedup_key == report.key)
        ).one()


def test_any_arguments_and_any_exception_make_one_storable_report(database: Database) -> None:
    """Lone surrogates, bytes, recursive and hostile objects: never a report lost."""

    @settings(max_examples=100, deadline=None, database=None)
    @given(
        task=_TASKS,
        args=st.lists(_VALUES, max_size=3),
        kwargs=st.dictionaries(_TEXT | st.just("store_id"), _VALUES, max_size=3),
        exc=_EXCEPTIONS,
        traceback_text=_TEXT,
    )
    def check(
        task: Any, args: list[Any], kwargs: dict[str, Any], exc: Exception, traceback_text: str
    ) -> None:
        report = failure_report(
            task,
            task_id=str(uuid.uuid4()),
            exc=exc,
            traceback_text=traceback_text,
            args=args,
            kwargs=kwargs,
            attempts=1,
            all_tasks=False,
        )
        _assert_storable(database, report)

    check()


def test_any_returned_errors_make_storable_reports(database: Database) -> None:
    """An import's row errors or a sync's order exceptions holding anything at all."""

    @settings(max_examples=40, deadline=None, database=None)
    @given(
        errors=st.lists(_VALUES | st.fixed_dictionaries({"line": _VALUES, "reason": _VALUES})),
        orders=st.lists(
            st.fixed_dictionaries(
                {"order_number": _VALUES, "unmatched_products": st.lists(_VALUES, max_size=3)}
            ),
            min_size=1,
            max_size=3,
        ),
        args=st.lists(_VALUES, max_size=2),
    )
    def check(errors: list[Any], orders: list[Any], args: list[Any]) -> None:
        task_id = str(uuid.uuid4())
        imported = returned_reports(
            _task(import_job(error_threshold=0), "shop.import"),
            task_id=task_id,
            result={"errors": errors},
            args=args,
            kwargs={},
            default_threshold=lambda: 5,
        )
        synced = returned_reports(
            _task(sync_job(store_name=_raising_store_name), "shop.sync"),
            task_id=task_id,
            result={"order_exceptions": orders},
            args=args,
            kwargs={},
            default_threshold=lambda: 5,
        )
        assert len(imported) == 1 and len(synced) == len(orders)
        for report in imported + synced:
            _assert_storable(database, report)

    check()


def test_a_lost_pool_process_whose_exit_the_pool_missed_is_named_as_most_likely_killed() -> None:
    """billiard says "exitcode 0" when it cleaned the process up before learning its job."""
    from billiard.exceptions import WorkerLostError

    report = failure_report(
        _task(import_job(store_id="store_id"), "shop.import"),
        task_id="t-lost",
        exc=WorkerLostError("Worker exited prematurely: exitcode 0 Job: 3."),
        traceback_text="",
        args=(1,),
        kwargs={},
        attempts=1,
        all_tasks=False,
    )
    assert report is not None
    assert report.message.startswith("The worker process running this task died before")
    assert "the pool did not learn how" in report.message
    assert "SIGKILL (signal 9) by the kernel's out-of-memory killer" in report.message
    assert report.message.endswith(
        "Celery reported WorkerLostError: Worker exited prematurely: exitcode 0 Job: 3."
    )
