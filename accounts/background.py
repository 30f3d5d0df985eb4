"""Work that follows a request without making it wait: sending mail, finishing a client block's sweep.

`run_after_commit(task)` runs `task` once the current transaction commits
(at once outside a transaction), as settings.BACKGROUND_TASKS says:

- "thread" (the default): in one daemon thread per process, so the request
  that triggered it never waits for it and never fails because of it;
- "inline": in the calling thread, right after the commit (tests, debugging);
- "cron": not at all; the management commands (`send_notifications`,
  `sweep_client_blocks`) do the work on their next run.

Every task must be safe to run twice and beside the management commands:
they are also the safety net when a process dies with work in its queue.
"""

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import close_old_connections, connection, transaction

logger = logging.getLogger(__name__)

Task = Callable[[], object]

_queue: "queue.SimpleQueue[Task]" = queue.SimpleQueue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()
_held = threading.local()


def run_after_commit(task: Task) -> None:
    transaction.on_commit(lambda: _run(task))


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Queue nothing in this thread meanwhile: for a command that does the work itself before it exits.

    A daemon thread dies with the command's process, possibly in the middle
    of a send; the command sends what its work queued instead.
    """
    _held.active = True
    try:
        yield
    finally:
        _held.active = False


def _run(task: Task) -> None:
    if getattr(_held, "active", False):
        return
    mode = settings.BACKGROUND_TASKS
    if mode == "inline":
        _run_logged(task)
    elif mode == "thread":
        _ensure_worker()
        _queue.put(task)


def _run_logged(task: Task) -> None:
    try:
        task()
    except Exception:  # noqa: BLE001 - the trigger has already succeeded; the commands retry
        logger.exception("background task %s failed; the management commands will retry", _name(task))


def _name(task: Task) -> str:
    return getattr(task, "__qualname__", None) or repr(task)


def _ensure_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="keygrant-background", daemon=True)
            _worker.start()


def _work() -> None:
    while True:
        task = _queue.get()
        close_old_connections()
        try:
            _run_logged(task)
        finally:
            # This thread's own connection: never held between tasks.
            connection.close()
