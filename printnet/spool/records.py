"""Records a server leaves in a spool: done/ records, the accounting log,
the event log and its status (heartbeat) file.

* ``done/<id>.json`` — a finished job: the master-file entry as it ended, the
  request, outcome, reason, pages, bytes, sheets, started/finished times and
  restarts.  Written (fsynced) *before* the job leaves the master file, so a
  crash in between is resolved by the record: recovery finds it and removes
  the job instead of printing it again.
* ``done/<ctl id>.json`` — the outcome of a control request, per job.
* ``log/accounting.jsonl`` — one JSON line per finished job.  Appended under
  the master lock (O_APPEND does not serialize writers on different NFS
  clients; the lock does).
* ``log/events.log`` — one line per notable event (intake rejections, printer
  trouble, lock breaks, restarts), informational.
* ``servers/<NAME>.json`` — the *server file*: the server's status, rewritten
  atomically every cycle (`write_server_file`); its age tells stations whether the
  server is alive.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printnet.masterfile import Job
from printnet.model import clean_text, iso
from printnet.spool.layout import Spool
from printnet.spool.publish import (
    fsync_dir,
    fsync_file,
    link_new,
    sync_filesystem,
    translate,
    unlink_quietly,
    write_atomic,
    write_new,
    write_temp,
)

ACCOUNTING_FIELDS = (
    "job", "user", "station", "printer", "setup", "pages", "copies", "sheets", "bytes",
    "submitted", "started", "finished", "outcome", "restarted", "via",
)


def done_record(
    job: Job, *, outcome: str, reason: str, pages: int, sheets: int, size: int,
    started: datetime | None, finished: datetime, request: Mapping[str, Any] | None,
    server: str,
) -> dict[str, Any]:
    record_job = job.to_json()
    record_job.update(state=outcome, note=reason, pages=pages)
    return {
        "job": record_job,
        "outcome": outcome,
        "reason": reason,
        "pages": pages,
        "sheets": sheets,
        "bytes": size,
        "started": iso(started) if started else None,
        "finished": iso(finished),
        "server": server,
        "request": dict(request) if request else None,
    }


def write_done(
    spool: Spool, job_id: str, record: Mapping[str, Any], *, sync: bool = True
) -> Path:
    """Publish done/<id>.json.  With sync=False the caller must `make_durable` it
    before the commit that removes the job (a server batches a cycle's records)."""
    data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    path = spool.done / f"{job_id}.json"
    # The data is always durable before the name: a record's existence is what
    # recovery takes for "finished" (the job is removed, not printed again), so a
    # power cut must never leave the name with empty content (found by
    # scripts/powerloss: a rename kept without its data lost the job).  The
    # folder is still made durable in one pass by `make_durable`.
    if record.get("outcome") not in ("completed", "forwarded"):
        # RACE: a job that was printed stays printed.  A server that lost the job
        # (its lease lapsed, another server finished it and removed its request)
        # may report it aborted or canceled a moment later: the first record wins,
        # unless it is a completion.  (Measured in the chaos soak: 3 of 2109 jobs
        # recorded "aborted" after they had printed.)
        try:
            write_new(path, data, sync=sync, sync_data=True)
        except FileExistsError:
            pass
        return path
    write_atomic(path, data, sync=sync, sync_data=True)
    return path


def write_done_batch(
    spool: Spool, items: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[Path]:
    """Publish many done/<id>.json records (as `write_done`, sync=False) in two passes.

    A cycle that finished 50 jobs writes their 50 temp files, makes all their data
    durable in one pass (one syncfs on a local disk; elsewhere an fsync per file, as
    `write_done`), and only then gives them their names: each name still comes
    after its data (see `write_done`), for one journal commit instead of 50
    fsyncs.  The caller makes the names durable (`make_durable`) before the commit
    that removes the jobs.  A completion replaces an earlier record; any other
    outcome never replaces one (the first record wins, as in `write_done`).
    """
    staged: list[tuple[Path, Path, bool]] = []  # (temp, final, replace)
    published = 0
    try:
        for job_id, record in items:
            data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() \
                + b"\n"
            try:
                tmp = write_temp(spool.done, data, 0o644, sync=False)
            except OSError as exc:
                raise translate(exc, spool.done) from exc
            staged.append((tmp, spool.done / f"{job_id}.json",
                           record.get("outcome") == "completed"))
        if staged and not sync_filesystem(spool.done):
            for tmp, _, _ in staged:
                try:
                    fsync_file(tmp)
                except OSError as exc:
                    raise translate(exc, tmp) from exc
        paths: list[Path] = []
        for tmp, final, replace in staged:
            if replace:
                try:
                    os.rename(tmp, final)
                except OSError as exc:
                    raise translate(exc, final) from exc
            else:
                try:
                    link_new(tmp, final)  # RACE: the first record wins (`write_done`)
                except FileExistsError:
                    pass
                unlink_quietly(tmp)
            paths.append(final)
            published += 1
        return paths
    except BaseException:
        for tmp, _, _ in staged[published:]:
            unlink_quietly(tmp)  # nothing is left behind but what was published
        raise


def make_durable(spool: Spool, paths: Iterable[Path]) -> None:
    """fsync files written with sync=False (and their folders), all in one pass.

    On a local disk one syncfs covers the whole batch: a cycle that finished 50
    jobs pays one journal commit, not 100 fsyncs.  Elsewhere each file and
    folder is fsynced.
    """
    paths = list(paths)
    if not paths or sync_filesystem(spool.done):
        return
    for path in paths:
        try:
            fsync_file(path)
        except OSError as exc:
            raise translate(exc, path) from exc
    for folder in {path.parent for path in paths}:
        fsync_dir(folder)


def accounting_line(record: Mapping[str, Any]) -> dict[str, Any]:
    job = record["job"]
    return {
        "job": job["id"],
        "user": job["user"],
        "station": job["station"],
        "printer": job.get("assigned") or job["printer"],
        "setup": job.get("setup", ""),
        "pages": record["pages"],
        "copies": job["copies"],
        "sheets": record["sheets"],
        "bytes": record["bytes"],
        "submitted": job["submitted"],
        "started": record["started"],
        "finished": record["finished"],
        "outcome": record["outcome"],
        "restarted": job.get("restarted", 0),
        # How a gateway established the user (e.g. "ipp:basic"); None: the file's owner.
        "via": (record.get("request") or {}).get("via"),
        # Forwarded to another site: where, and its job id there (docs/SITES.md).
        **({"site": record["forwarded"].get("to"),
            "remote_printer": record["forwarded"].get("printer"),
            "remote_job": record["forwarded"].get("ipp_job_id")
            or record["forwarded"].get("job")} if record.get("forwarded") else {}),
    }


def append_lines(
    path: os.PathLike[str], lines: Iterable[Mapping[str, Any]], *, sync: bool = True
) -> None:
    """Append JSON lines in one write (call under the master lock for shared logs).

    With sync=False the caller makes it durable (`make_durable`)."""
    data = b"".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for line in lines
    )
    if not data:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise translate(exc, Path(path)) from exc


def log_event(spool: Spool, server: str, text: str) -> None:
    """One line in log/events.log (best effort: events are informational)."""
    line = f"{iso(datetime.now(UTC))} {server}: {clean_text(text, 2000)}\n".encode()
    try:
        fd = os.open(spool.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        pass


def write_server_file(spool: Spool, name: str, status: Mapping[str, Any]) -> None:
    """Replace servers/<NAME>.json, the server file (status and heartbeat), whole."""
    data = json.dumps(status, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    write_atomic(spool.servers / f"{name}.json", data, sync=False)


def write_control_result(
    spool: Spool, ctl_id: str, user: str, action: str, results: Mapping[str, str]
) -> None:
    record = {"kind": "control", "id": ctl_id, "user": user, "action": action,
              "results": dict(results), "finished": iso(datetime.now(UTC))}
    write_atomic(spool.done / f"{ctl_id}.json", json.dumps(record).encode() + b"\n")


def read_accounting(
    path: Path, offset: int = 0, limit: int = 64 << 20
) -> tuple[list[dict[str, Any]], int, bool]:
    """Accounting lines appended since byte `offset`: (lines, new offset, restarted).

    Only complete lines are returned (a line being appended by another server
    is read next time).  If the file is now shorter than `offset` (it was
    rotated), reading starts again at 0 and `restarted` is True.  Malformed
    lines are skipped.  A missing file has no lines.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            restarted = size < offset
            if restarted:
                offset = 0
            fh.seek(offset)
            data = fh.read(min(size - offset, limit))
    except FileNotFoundError:
        return [], 0, offset > 0
    except OSError as exc:
        raise translate(exc, path) from exc
    end = data.rfind(b"\n") + 1
    lines: list[dict[str, Any]] = []
    for raw in data[:end].splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            lines.append(obj)
    return lines, offset + end, restarted
