"""A power-loss filesystem for tests (FUSE) and the harness that cuts printnet's power.

* `model` — the pure model: what is durable, what a cut may keep (the reference).
* `daemon` — the FUSE filesystem serving the model, with cut points and EIO.
* `mount` — start, command, cut and unmount it from a test or a script.
* `harness` — `scripts/powerloss`: stations and a server on it, cut, reboot, check.

`model`, `daemon` and `mount` know nothing of printnet.
"""
