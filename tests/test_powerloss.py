"""Power loss: the power-loss filesystem itself, printnet's fsync discipline on it, and
a CI-sized run of `scripts/powerloss` (tests/powerloss/).

The model tests are pure and fast.  The mount tests run a real FUSE daemon; in CI
(``CI=true`` or ``PRINTNET_REQUIRE_ALL=1``) a mount that cannot come up fails with
its reason instead of skipping.
"""

from __future__ import annotations

import json
import os
import random
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from powerloss.harness import Run
from powerloss.model import ROOT, Node, PowerModel, walk
from powerloss.mount import PowerMount
from powerloss.testing import job_intact, require_fuse

from printnet.model import PrintRequest
from printnet.spool.layout import Spool
from printnet.spool.publish import write_atomic
from printnet.spool.records import write_done, write_done_batch
from printnet.spool.submit import Source, Submitter

T0 = 1_700_000_000_000_000_000


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[PowerMount]:
    require_fuse()
    pm = PowerMount(tmp_path / "mnt", image=None, out=tmp_path / "image", seed=11)
    pm.start()
    try:
        yield pm
    finally:
        pm.close()


def names(image: dict[int, Node]) -> dict[str, bytes]:
    """path -> content of every file in an image."""
    return {p: bytes(n.data) for p, n in walk(image) if stat.S_ISREG(n.mode)}


def worst(m: PowerModel) -> dict[int, Node]:
    return m.crash(random.Random(0), p_meta=0.0, p_keep=0.0, p_torn=0.0)


def new_file(m: PowerModel, parent: int, name: bytes, data: bytes) -> int:
    ino = m.create(parent, name, stat.S_IFREG | 0o644, 0, 0, T0).ino
    m.write(ino, 0, data, T0)
    return ino


def mkdir(m: PowerModel, parent: int, name: bytes) -> int:
    return m.create(parent, name, stat.S_IFDIR | 0o755, 0, 0, T0).ino


# -- the model ---------------------------------------------------------------------------


def test_a_file_written_but_not_fsynced_is_gone_after_a_cut() -> None:
    m = PowerModel(now=T0)
    new_file(m, ROOT, b"f", b"data")
    assert names(m.clean_image()) == {"/f": b"data"}
    assert names(worst(m)) == {}


def test_an_fsynced_file_whose_folder_was_not_fsynced_loses_its_name() -> None:
    m = PowerModel(now=T0)
    ino = new_file(m, ROOT, b"f", b"data")
    m.fsync(ino)
    assert names(worst(m)) == {}
    m.fsyncdir(ROOT)
    assert names(worst(m)) == {"/f": b"data"}


def test_a_name_made_durable_without_its_data_comes_back_empty() -> None:
    m = PowerModel(now=T0)
    new_file(m, ROOT, b"f", b"data")
    m.fsyncdir(ROOT)
    assert names(worst(m)) == {"/f": b""}


def test_fsync_of_a_new_folder_does_not_make_its_own_name_durable() -> None:
    m = PowerModel(now=T0)
    d = mkdir(m, ROOT, b"d")
    f = new_file(m, d, b"f", b"x")
    m.fsync(f)
    m.fsyncdir(d)
    assert names(worst(m)) == {}  # d's name lives in the root, never fsynced
    m.fsyncdir(ROOT)
    assert names(worst(m)) == {"/d/f": b"x"}


def test_a_rename_over_a_durable_file_is_atomic_under_every_cut() -> None:
    m = PowerModel(now=T0)
    old = new_file(m, ROOT, b"a", b"old")
    m.fsync(old)
    m.fsyncdir(ROOT)
    tmp = new_file(m, ROOT, b".tmp", b"new")
    m.fsync(tmp)
    m.rename(ROOT, b".tmp", ROOT, b"a", T0)
    seen = set()
    for seed in range(200):
        files = names(m.crash(random.Random(seed)))
        assert files.get("/a") in (b"old", b"new"), files
        if files["/a"] == b"new":
            assert "/.tmp" not in files  # one atomic step: never two names
        seen.add(files["/a"])
    assert seen == {b"old", b"new"}  # both outcomes do happen


def test_the_history_of_one_name_survives_as_a_prefix() -> None:
    m = PowerModel(now=T0)
    for i in range(5):
        tmp = new_file(m, ROOT, b".t%d" % i, b"v%d" % i)
        m.fsync(tmp)
        m.rename(ROOT, b".t%d" % i, ROOT, b"x", T0)
    kept = set()
    for seed in range(300):
        files = names(m.crash(random.Random(seed)))
        value = files.get("/x")
        n = -1 if value is None else int(value[1:])
        kept.add(n)
        # every earlier rename onto x was kept too: their temp names are gone
        for i in range(n + 1):
            assert f"/.t{i}" not in files
    assert len(kept) >= 4  # many different prefixes happen


