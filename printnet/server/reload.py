"""Configuration reload: a running server takes changed etc/*.cmd without a restart.

Owns the `ConfigReload` part of `Server`: a cheap fingerprint of etc/*.cmd
(`config.stamp`) looked at every CONFIG_CHECK seconds at most; a file that
does not load is logged once and the last good configuration stays; a new one
is applied in place (printers added, changed, removed; shared disks added or
left; jobs assigned ahead handed back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from printnet import config as config_mod
from printnet.config import Config
from printnet.errors import (
    PrintnetError,
)
from printnet.server.disk import SpoolService
from printnet.server.printers import Printers

if TYPE_CHECKING:
    from printnet.server.process import Server

CONFIG_CHECK = 1.0  # seconds between looks at etc/*.cmd for changes (at most)


class ConfigReload(Printers):
    """The reload part of `Server` (a mixin: `Server` sets these attributes)."""

    loader: Callable[[], Config]
    _config_stamp: object
    _config_checked: float
    _config_problem: str | None

    def _watch(self, service: SpoolService) -> None:
        raise NotImplementedError

    def apply_config(self, config: Config) -> None:
        """Take a new configuration without a restart (printers, spools, settings)."""
        old = self.config
        if config.server.name != self.name:
            # Locks, leases and the status file carry the name: renaming needs a restart.
            self.event(f"server name {config.server.name} takes effect at the next start")
            config = replace(config, server=replace(config.server, name=self.name))
        self.config = config
        for name in list(self.backlog):
            self.hand_back(name)  # assigned ahead under the old configuration
        for name, printer in config.printers.items():
            worker = self.workers.get(name)
            if worker is None:
                self.workers[name] = self._make_worker(name)
                continue
            was = old.printers.get(name)
            worker.reconfigure(printer, config)
            if was is None or printer.setup != was.setup:
                # SETUP= changed: the operator mounted another form (until the
                # console's CP does it, editing printers.cmd is how a form is mounted).
                worker.mount(printer.setup)
                self.event(f"printer {name}: setup {printer.setup} mounted")
        for name in list(self.workers):
            if name not in config.printers and not self.workers[name].busy:
                self.workers.pop(name).stop(abandon=False)
        wanted = [Path(p).resolve() for p in config.server.spools]
        current = {s.root.resolve(): s for s in self.services}
        for root in wanted:
            if root not in current:
                service = SpoolService(cast("Server", self), root)
                service.start()
                self.services.append(service)
                self._watch(service)
        for root, service in current.items():
            if root not in wanted and not service.printing:
                service.stop()
                self.services.remove(service)
        self.wake.set()

    def _load_config(self) -> Config:
        return config_mod.load(self.config.etc, server_name=self.name)

    def reload_config(self, *, force: bool = False) -> bool:
        """Take etc/*.cmd again when they changed (looked at every CONFIG_CHECK s at most).

        A cheap fingerprint (`config.stamp`) decides; a file that does not load is
        logged once and the last good configuration stays.  Returns whether a new
        configuration was applied.
        """
        now = time.monotonic()
        if not force and now - self._config_checked < min(CONFIG_CHECK,
                                                          self.config.server.scan_interval):
            return False
        self._config_checked = now
        stamp = config_mod.stamp(self.config.etc)
        if stamp == self._config_stamp:
            return False
        # RACE: an edit during the load changes the stamp again: the next look reloads.
        self._config_stamp = stamp
        try:
            config = self.loader()
        except PrintnetError as exc:
            problem = str(exc)
            if problem != self._config_problem:
                self._config_problem = problem
                self.event(f"configuration not reloaded, keeping the last good one: {problem}")
            return False
        self._config_problem = None
        try:
            self.apply_config(config)
        except PrintnetError as exc:
            self.event(f"configuration reloaded with a problem: {exc}")
            return True
        self.event("configuration reloaded")
        return True
