"""Change hints and the cleaner: a server's two helper threads.

Owns `Hints` (a wake-up when a name appears in new/: raw Linux inotify,
`_Hint`, else watchdog's observer; only a hint, the periodic scan is the
rule since events do not cross NFS clients) and `Cleaner` (unlinks finished
requests off the server thread).
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading
from pathlib import Path
from typing import Any, Final


class _Hint:
    """Wakes the server when a name appears in new/: Linux inotify, read raw.

    watchdog's observer holds every event back behind an IN_MOVED_FROM for up to
    half a second while it looks for the matching IN_MOVED_TO (to report a move),
    and each claim of a request is such a rename out of new/: hints came up to
    0.5 s late, measured.  A hint needs only "a name appeared" (IN_MOVED_TO,
    IN_CREATE); our own renames out of new/ are not even asked for.  Same
    methods as a watchdog observer where the server uses them.
    """

    IN_CREATE: Final = 0x100
    IN_MOVED_TO: Final = 0x80
    IN_NONBLOCK: Final = os.O_NONBLOCK
    IN_CLOEXEC: Final = os.O_CLOEXEC

    def __init__(self, wake: threading.Event) -> None:
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init1, self._add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError) as exc:
            raise OSError(f"no inotify: {exc}") from None
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._errno = ctypes.get_errno
        fd = init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self.wake = wake
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="new-hint", daemon=True)
        self._thread.start()

    def watch(self, folder: Path) -> None:
        if self._add(self.fd, os.fsencode(folder), self.IN_CREATE | self.IN_MOVED_TO) < 0:
            err = self._errno()
            raise OSError(err, os.strerror(err), str(folder))

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._stop_r in ready:
                return
            try:
                while os.read(self.fd, 65536):  # drain: one wake-up per burst
                    pass
            except OSError:
                pass  # EAGAIN: drained
            self.wake.set()

    def unschedule_all(self) -> None:
        pass

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if not self._thread.is_alive():
            for fd in (self.fd, self._stop_r, self._stop_w):
                with contextlib.suppress(OSError):
                    os.close(fd)


class Cleaner:
    """Unlinks finished requests in a thread of its own (post-commit housekeeping)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def unlink(self, path: Path) -> None:
        with self._cond:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cleaner", daemon=True)
                self._thread.start()
        self._queue.put(path)

    def _run(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued unlink is done."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)


class Hints:
    """Wake-ups on new/ of every shared disk served (see the module docstring)."""

    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake
        self._observer: Any = None

    def watch(self, folder: Path) -> None:
        """A change-event hint on new/ (local changes only; the scan covers the rest)."""
        if self._observer is None or isinstance(self._observer, _Hint):
            try:
                hint = self._observer or _Hint(self.wake)
                self._observer = hint
                hint.watch(folder)
                return
            except OSError:
                if self._observer is not None:
                    return  # e.g. out of inotify watches: the periodic scan still runs
                # no inotify here: watchdog's observer (whatever the platform has)
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        wake = self.wake

        class Hint(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                wake.set()

        try:
            if self._observer is None:
                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            self._observer.schedule(Hint(), str(folder), recursive=False)
        except OSError:
            pass  # e.g. out of inotify watches: the periodic scan still runs

    def close(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.unschedule_all()
                self._observer.stop()
                self._observer.join(2.0)
