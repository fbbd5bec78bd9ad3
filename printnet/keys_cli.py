"""`printnet keys`: create, list, rotate and export a print server's sealing keys.

Click commands only (registered on the main group by `printnet.cli`); the keys
themselves are `printnet.keys`.  Run them as the service account on the
server's host: the private keys go to its local keys folder, the public halves
to each spool it serves (servers/<kid>.pub), where stations read them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _context(ctx: click.Context, keys_dir: Path | None, name: str | None) -> tuple[
    Path, str, list[Any]
]:
    from printnet import config as config_mod
    from printnet import keys
    from printnet.spool.layout import Spool

    root = ctx.find_root()
    obj = root.obj
    source = root.get_parameter_source("spool")
    spool_given = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
    try:
        cfg = config_mod.load(obj["etc"], server_name=name)
        spools = [obj["spool"]] if spool_given else list(cfg.server.spools)
        configured, server = cfg.server.keys, cfg.server.name
    except Exception:
        if not spool_given and not obj["spool"].exists():
            raise
        spools, configured = [obj["spool"]], None
        server = name or config_mod.default_server_name()
    folder = keys.keys_folder(keys_dir, configured)
    return folder, server, [Spool(Path(s)) for s in spools]


_KEYS_OPT = click.option(
    "--keys", "keys_dir", type=click.Path(path_type=Path), envvar="PRINTNET_KEYS",
    help="Local folder of the private keys (env PRINTNET_KEYS; default: KEYS in "
         "server.cmd, else /var/lib/printnet/keys). Never on the spool.")
_NAME_OPT = click.option("--name", help="Server name (default: SERVER NAME= in server.cmd).")


@click.group()
def keys() -> None:
    """Sealing keys (SEAL=ON): documents on the spool are encrypted to them.

    Private keys stay in a local 0700 folder of 0600 files; the public halves
    are published on the spool (servers/<kid>.pub) for stations.  Rotation
    keeps old private keys, so jobs sealed to them still print.
    """


@keys.command()
@_KEYS_OPT
@_NAME_OPT
@click.pass_context
def create(ctx: click.Context, keys_dir: Path | None, name: str | None) -> None:
    """Create a key pair and publish its public key."""
    from printnet import keys as keys_mod

    folder, server, spools = _context(ctx, keys_dir, name)
    key = keys_mod.create(folder, server, spools)
    click.echo(f"{key.kid} created in {folder}; published on "
               + ", ".join(str(s.root) for s in spools))


@keys.command()
@_KEYS_OPT
@_NAME_OPT
@click.pass_context
def rotate(ctx: click.Context, keys_dir: Path | None, name: str | None) -> None:
    """Create and publish a new key; unpublish (but keep) this server's older ones."""
    from printnet import keys as keys_mod

    folder, server, spools = _context(ctx, keys_dir, name)
    key, retired = keys_mod.rotate(folder, server, spools)
    click.echo(f"{key.kid} created and published; retired (kept for queued jobs): "
               + (", ".join(retired) or "none"))


@keys.command(name="list")
@_KEYS_OPT
@_NAME_OPT
@click.option("--json", "as_json", is_flag=True, help="One JSON object {local, published}.")
@click.pass_context
def list_(ctx: click.Context, keys_dir: Path | None, name: str | None, as_json: bool) -> None:
    """This server's keys (current and retired) and the keys published on the spool."""
    from printnet import keys as keys_mod
    from printnet.errors import SealError

    folder, _, spools = _context(ctx, keys_dir, name)
    try:
        local = keys_mod.local_keys(folder)
    except SealError:
        local = []
    published = [(s, r) for s in spools for r in keys_mod.published(s)]
    if as_json:
        click.echo(json.dumps({
            "local": [{"kid": k.kid, "server": k.server, "created": k.created,
                       "retired": k.retired} for k in local],
            "published": [{"kid": r.kid, "server": r.server, "spool": str(s.root)}
                          for s, r in published],
        }))
        return
    click.echo(f"keys folder {folder}:")
    for k in local:
        click.echo(f"  {k.kid}  {k.server:<12} {k.created}  "
                   + ("retired" if k.retired else "current"))
    if not local:
        click.echo("  (none)")
    for s in spools:
        here = [r for sp, r in published if sp == s]
        click.echo(f"published on {s.root}:")
        for r in here:
            click.echo(f"  {r.kid}  {r.server}")
        if not here:
            click.echo("  (none: stations cannot seal)")


@keys.command()
@_KEYS_OPT
@_NAME_OPT
@click.argument("kid", required=False)
@click.pass_context
def export(ctx: click.Context, keys_dir: Path | None, name: str | None,
           kid: str | None) -> None:
    """Print a public key record (default: this server's newest current key).

    Copy it to servers/<kid>.pub of another spool to let its stations seal to it."""
    from printnet import keys as keys_mod
    from printnet.errors import UsageError

    folder, _, _ = _context(ctx, keys_dir, name)
    local = keys_mod.local_keys(folder)
    chosen = [k for k in local if k.kid == kid] if kid else [k for k in local if not k.retired]
    if not chosen:
        raise UsageError(f"no key {kid} in {folder}" if kid else f"no current key in {folder}")
    click.echo(json.dumps(keys_mod.public_record(chosen[-1])))