def test_unsynced_writes_may_be_kept_torn_at_a_sector_or_lost() -> None:
    m = PowerModel(now=T0)
    ino = new_file(m, ROOT, b"f", b"")
    m.fsync(ino)
    m.fsyncdir(ROOT)
    m.write(ino, 0, b"a" * 4096, T0)
    outcomes = set()
    for seed in range(200):
        data = names(m.crash(random.Random(seed)))["/f"]
        assert data == b"a" * len(data) and len(data) % 512 == 0
        outcomes.add("lost" if not data else "whole" if len(data) == 4096 else "torn")
    assert outcomes == {"lost", "whole", "torn"}


def test_a_hard_link_and_the_unlink_of_the_temp_name_are_ordered() -> None:
    """publish.write_new: link(tmp, final), unlink(tmp).  A cut never leaves neither."""
    m = PowerModel(now=T0)
    tmp = new_file(m, ROOT, b".tmp", b"entry")
    m.fsync(tmp)
    m.fsyncdir(ROOT)
    m.link(tmp, ROOT, b"final", T0)
    m.unlink(ROOT, b".tmp", T0)
    for seed in range(200):
        files = names(m.crash(random.Random(seed)))
        assert files.get("/final") == b"entry" or files.get("/.tmp") == b"entry", files


# -- the mount -----------------------------------------------------------------------------


