"""The `printnet gateway` process: one asyncio loop, one aiohttp application.

IPP (`ipp_door`) and the web page (`web`) share one port, as CUPS does on 631;
LPD (`lpd`) listens on its own when asked.  Blocking work (submitting,
reading the spool) runs in threads, so one slow disk does not stop the doors.
The gateway runs as the service account; it needs the spool, and reads etc/
(printers.cmd, server.cmd, gateway.cmd) when it is there.

Shutdown: SIGTERM or SIGINT stop accepting, let running requests finish (up to
`GRACE` seconds), then exit.  A request being submitted when the process is
killed leaves no visible half-job: publishing is the Submitter's rename.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from printnet import systemd
from printnet.errors import ConfigError, UsageError
from printnet.gateway.context import GatewayContext
from printnet.gateway.ipp_door import IppDoor

log = logging.getLogger("printnet.gateway")

DEFAULT_IPP: Final = ("127.0.0.1", 8631)
GRACE: Final = 5.0
WORKERS: Final = 64  # threads for blocking work (submits wait in their group commit)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int) -> Listen:
        """HOST:PORT, HOST, :PORT or PORT; [v6]:PORT for IPv6."""
        text = text.strip()
        host, port = text, str(default_port)
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise UsageError(f"bad address {text!r}")
            host, rest = text[1:end], text[end + 1:]
            if rest.startswith(":"):
                port = rest[1:]
        elif text.isdigit():
            host, port = DEFAULT_IPP[0], text
        elif text.count(":") == 1:
            host, port = text.split(":")
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise UsageError(f"bad port in {text!r}")
        return cls(host or DEFAULT_IPP[0], int(port))


def build_app(ctx: GatewayContext) -> tuple[web.Application, IppDoor]:
    """The aiohttp application: IPP routes, then the web page's."""
    app = web.Application(client_max_size=ctx.settings.max_body)
    door = IppDoor(ctx)
    app.add_routes(door.routes())
    web_routes = _web_routes(ctx)
    if web_routes:
        app.add_routes(web_routes)
    app["printnet.ctx"] = ctx
    app["printnet.ipp"] = door
    return app, door


def _web_routes(ctx: GatewayContext) -> list[web.AbstractRouteDef]:
    try:
        from printnet.gateway import web as web_door  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        log.warning("printnet.gateway.web is not installed: no web page")
        return []
    routes: list[web.AbstractRouteDef] = web_door.routes(ctx)
    return routes


def ssl_context(ctx: GatewayContext) -> ssl.SSLContext | None:
    s = ctx.settings
    if s.cert is None:
        return None
    sc = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sc.load_cert_chain(str(s.cert), str(s.key) if s.key else None)
    return sc


async def serve(ctx: GatewayContext, ipp: Listen, lpd: Listen | None,
                ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """Run the doors until `stop` is set (or SIGTERM/SIGINT)."""
    # Submitting waits for the disk: many requests may be in their group commit at once
    # (context._Committer), so the thread pool is wider than the default.
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="gateway"))
    app, _ = build_app(ctx)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=ctx.settings.timeout)
    await runner.setup()
    # Socket activation (etc/systemd/printnet-gateway.socket): the service manager
    # bound the ports (515 needs no root daemon); use its listening sockets, never
    # bind our own for a role it passed.  Told apart by name (ipp, lpd) or port.
    inherited = systemd.inherited_sockets()
    ipp_socks = systemd.pick(inherited, "ipp", ipp.port)
    lpd_socks = systemd.pick(inherited, "lpd", lpd.port) if lpd is not None else []
    sites: list[web.BaseSite] = [
        web.SockSite(runner, sock, ssl_context=ssl_context(ctx), shutdown_timeout=GRACE)
        for sock in ipp_socks
    ] or [web.TCPSite(runner, ipp.host, ipp.port, ssl_context=ssl_context(ctx),
                      shutdown_timeout=GRACE, reuse_address=True)]
    for site in sites:
        await site.start()
    servers: list[asyncio.AbstractServer] = []
    if lpd is not None:
        from printnet.gateway import lpd as lpd_door  # type: ignore[attr-defined,unused-ignore]

        if lpd_socks:
            servers += [await lpd_door.start(ctx, lpd.host, lpd.port, sock=sock)
                        for sock in lpd_socks]
        else:
            servers.append(await lpd_door.start(ctx, lpd.host, lpd.port))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    addresses = [_bound(s) for site in sites
                 for s in getattr(site._server, "sockets", None) or []]
    for server in servers:
        addresses += [f"lpd {_bound(s)}" for s in getattr(server, "sockets", None) or []]
    log.info("gateway ready: ipp %s (AUTH %s)", ", ".join(addresses),
             ctx.settings.auth.upper())
    print("printnet gateway: listening on " + ", ".join(addresses), flush=True)
    if ready is not None:
        ready.set()
    notifier = systemd.Notifier()  # Type=notify: READY=1 once the doors listen
    notifier.ready(f"gateway: {', '.join(addresses)}")
    try:
        await stop.wait()
    finally:
        notifier.stopping("gateway: stopping")
        for server in servers:
            server.close()
        await runner.cleanup()
        for server in servers:
            await server.wait_closed()


def _bound(sock: object) -> str:
    name = sock.getsockname()  # type: ignore[attr-defined]
    host, port = name[0], name[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run(spool: Path, etc: Path, ipp: Listen, lpd: Listen | None) -> None:
    """The blocking entry point of `printnet gateway`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    ctx = GatewayContext(spool, etc)
    ctx.config()  # a broken etc/ fails now, with its file and line
    s = ctx.settings
    if s.auth == "basic" and not s.users and s.guest is None and not s.networks:
        raise ConfigError(s.source, 0, f"AUTH BASIC, but {s.users_file} has no users: "
                          "nobody could print (printnet gateway --set-password USER)")
    owner = os.stat(spool).st_uid
    if os.geteuid() not in (0, owner):
        # Intake lets only root and the service account (the spool's owner) submit
        # for others: every job for another user would be rejected.
        log.warning("running as uid %d, not as the spool's owner (uid %d, the service "
                    "account): the servers will reject jobs submitted for other users",
                    os.geteuid(), owner)
    asyncio.run(serve(ctx, ipp, lpd))
