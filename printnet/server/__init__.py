"""A print server: takes requests in, schedules them, prints them, recovers.

The package, by what each module owns:

- `process`: `Server`, the process's life cycle (start, the round over the
  shared disks, run, calls between cycles, status, shutdown) and signals;
- `printers`: its printers and their workers (slots, jobs assigned ahead,
  handing back, abandoning, mounting, intake checks, one queue order per
  printer across disks);
- `reload`: configuration reload without a restart;
- `disk`: `SpoolService`, one shared disk's service (lease, intake, sweep,
  the locked cycle's shell, status);
- `cycle`: the pure planner of the locked cycle (`plan_cycle`);
- `hints`: change hints on new/ and the cleaner thread.

Job state changes are `printnet.verbs`'.  The engine imports no user
interface: the CLI sets `Server.front_door` (the console's control socket).
Throughput and its measures: docs/BENCHMARKS.md; the operator's page:
docs/SERVER.md.
"""

from printnet.server.disk import MASTER_LOCK, SpoolService, server_lock_name
from printnet.server.process import STOP_GRACE, Counters, Server, install_signal_handlers

__all__ = ["MASTER_LOCK", "STOP_GRACE", "Counters", "Server", "SpoolService",
           "install_signal_handlers", "server_lock_name"]