def image_files(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out["/" + str(p.relative_to(root))] = p.read_bytes()
    return out


def test_the_mount_keeps_only_what_was_made_durable(mount: PowerMount) -> None:
    root = mount.path
    (root / "unsynced").write_bytes(b"lost")
    fd = os.open(root / "synced-no-dir", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"data")
    os.fsync(fd)
    os.close(fd)
    os.mkdir(root / "d")
    fd = os.open(root / "d" / "both", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"kept")
    os.fsync(fd)
    os.close(fd)
    for folder in (root / "d", root):
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    (root / "after").write_bytes(b"x")  # after the last fsync: lost
    os.link(root / "d" / "both", root / "d" / "link")  # a hard link, not durable
    assert os.stat(root / "d" / "both").st_nlink == 2
    assert sorted(os.listdir(root)) == ["after", "d", "synced-no-dir", "unsynced"]
    mount.cut(worst=True)
    mount.close()
    # The root's fsync made the names created before it durable; of the files, only
    # the fsynced ones have their data: "unsynced" comes back empty.
    assert image_files(mount.out) == {"/d/both": b"kept", "/synced-no-dir": b"data",
                                      "/unsynced": b""}
    # Reboot: the survivors are what the new mount serves.
    with PowerMount(mount.path, image=mount.out, out=mount.out.with_name("image2")) as again:
        assert (again.path / "d" / "both").read_bytes() == b"kept"
        assert os.stat(again.path / "d" / "both").st_nlink == 1
        assert (again.path / "unsynced").read_bytes() == b""
        assert not (again.path / "after").exists()


def test_links_renames_and_inodes_behave_like_a_posix_disk(mount: PowerMount) -> None:
    root = mount.path
    (root / "a").write_bytes(b"1")
    ino = os.stat(root / "a").st_ino
    os.link(root / "a", root / "b")
    with pytest.raises(FileExistsError):
        os.link(root / "a", root / "b")
    assert os.stat(root / "b").st_ino == ino and os.stat(root / "a").st_nlink == 2
    os.rename(root / "a", root / "c")
    assert os.stat(root / "c").st_ino == ino
    assert sorted(os.listdir(root)) == ["b", "c"]
    os.mkdir(root / "d")
    with pytest.raises(OSError):
        os.rmdir(root)  # the mount point itself (EBUSY) -- the kernel refuses
    (root / "d" / "x").write_bytes(b"")
    with pytest.raises(OSError):
        os.rmdir(root / "d")  # not empty
    fd = os.open(root / "c", os.O_RDWR)
    os.unlink(root / "c")
    os.unlink(root / "b")
    os.write(fd, b"still open")  # an unlinked, open file stays usable
    os.lseek(fd, 0, os.SEEK_SET)
    assert os.read(fd, 100) == b"still open"
    os.close(fd)
    os.utime(root / "d" / "x", ns=(T0, T0))
    assert os.stat(root / "d" / "x").st_mtime_ns == T0


def test_write_atomic_survives_a_cut_and_its_unsynced_variant_need_not(
        mount: PowerMount) -> None:
    root = mount.path
    write_atomic(root / "durable", b"published")
    write_atomic(root / "lazy", b"not synced", sync=False)
    mount.cut(worst=True)
    mount.close()
    assert image_files(mount.out) == {"/durable": b"published"}


def submit_then_cut(mount: PowerMount, *, sync: bool = True, publish_sync: bool = True,
                    jobs: int = 1, size: int = 600) -> tuple[Path, list[str]]:
    """Submit `jobs` jobs of `size` bytes (one batch), cut the power the moment submit
    returns (when the station prints the ids), and return the disk and the ids."""
    spool, _ = Spool.init(mount.path / "spool")
    mount.command("sync")  # the installation is durable
    docs = []
    for i in range(jobs):
        doc = mount.path.parent / f"doc{i}.txt"
        doc.write_text(f"hello {i}\n" * (size // 8))
        docs.append(doc)
    submitter = Submitter(spool, user="root", station="ws1")
    if not sync:
        submitter._sync = lambda written, bulk=False: None  # type: ignore[method-assign]
    if not publish_sync:
        submitter._sync_published = lambda: None  # type: ignore[method-assign]
    template = PrintRequest(id="", user="", station="", submitted=datetime.now(UTC),
                            printer="P1")
    reqs = submitter.submit_many([(template, [Source(d.name, d)]) for d in docs])
    mount.cut(worst=True)
    mount.close()
    return mount.out / "spool", [r.id for r in reqs]


@pytest.mark.parametrize("jobs,size", [(1, 600), (1, 3 << 20), (20, 600)])
def test_an_acknowledged_submit_survives_the_worst_cut(mount: PowerMount, jobs: int,
                                                       size: int) -> None:
    """One small job (copied in one piece, fsynced while open), one large (in chunks,
    under a .writer lock), and a batch: every acknowledged one survives."""
    root, job_ids = submit_then_cut(mount, jobs=jobs, size=size)
    assert len(job_ids) == jobs
    assert all(job_intact(root, job_id) for job_id in job_ids)


def test_without_its_durability_pass_a_submit_loses_the_job(mount: PowerMount) -> None:
    """The filesystem would catch a missing fsync: remove submit's and the job is lost
    (empty request, or a data folder without its files)."""
    root, [job_id] = submit_then_cut(mount, sync=False)
    assert not job_intact(root, job_id)


@pytest.mark.parametrize("jobs", [1, 20])
def test_a_station_that_acknowledged_before_new_was_synced_would_lose_the_job(
        mount: PowerMount, jobs: int) -> None:
    """The last step before the ids are printed is the fsync of new/ (the requests'
    names): data, folders and request contents are durable by then, but a station
    that printed the ids without it would have acknowledged jobs a cut then loses."""
    root, job_ids = submit_then_cut(mount, publish_sync=False, jobs=jobs)
    assert not any(job_intact(root, job_id) for job_id in job_ids)


# -- a CI-sized run of scripts/powerloss -------------------------------------------------


@pytest.mark.slow
def test_power_cuts_lose_no_acknowledged_job(tmp_path: Path) -> None:
    require_fuse()
    lines: list[str] = []
    report = Run(tmp_path / "run", seed=20261202, cuts=10, say=lines.append).run()
    detail = "\n".join(lines + report.violations())
    assert report.violations() == [], detail
    assert len(report.cuts) == 10
    assert len(report.jobs) >= 10, detail  # stations did get jobs through
    assert len({c.phase.split("/")[0] for c in report.cuts}) >= 3, detail  # several phases


# -- CI strictness -----------------------------------------------------------------------


@pytest.mark.parametrize("env", [{"CI": "true"}, {"PRINTNET_REQUIRE_ALL": "1"}, {}])
def test_a_mount_that_cannot_come_up_fails_in_ci_and_skips_elsewhere(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    import powerloss.testing

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PRINTNET_REQUIRE_ALL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(powerloss.testing, "fuse_problem", lambda: "no /dev/fuse (test)")
    expected = pytest.fail.Exception if env else pytest.skip.Exception
    with pytest.raises(expected, match="no /dev/fuse"):
        require_fuse()


def test_a_done_record_never_survives_a_cut_without_its_content(mount: PowerMount) -> None:
    """done/<id>.json is written unsynced and made durable in one pass before the
    commit; a cut before that pass may keep its rename and lose its data.  Its
    existence is what recovery takes for "finished" (a job with a record is removed,
    not printed), so an empty record would lose the job: the data must be durable
    before the name (found by scripts/powerloss --seed 1: 3 jobs lost that way)."""
    spool, _ = Spool.init(mount.path / "spool")
    mount.command("sync")
    write_done(spool, "01M8VQ2FW1XCYV3JPZ", {"outcome": "completed"}, sync=False)
    mount.cut(names=True)
    mount.close()
    path = mount.out / "spool" / "done" / "01M8VQ2FW1XCYV3JPZ.json"
    assert not path.exists() or json.loads(path.read_bytes()) == {"outcome": "completed"}


def test_a_batch_of_done_records_never_survives_a_cut_without_its_content(
        mount: PowerMount) -> None:
    """The same for a cycle's records written together (`write_done_batch`): their
    data is made durable in one pass, before any of their names."""
    spool, _ = Spool.init(mount.path / "spool")
    mount.command("sync")
    ids = ["01M8VQ2FW1XCYV3JP0", "01M8VQ2FW1XCYV3JP1", "01M8VQ2FW1XCYV3JP2"]
    write_done_batch(spool, [(i, {"outcome": "completed", "n": k}) for k, i in enumerate(ids)])
    mount.cut(names=True)
    mount.close()
    for k, i in enumerate(ids):
        path = mount.out / "spool" / "done" / f"{i}.json"
        assert not path.exists() or json.loads(path.read_bytes()) == {"outcome": "completed",
                                                                    "n": k}
