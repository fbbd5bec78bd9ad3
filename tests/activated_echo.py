"""A socket-activated program for tests/test_systemd.py: it never binds a socket.

It takes the sockets the service manager passed (`printnet.systemd.inherited_sockets`),
picks each role (``ipp``, ``lpd``) by name or, failing that, by the port given on the
command line, then answers one connection on each with one line:
``<role> <fd name> <local port> <pid> <LISTEN_FDS left in the environment>``.
Usage: ``activated_echo.py IPP_PORT LPD_PORT``.
"""

from __future__ import annotations

import os
import sys

from printnet import systemd


def main() -> None:
    ipp_port, lpd_port = (int(a) for a in sys.argv[1:3])
    inherited = systemd.inherited_sockets()
    names = {id(s): name for name, socks in inherited.items() for s in socks}
    left = os.environ.get("LISTEN_FDS", "-")
    for role, port in (("ipp", ipp_port), ("lpd", lpd_port)):
        socks = systemd.pick(inherited, role, port)
        if len(socks) != 1:
            sys.stderr.write(f"{role}: {len(socks)} sockets (inherited: {inherited})\n")
            sys.exit(1)
        sock = socks[0]
        conn, _ = sock.accept()
        with conn:
            local = sock.getsockname()[1]
            conn.sendall(f"{role} {names[id(sock)]} {local} {os.getpid()} {left}\n".encode())
    systemd.close_all(inherited)


if __name__ == "__main__":
    main()
