"""Real shared filesystems for the reliability tests: two "hosts" on one machine.

A **host** here is a set of processes with their own host name (``unshare
--uts`` + ``hostname``), optionally their own wall clock (libfaketime, the
Debian ``faketime`` package), that see the shared disk through their *own*
network-filesystem client, with its own cache.  The share is GlusterFS from
Debian packages (FACTS.md, "Shared filesystems on these machines"):

* a private network namespace holds the file server: ``lo`` up with an extra
  /32 address (Gluster refuses bricks on 127.0.0.1), ``glusterd`` started by
  hand with private working, run and log folders and its own CLI socket;
* each host's client (``glusterfs`` FUSE process) runs in a network namespace
  of its own, joined to the server's by a veth pair, and mounts the volume in
  the ordinary mount namespace: two hosts are two clients with two caches.
  Cutting a host off (`SharedFS.cut`) takes its veth down: its mount fails
  with ENOTCONN after about 10 s (``network.ping-timeout 5``) instead of
  hanging, while the other host's mount keeps working;
* two volumes, one per **tier**: ``nfs`` (quick-read, open-behind,
  stat-prefetch and flush-behind off, 1 s metadata caches: content fresh on
  open, names/attributes/negative lookups stale for about a second, like NFS)
  and ``default`` (Gluster's default caches: a reader may see *old content*
  for about a second), which catches code that assumes more consistency than
  a share gives.

Every brick starts empty (a brick that held a volume is refused).  All names
(namespaces, veths, folders) carry this process's id, so concurrent test runs
do not meet.  `ensure_packages` installs what is missing with apt-get.

``PRINTNET_TEST_SHARED=/mnt/a:/mnt/b`` replaces all this with two mounts of an
existing share (say, a real NFS export mounted twice): the same tests run on
it as tier ``env`` (nothing can be cut off there).

Rules for the tests: never touch a possibly cut-off mount from the test
runner itself — use `Host.run`/`Host.py`/`Host.popen`, which run children
with deadlines.  Every process a test starts is waited for.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from waiting import wait_for as wait_for  # noqa: PLC0414 (re-exported: chaos_engine, test_multihost)

T = TypeVar("T")

PACKAGES: Final = ("glusterfs-server", "glusterfs-client", "faketime")
# Tests of the fixture's strict mode point this at a broken glusterd on purpose.
GLUSTERD_ENV: Final = "PRINTNET_TEST_GLUSTERD"
SERVER_IP: Final = "10.213.0.1"
TIERS: Final = ("nfs", "default")
ROOT: Final = Path(__file__).resolve().parent.parent
PYTHON: Final = sys.executable
TOOLS: Final = Path(__file__).resolve().parent / "spool_probe.py"
FAKETIME_SHIM: Final = Path(__file__).resolve().parent / "faketime_shim"

# Volume options per tier (FACTS.md).  ping-timeout bounds a cut-off client's
# hang on both tiers: it is failure detection, not caching.
TIER_OPTIONS: Final[dict[str, dict[str, str]]] = {
    "nfs": {
        "performance.quick-read": "off",
        "performance.open-behind": "off",
        "performance.stat-prefetch": "off",
        "performance.flush-behind": "off",
        "performance.md-cache-timeout": "1",
        "performance.cache-refresh-timeout": "1",
        "network.ping-timeout": "5",
    },
    "default": {"network.ping-timeout": "5"},
}
# The fault tests' own volume (NFS-like), where errors are injected (`SharedFS.inject`).
TIER_OPTIONS["flaky"] = TIER_OPTIONS["nfs"]
TIER_MOUNT_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "nfs": ("--attribute-timeout=1", "--entry-timeout=1", "--negative-timeout=1"),
    "default": (),
}
TIER_MOUNT_OPTIONS["flaky"] = TIER_MOUNT_OPTIONS["nfs"]
# The identity tests' volume (NFS-like): `server.root-squash` is switched on once
# its spool is set up (root cannot create the spool on a squashed share).
TIER_OPTIONS["squash"] = TIER_OPTIONS["nfs"]
TIER_MOUNT_OPTIONS["squash"] = TIER_MOUNT_OPTIONS["nfs"]


class Unavailable(Exception):
    """This machine cannot provide a shared filesystem; the message says why."""


def _run(argv: Sequence[str], timeout: float = 60.0, check: bool = True,
         **kw: Any) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, **kw)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{' '.join(argv)}: no answer in {timeout:g}s") from exc
    except OSError as exc:
        raise Unavailable(f"{argv[0]}: {exc.strerror}") from exc
    if check and proc.returncode != 0:
        raise Unavailable(f"{' '.join(argv)} failed ({proc.returncode}): "
                          f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc


# -- packages ---------------------------------------------------------------------------


def libfaketime() -> Path | None:
    """libfaketime.so.1 of this machine: ``PRINTNET_LIBFAKETIME``, else where dpkg put
    it, else the multiarch folder of this architecture (never a hard-coded one)."""
    global _FAKETIME
    env = os.environ.get("PRINTNET_LIBFAKETIME")
    if env:
        return Path(env) if Path(env).exists() else None
    if _FAKETIME is not None and _FAKETIME.exists():
        return _FAKETIME
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listed = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True,
                                text=True, timeout=30, check=False).stdout
        candidates += [Path(line) for line in listed.splitlines()
                       if line.endswith("/libfaketime.so.1")]
    triplet = getattr(sys.implementation, "_multiarch", "")
    if triplet:
        candidates.append(Path(f"/usr/lib/{triplet}/faketime/libfaketime.so.1"))
    candidates += sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    candidates += [Path("/usr/lib/faketime/libfaketime.so.1"),
                   Path("/usr/local/lib/faketime/libfaketime.so.1")]
    _FAKETIME = next((c for c in candidates if c.exists()), None)
    return _FAKETIME


_FAKETIME: Path | None = None  # found once (a wrap per process started)


def _missing_packages() -> list[str]:
    missing = []
    if shutil.which(glusterd()) is None or shutil.which("gluster") is None:
        missing.append("glusterfs-server")
    if shutil.which("glusterfs") is None:
        missing.append("glusterfs-client")
    if libfaketime() is None:
        missing.append("faketime")
    return missing


def glusterd() -> str:
    return os.environ.get(GLUSTERD_ENV) or "glusterd"


def ensure_packages() -> None:
    """Install the Debian packages the fixture needs (apt-get), once, saying so.

    ``scripts/test`` installs them before pytest runs (scripts/test-packages);
    this is for a bare ``pytest``.  apt waits up to 5 minutes for a dpkg lock."""
    missing = _missing_packages()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"missing {', '.join(missing)} and cannot apt-get install them")
    print(f"shared_fs: installing {', '.join(missing)} (apt-get)", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    argv = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", *PACKAGES]
    try:
        _run(argv, timeout=600, env=env)
    except Unavailable:
        _run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q"], timeout=600,
             env=env)
        _run(argv, timeout=600, env=env)
    if missing := _missing_packages():
        raise Unavailable(f"apt-get did not provide {', '.join(missing)}")


# -- hosts -------------------------------------------------------------------------------


@dataclass
class Host:
    """A "host": its host name, its own mount of the share, its clock skew."""

    name: str  # host name its processes see (`socket.gethostname()`)
    mount: Path  # the share as this host mounts it
    netns: str | None = None  # network namespace of this host's filesystem client
    skew: float = 0.0  # default clock offset in seconds for its processes
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # This host's own user database: (passwd, group) files bind-mounted over
    # /etc/passwd and /etc/group in a mount namespace of its processes (a user
    # may have another uid here than on the other host).
    users_view: tuple[Path, Path] | None = None

    def wrap(self, argv: Sequence[str], *, skew: float | None = None, at: str | None = None,
             tz: str | None = None, env: Mapping[str, str] | None = None,
             user: str | None = None) -> tuple[list[str], dict[str, str]]:
        """`argv` as a process of this host: own host name, optionally a skewed clock.

        `skew` seconds (default the host's) shifts the wall clock; `at` starts it at
        an absolute local time ("2026-03-01 02:00:00") and lets it run.  Monotonic
        clocks are not faked: they are per process anyway.  `user`: run as that
        user of *this host's* user database (uid, primary and supplementary groups
        as this host's /etc/passwd and /etc/group say), environment kept.
        """
        full = dict(os.environ)
        full.update(env or {})
        full["PYTHONUNBUFFERED"] = "1"
        offset = self.skew if skew is None else skew
        if at is not None or offset:
            lib = libfaketime()
            if lib is None:
                raise Unavailable("libfaketime is not installed (Debian package faketime)")
            full["LD_PRELOAD"] = str(lib)
            full["FAKETIME"] = f"@{at}" if at is not None else f"{offset:+g}"
            full["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
            # time.sleep under libfaketime needs a fix-up: see faketime_shim/.
            full["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(FAKETIME_SHIM), full.get("PYTHONPATH", "")) if p)
        if tz is not None:
            full["TZ"] = tz
        script = 'hostname "$0"'
        unshare = ["unshare", "--uts"]
        if self.users_view is not None:
            passwd, group = self.users_view
            unshare += ["--mount", "--propagation", "private"]
            script += (f" && mount --bind {shlex.quote(str(passwd))} /etc/passwd"
                       f" && mount --bind {shlex.quote(str(group))} /etc/group")
        if user is not None:
            u = shlex.quote(user)
            script += (f' && exec setpriv --reuid={u} --regid="$(id -g {u})" --init-groups'
                       ' -- "$@"')
        else:
            script += ' && exec "$@"'
        wrapped = [*unshare, "--", "sh", "-c", script, self.name, *argv]
        return wrapped, full

    def popen(self, argv: Sequence[str], *, stdout: IO[Any] | int | None = None,
              stderr: IO[Any] | int | None = None, cwd: Path | None = None,
              **wrap: Any) -> subprocess.Popen[bytes]:
        """Start `argv` on this host (in its own session, so it can be killed alone)."""
        full, env = self.wrap(argv, **wrap)
        proc = subprocess.Popen(full, env=env, stdout=stdout, stderr=stderr, cwd=cwd,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, check: bool = True,
            input: bytes | None = None, **wrap: Any) -> subprocess.CompletedProcess[bytes]:
        """Run `argv` on this host to completion; kill it at the deadline and fail."""
        full, env = self.wrap(argv, **wrap)
        try:
            proc = subprocess.run(full, env=env, capture_output=True, timeout=timeout,
                                  input=input, check=False,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"on {self.name}: {' '.join(argv)[:300]} did not finish "
                                 f"in {timeout:g}s") from exc
        if check and proc.returncode != 0:
            raise AssertionError(
                f"on {self.name}: {' '.join(argv)[:300]} exited {proc.returncode}:\n"
                f"{proc.stdout.decode(errors='replace')[-2000:]}\n"
                f"{proc.stderr.decode(errors='replace')[-3000:]}")
        return proc

    def printnet(self, *args: str, timeout: float = 60.0, check: bool = True,
                 **wrap: Any) -> subprocess.CompletedProcess[bytes]:
        return self.run([PYTHON, "-m", "printnet", *args], timeout=timeout, check=check,
                        **wrap)

    def probe(self, command: str, *args: str, timeout: float = 60.0, **wrap: Any) -> Any:
        """Run `spool_probe.py COMMAND ARGS` on this host; its JSON answer."""
        proc = self.run([PYTHON, str(TOOLS), command, *args], timeout=timeout, **wrap)
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])

    def py(self, code: str, *args: str, timeout: float = 60.0, **wrap: Any) -> Any:
        """Run Python `code` on this host (sys.argv[1:] = args); JSON of its last line."""
        proc = self.run([PYTHON, "-c", textwrap.dedent(code), *args], timeout=timeout, **wrap)
        lines = proc.stdout.decode().strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    def reap(self, timeout: float = 15.0) -> None:
        """Stop (SIGTERM, then SIGKILL) and wait for every process started here."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                    proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()


@dataclass
class SharedFS:
    """One share mounted on two hosts (`a`, `b`), for one tier."""

    tier: str
    a: Host
    b: Host
    cluster: GlusterCluster | None = None
    volume: str = ""
    _counter: int = 0

    @property
    def hosts(self) -> tuple[Host, Host]:
        return (self.a, self.b)

    @property
    def can_cut(self) -> bool:
        return self.cluster is not None

    def fresh(self, label: str) -> str:
        """A new, empty folder on the share; returns its path relative to the mounts."""
        self._counter += 1
        safe = "".join(c if c.isalnum() else "-" for c in label)[:40]
        rel = f"t{os.getpid()}-{self._counter}-{safe}"
        self.a.run(["mkdir", "-p", str(self.a.mount / rel)], timeout=30)
        # The other host must see it (names may be cached negative for ~1 s).
        wait_for(lambda: self.b.run(["test", "-d", str(self.b.mount / rel)], timeout=30,
                                    check=False).returncode == 0, 20, f"{rel} on {self.b.name}")
        return rel

    def extra_host(self, name: str) -> Host:
        """A third host with its own client of this tier's volume (can be cut off)."""
        if self.cluster is None:
            raise Unavailable("cannot add hosts to an existing share")
        return self.cluster.host(name, self.tier)

    def cut(self, host: Host) -> None:
        if self.cluster is None or host.netns is None:
            raise Unavailable("this share cannot be cut off")
        self.cluster.cut(host)

    def restore(self, host: Host) -> None:
        if self.cluster is None or host.netns is None:
            raise Unavailable("this share cannot be cut off")
        self.cluster.restore(host)

    def reap(self) -> None:
        for host in self.hosts:
            host.reap()

    def inject(self, percent: int, fops: Sequence[str]) -> None:
        """Make `percent` % of the listed operations fail on every client of this
        tier's volume (Gluster's debug/error-gen translator: each failure returns an
        errno that operation can have, e.g. EIO, ENOENT, EAGAIN, ENOSPC); 0 stops it."""
        if self.cluster is None:
            raise Unavailable("errors can only be injected into the fixture's own share")
        vol = self.volume
        if percent <= 0:
            self.cluster.gluster("volume", "set", vol, "debug.error-gen", "off")
            return
        self.cluster.gluster("volume", "set", vol, "debug.error-failure", str(percent))
        self.cluster.gluster("volume", "set", vol, "debug.error-fops", ",".join(fops))
        self.cluster.gluster("volume", "set", vol, "debug.error-gen", "client")


# -- GlusterFS ---------------------------------------------------------------------------


def _tag() -> str:
    n, digits = os.getpid(), ""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    while True:
        n, r = divmod(n, 36)
        digits = alphabet[r] + digits
        if not n:
            return digits


class GlusterCluster:
    """A private glusterd with one volume per tier, and client "hosts" mounting them."""

    def __init__(self, base: Path) -> None:
        self.tag = _tag()
        self.base = base
        self.ns = f"pn{self.tag}s"
        self.volumes: dict[str, str] = {}  # tier -> volume name
        self.clients: dict[str, str] = {}  # host name -> netns
        self.mounts: list[tuple[Path, Path]] = []  # (mount point, client pid file)
        self.hosts: dict[tuple[str, str], Host] = {}
        self._veths: dict[str, tuple[str, str, str]] = {}  # netns -> (client dev, gw, ip)
        self.started = False

    # -- commands inside our namespaces ----------------------------------------------

    def _in(self, ns: str, *argv: str, timeout: float = 30.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", ns, *argv], timeout=timeout, check=check)

    def gluster(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return _run(["gluster", "--mode=script", f"--glusterd-sock={self.base}/run/cli.socket",
                     f"--log-file={self.base}/log/cli.log", *args], timeout=timeout)

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        if os.geteuid() != 0:
            raise Unavailable("needs root (network namespaces, FUSE mounts)")
        if not Path("/dev/fuse").exists():
            raise Unavailable("no /dev/fuse")
        for tool in ("ip", "unshare", "nsenter", "umount"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} not found")
        ensure_packages()
        _remove_stale_namespaces()
        for sub in ("gd", "run", "log", "bricks", "mnt", "pid"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.started = True
        _run(["ip", "netns", "add", self.ns])
        self._in(self.ns, "ip", "link", "set", "lo", "up")
        self._in(self.ns, "ip", "addr", "add", f"{SERVER_IP}/32", "dev", "lo")
        vol = self.base / "glusterd.vol"
        vol.write_text(textwrap.dedent(f"""\
            volume management
                type mgmt/glusterd
                option working-directory {self.base}/gd
                option run-directory {self.base}/run
                option logging-directory {self.base}/log
                option glusterd-sockfile {self.base}/run/cli.socket
                option transport-type socket
                option transport.socket.listen-port 24007
                option transport.socket.bind-address {SERVER_IP}
                option ping-timeout 0
                option event-threads 1
            end-volume
            """))
        self._in(self.ns, glusterd(), "-f", str(vol), "-p", str(self.base / "pid/glusterd"),
                 "-l", str(self.base / "log/glusterd.log"))
        wait = time.monotonic() + 30
        while True:
            try:
                self.gluster("volume", "list", timeout=10)
                break
            except Unavailable:
                if time.monotonic() > wait:
                    raise
                time.sleep(0.1)
        for tier in TIERS:
            self.volume(tier)

    def volume(self, tier: str) -> str:
        """The volume of `tier` (created, empty, on first use)."""
        if tier in self.volumes:
            return self.volumes[tier]
        name = f"pn{tier}"
        brick = self.base / "bricks" / name
        brick.mkdir()
        self.gluster("volume", "create", name, f"{SERVER_IP}:{brick}", "force")
        for key, value in TIER_OPTIONS[tier].items():
            self.gluster("volume", "set", name, key, value)
        self.gluster("volume", "start", name)
        self.volumes[tier] = name
        return name

    def _client_ns(self, host: str) -> str:
        if host in self.clients:
            return self.clients[host]
        i = len(self.clients) + 1
        ns = f"pn{self.tag}c{i}"
        dev_s, dev_c = f"pn{self.tag}{i}s", f"pn{self.tag}{i}c"
        gw, ip = f"10.213.{i}.1", f"10.213.{i}.2"
        _run(["ip", "netns", "add", ns])
        self.clients[host] = ns
        _run(["ip", "link", "add", dev_s, "type", "veth", "peer", "name", dev_c])
        _run(["ip", "link", "set", dev_s, "netns", self.ns])
        _run(["ip", "link", "set", dev_c, "netns", ns])
        self._in(self.ns, "ip", "addr", "add", f"{gw}/30", "dev", dev_s)
        self._in(self.ns, "ip", "link", "set", dev_s, "up")
        self._in(ns, "ip", "link", "set", "lo", "up")
        self._in(ns, "ip", "addr", "add", f"{ip}/30", "dev", dev_c)
        self._veths[ns] = (dev_c, gw, ip)
        self._link_up(ns)
        return ns

    def _link_up(self, ns: str) -> None:
        dev, gw, _ = self._veths[ns]
        self._in(ns, "ip", "link", "set", dev, "up")
        # A link that went down lost its routes: add the one to the server again.
        self._in(ns, "ip", "route", "replace", f"{SERVER_IP}/32", "via", gw)

    def host(self, name: str, tier: str) -> Host:
        """Host `name`'s view of `tier`'s volume (its own client and mount)."""
        key = (name, tier)
        if key in self.hosts:
            return self.hosts[key]
        ns = self._client_ns(name)
        mnt = self.base / "mnt" / f"{name}-{tier}"
        mnt.mkdir(parents=True, exist_ok=True)
        pid = self.base / "pid" / f"client-{name}-{tier}"
        _run(["nsenter", f"--net=/run/netns/{ns}", "glusterfs",
              f"--volfile-server={SERVER_IP}", f"--volfile-id={self.volume(tier)}",
              *TIER_MOUNT_OPTIONS[tier], "-p", str(pid),
              "-l", str(self.base / "log" / f"client-{name}-{tier}.log"), str(mnt)])
        self.mounts.append((mnt, pid))
        # Checked in a child with a deadline, like every touch of a mount.
        _run(["timeout", "20", "mountpoint", "-q", str(mnt)], timeout=30)
        host = Host(name=name, mount=mnt, netns=ns)
        self.hosts[key] = host
        return host

    def cut(self, host: Host) -> None:
        assert host.netns is not None
        dev, _, _ = self._veths[host.netns]
        self._in(host.netns, "ip", "link", "set", dev, "down")

    def restore(self, host: Host) -> None:
        assert host.netns is not None
        self._link_up(host.netns)

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for host in self.hosts.values():
            host.reap()
        for mnt, _ in self.mounts:
            # -l: detach at once, even from a cut-off client (never hangs).
            _run(["umount", "-l", str(mnt)], check=False, timeout=30)
        pids = [self.base / "pid" / "glusterd"]
        pids += [pidfile for _, pidfile in self.mounts]
        pids += list((self.base / "run").glob("vols/*/*.pid"))
        for pidfile in pids:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        for ns in [*self.clients.values(), self.ns]:
            _run(["ip", "netns", "del", ns], check=False)
        # Only now (nothing is mounted any more) may the folders go.
        for mnt, _ in self.mounts:
            if _run(["mountpoint", "-q", str(mnt)], check=False).returncode == 0:
                return  # still mounted somehow: leave everything rather than delete through it
        shutil.rmtree(self.base, ignore_errors=True)


def _remove_stale_namespaces() -> None:
    """Namespaces left by a test run that was killed (its pid is gone)."""
    try:
        out = _run(["ip", "netns", "list"], check=False).stdout
    except Unavailable:
        return
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith("pn") or len(name) < 4:
            continue
        tag = name[2:].rstrip("0123456789").removesuffix("s").removesuffix("c")
        try:
            pid = int(tag, 36)
        except ValueError:
            continue
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            _run(["ip", "netns", "del", name], check=False)


# -- the session-wide share --------------------------------------------------------------

_CLUSTER: GlusterCluster | None = None
_CLUSTER_FAILED: str | None = None  # why the cluster did not start (not retried)
_TIER_FAILED: dict[str, str] = {}  # tier -> why its share did not come up
_SHARES: dict[str, SharedFS] = {}


def _from_env(value: str) -> SharedFS:
    parts = value.split(":")
    if len(parts) != 2 or not all(parts):
        raise Unavailable(f"PRINTNET_TEST_SHARED={value!r}: expected /mnt/a:/mnt/b")
    a, b = (Path(p) for p in parts)
    for p in (a, b):
        if _run(["timeout", "20", "test", "-d", str(p)], check=False,
                timeout=30).returncode != 0:
            raise Unavailable(f"PRINTNET_TEST_SHARED: {p} is not a folder")
    return SharedFS("env", Host("hosta", a), Host("hostb", b))


def tiers() -> tuple[str, ...]:
    """The tiers this run covers."""
    return ("env",) if os.environ.get("PRINTNET_TEST_SHARED") else TIERS


def shared(tier: str) -> SharedFS:
    """The session's share for `tier` (set up on first use); raises `Unavailable`.

    A tier that failed is not set up again in this session, and a cluster that
    failed to start is not started again (that can take minutes: apt, glusterd);
    each later call raises `Unavailable` with the first reason, saying so --
    the tests turn it into a skip or, in CI, a failure (`_ci_strict`)."""
    global _CLUSTER, _CLUSTER_FAILED
    if tier in _SHARES:
        return _SHARES[tier]
    if tier in _TIER_FAILED:
        raise Unavailable(f"{_TIER_FAILED[tier]} (tier {tier}, failed earlier in this run)")
    env = os.environ.get("PRINTNET_TEST_SHARED")
    if not env and _CLUSTER_FAILED is not None:
        raise Unavailable(f"{_CLUSTER_FAILED} (GlusterFS failed to start earlier in this run)")
    try:
        if env:
            share = _from_env(env)
        else:
            if _CLUSTER is None:
                cluster = GlusterCluster(Path(f"/tmp/printnet-gluster-{os.getpid()}"))
                atexit.register(shutdown)
                try:
                    cluster.start()
                except Unavailable as exc:
                    _CLUSTER_FAILED = str(exc)
                    cluster.stop()
                    raise
                _CLUSTER = cluster
            share = SharedFS(tier, _CLUSTER.host("hosta", tier), _CLUSTER.host("hostb", tier),
                             cluster=_CLUSTER, volume=_CLUSTER.volume(tier))
    except Unavailable as exc:
        _TIER_FAILED.setdefault(tier, str(exc))
        raise
    _SHARES[tier] = share
    return share


def shutdown() -> None:
    """Tear the session's share down (idempotent)."""
    global _CLUSTER
    for share in _SHARES.values():
        share.reap()
    _SHARES.clear()
    if _CLUSTER is not None:
        cluster, _CLUSTER = _CLUSTER, None
        cluster.stop()


@contextlib.contextmanager
def session_share(tier: str) -> Iterator[SharedFS]:
    """For scripts: the share for `tier`, torn down at the end."""
    try:
        yield shared(tier)
    finally:
        shutdown()
