"""The Flutter side's kept connections (`AppConnections`) and an operation dying with its
app process (`run_async(alive=...)`), on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from simulator.drivers.blocking import connect, run
from simulator.drivers.network import AppKilled, run_async
from simulator.fleet.connections import AppConnections
from simulator.phone import schema
from simulator.phone.effects import Http, HttpResponse, Sql


def phone_file(tmp_path: Path, name: str = "p.db") -> Path:
    path = tmp_path / name
    conn = connect(path)
    run(conn, schema.open_schema(3))
    conn.close()
    return path


def test_a_dead_apps_transaction_is_rolled_back_at_once_even_while_in_use(
        tmp_path: Path) -> None:
    path = phone_file(tmp_path)
    apps = AppConnections("WAL")
    killed = apps.acquire(0, path)  # an operation that will be killed mid-transaction
    waiting = apps.acquire(0, path)  # another operation of the app, out on a request
    assert killed is waiting
    killed.execute("BEGIN IMMEDIATE")
    killed.execute("INSERT INTO app_state (key, value, updated_at) VALUES ('k', 'v', 1)")
    apps.drop(0)
    assert not killed.in_transaction
    other = connect(path, timeout_s=0)  # the write lock is free now, not after 2.5 s
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    assert apps.acquire(0, path) is not killed  # a new process opens its own
    apps.release(killed)
    killed.execute("SELECT 1")  # still in use by the waiting operation
    apps.release(waiting)
    with pytest.raises(sqlite3.ProgrammingError):
        killed.execute("SELECT 1")
    apps.close_all()


def test_at_most_limit_connections_stay_open(tmp_path: Path) -> None:
    apps = AppConnections("WAL", limit=2)
    conns = []
    for phone in range(3):
        conn = apps.acquire(phone, phone_file(tmp_path, f"p{phone}.db"))
        apps.release(conn)
        conns.append(conn)
    with pytest.raises(sqlite3.ProgrammingError):  # the least recently used was closed
        conns[0].execute("SELECT 1")
    conns[2].execute("SELECT 1")
    assert apps.acquire(1, tmp_path / "p1.db") is conns[1]
    apps.close_all()


def test_an_operation_dies_with_its_app_at_its_next_effect(tmp_path: Path) -> None:
    path = phone_file(tmp_path)
    life = {"generation": 0}

    def operation():  # type: ignore[no-untyped-def]
        yield Sql("INSERT OR REPLACE INTO app_state (key, value, updated_at) VALUES ('a', '1', 1)")
        yield Http("GET", "/daily-pot")
        yield Sql("INSERT OR REPLACE INTO app_state (key, value, updated_at) VALUES ('b', '1', 1)")
        return "finished"

    async def transport(request: Http) -> HttpResponse:
        life["generation"] += 1  # another operation's kill ends the process meanwhile
        return HttpResponse(200, b"{}")
    with pytest.raises(AppKilled, match="process died"):
        asyncio.run(run_async(path, transport, operation(),
                              alive=lambda: life["generation"] == 0))
    conn = connect(path)
    assert conn.execute("SELECT key FROM app_state").fetchall() == [("a",)]
    conn.close()
    life["generation"] = 0
    assert asyncio.run(run_async(path, lambda r: asyncio.sleep(0, HttpResponse(200, b"{}")),
                                 operation(), alive=lambda: True)) == "finished"


def test_a_transaction_held_across_a_request_on_a_shared_connection_is_refused(
        tmp_path: Path) -> None:
    path = phone_file(tmp_path)
    conn = connect(path)

    def operation():  # type: ignore[no-untyped-def]
        yield Sql("BEGIN IMMEDIATE")
        yield Http("GET", "/daily-pot")

    async def transport(request: Http) -> HttpResponse:
        return HttpResponse(200, b"{}")
    with pytest.raises(RuntimeError, match="transaction across"):
        asyncio.run(run_async(path, transport, operation(), conn=conn))
    conn.close()
