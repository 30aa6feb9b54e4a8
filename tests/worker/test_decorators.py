"""The decorators keep the task author's function as written, under any task flavour."""

from __future__ import annotations

import inspect

import pytest
from celery import Celery, Task, shared_task
from notifier.worker import import_job, notify_on_failure, sync_job
from notifier.worker.decorators import JobSpec, spec_of, task_arguments


class Base(Task):  # type: ignore[misc]
    pass


def test_name_signature_and_docstring_are_kept() -> None:
    app = Celery("d", set_as_current=False)

    @app.task(bind=True, base=Base, autoretry_for=(OSError,), max_retries=2, shared=False)
    @import_job(store_id="shop", job_id=lambda a: f"job-{a['shop']}")
    def load(self: Task, shop: int, path: str = "x.csv") -> int:
        """Load a file."""
        return shop

    @shared_task(name="decorators.pull")
    @sync_job
    def pull(store_id: int) -> None:
        """Pull orders."""

    later = Celery("d2", set_as_current=False)  # shared tasks reach apps finalized later
    later.finalize()
    shared = later.tasks["decorators.pull"]

    assert load.name.endswith(".load") and load.__doc__ == "Load a file."
    assert list(inspect.signature(load.run).parameters) == ["shop", "path"]
    assert isinstance(load, Base) and load.max_retries == 2
    spec = spec_of(load)
    assert isinstance(spec, JobSpec) and spec.kind == "import"
    arguments = task_arguments(load, (5,), {"path": "a.csv"})
    assert arguments == {"shop": 5, "path": "a.csv"}
    assert spec.resolve(spec.job_id, arguments) == "job-5"
    assert shared.__doc__ == "Pull orders."
    shared_spec = spec_of(shared)
    assert shared_spec is not None and shared_spec.kind == "sync"


def test_a_decorator_above_the_task_decorator_says_where_it_belongs() -> None:
    app = Celery("d", set_as_current=False)
    with pytest.raises(TypeError, match=r"below @app\.task"):

        @notify_on_failure(title="x")
        @app.task(shared=False)
        def job() -> None:
            """A job."""
