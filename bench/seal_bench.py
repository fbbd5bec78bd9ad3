"""The cost of sealing (SEAL=ON): the same work with and without it, interleaved.

* **Submit a large file**: `Submitter.submit` of one file (a station copying,
  and sealing, it onto the spool, made durable), MB/s of document.
* **Open at print**: `printnet.worker.load_job` (a server reading the job's
  data the safe way, checking its sha256 and, sealed, unwrapping the job key
  and decrypting every chunk in memory), MB/s of document.
* **Submit many small jobs**: `Submitter.submit_many` of N 1 KB jobs in one
  batch (sealed: a fresh job key and an HPKE wrap per job), jobs/s.

Everything runs in this process on a local spool; times are medians of
interleaved runs (both variants see the same disk and load).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import median
from printnet import keys
from printnet.model import PrintRequest
from printnet.spool.layout import Spool
from printnet.spool.submit import Source, Submitter
from printnet.worker import load_job


@dataclass
class SealCost:
    """Medians (and samples) for one metric, without and with sealing."""

    plain: float
    sealed: float
    plain_samples: list[float]
    sealed_samples: list[float]


def _site(work: Path, tag: str) -> tuple[Spool, Path]:
    root = work / f"seal-{tag}"
    if root.exists():
        shutil.rmtree(root)
    spool, _ = Spool.init(root / "spool")
    folder = root / "keys"
    keys.create(folder, "BENCH", [spool])
    return spool, folder


def _template() -> PrintRequest:
    from datetime import UTC, datetime

    return PrintRequest(id="0" * 18, user="bench", station="bench",
                        submitted=datetime.now(UTC), printer="LOCAL", header=False)


def large(work: Path, mib: int, runs: int) -> tuple[SealCost, SealCost]:
    """(submit MB/s, open MB/s) for one `mib` MiB file, unsealed vs sealed."""
    src = work / "seal-large.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as fh:
        for _ in range(mib):
            fh.write(block)
    size_mb = mib * (1 << 20) / 1e6
    sub: dict[bool, list[float]] = {False: [], True: []}
    opn: dict[bool, list[float]] = {False: [], True: []}
    for r in range(runs):
        for sealed in ((False, True) if r % 2 == 0 else (True, False)):
            spool, folder = _site(work, f"large-{r}-{sealed}")
            seal_to = keys.published(spool) if sealed else []
            submitter = Submitter(spool, user="bench", station="bench", seal_to=seal_to)
            os.sync()
            t0 = time.perf_counter()
            req = submitter.submit(_template(), [Source("big", path=src)])
            sub[sealed].append(size_mb / (time.perf_counter() - t0))
            # The job's data as a server finds it: in the page cache of this host.
            t0 = time.perf_counter()
            _, files = load_job(spool, req.id, folder) if _received(spool, req) else ([], [])
            opn[sealed].append(size_mb / (time.perf_counter() - t0))
            assert len(files[0]) == mib << 20
            shutil.rmtree(spool.root.parent)
    src.unlink()
    return (SealCost(median(sub[False]), median(sub[True]), sub[False], sub[True]),
            SealCost(median(opn[False]), median(opn[True]), opn[False], opn[True]))


def _received(spool: Spool, req: PrintRequest) -> bool:
    """Move the request to received/ the way intake does (load_job reads it there)."""
    os.rename(spool.new / f"{req.id}.req", spool.received / f"{req.id}.req")
    return True


def many(work: Path, jobs: int, runs: int) -> SealCost:
    """Jobs per second, `jobs` 1 KB jobs in one batch, unsealed vs sealed."""
    folder = work / "seal-sources"
    folder.mkdir(exist_ok=True)
    files = []
    for i in range(jobs):
        path = folder / f"f{i}.txt"
        path.write_bytes(b"x" * 1023 + b"\n")
        files.append(path)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for r in range(runs):
        for sealed in ((False, True) if r % 2 == 0 else (True, False)):
            spool, _ = _site(work, f"many-{r}-{sealed}")
            seal_to = keys.published(spool) if sealed else []
            submitter = Submitter(spool, user="bench", station="bench", seal_to=seal_to)
            batch = [(_template(), [Source(p.name, path=p)]) for p in files]
            os.sync()
            t0 = time.perf_counter()
            submitter.submit_many(batch)
            rates[sealed].append(jobs / (time.perf_counter() - t0))
    shutil.rmtree(folder)
    for path in work.glob("seal-many-*"):
        shutil.rmtree(path)
    return SealCost(median(rates[False]), median(rates[True]), rates[False], rates[True])
