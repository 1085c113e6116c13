"""What a killed or interrupted ggsim leaves behind: owned directories and their sweep
(pure file logic, then a real orphaned PostgreSQL), SIGTERM stopping `ggsim run` as
Ctrl-C does, and a SIGKILLed run whose backend process stops by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil
import pytest

from simulator.backend.postgres import DIR_PREFIX, stop_postmaster
from simulator.cli import EXIT_INTERRUPTED
from simulator.fleet.runner import PHONE_DIR_PREFIX
from simulator.fleet.trace import read
from simulator.leftovers import (
    OWNER_FILE,
    _identity,
    make_owned_dir,
    orphans,
    owner_alive,
    sweep,
)

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *args: str) -> str:
    """Run `code` in a fresh interpreter (it may kill itself); its stdout."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr
    return done.stdout.strip()


def test_a_directory_whose_owner_runs_is_left_alone(tmp_path: Path) -> None:
    mine = make_owned_dir("gg-test-", tmp_path)
    assert owner_alive(mine) is True
    assert orphans("gg-test-", tmp_path) == []
    assert sweep("gg-test-", tmp_path) == []
    assert mine.is_dir()


def test_a_directory_whose_owner_died_is_swept(tmp_path: Path) -> None:
    left = Path(_python("import sys; from simulator.leftovers import make_owned_dir; "
                        "d = make_owned_dir('gg-test-', sys.argv[1]); "
                        "(d / 'phone.db').write_bytes(b'x'); print(d)", str(tmp_path)))
    mine = make_owned_dir("gg-test-", tmp_path)
    other_kind = make_owned_dir("gg-other-", tmp_path)
    seen: list[Path] = []
    assert owner_alive(left) is False
    assert sweep("gg-test-", tmp_path, before_remove=seen.append) == [left]
    assert seen == [left]
    assert not left.exists() and mine.is_dir() and other_kind.is_dir()


def _owned_by(directory: Path, **changes: object) -> Path:
    """`directory` with an owner file naming this process, but for `changes`."""
    directory.mkdir()
    me = _identity(os.getpid())
    assert me is not None
    (directory / OWNER_FILE).write_bytes(orjson.dumps({**me, **changes}))
    return directory


def test_a_reused_pid_is_not_taken_for_the_owner(tmp_path: Path) -> None:
    me = _identity(os.getpid())
    assert me is not None and me["ticks"] is not None
    # this process's pid, but another start: the owner was an earlier process
    left = _owned_by(tmp_path / "gg-test-reused", ticks=me["ticks"] - 1, created=1.0)
    assert orphans("gg-test-", tmp_path) == [left]


def test_an_owner_from_before_the_machine_restarted_is_gone(tmp_path: Path) -> None:
    left = _owned_by(tmp_path / "gg-test-boot", boot="another-boot")
    assert orphans("gg-test-", tmp_path) == [left]


def test_an_owner_in_another_pid_namespace_cannot_be_judged(tmp_path: Path) -> None:
    other = _owned_by(tmp_path / "gg-test-ns", pid_ns=1, ticks=0)  # a container's
    assert owner_alive(other) is None
    assert sweep("gg-test-", tmp_path) == [] and other.is_dir()


def test_a_wall_clock_step_does_not_make_a_live_owner_dead(tmp_path: Path) -> None:
    # create_time() moves when NTP steps the clock; the tick count does not
    mine = _owned_by(tmp_path / "gg-test-stepped", created=1.0)
    assert owner_alive(mine) is True


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory away needs root")
def test_another_users_directory_is_never_touched(tmp_path: Path) -> None:
    theirs = _owned_by(tmp_path / "gg-test-theirs", boot="another-boot")
    os.chown(theirs, 65534, 65534)
    assert orphans("gg-test-", tmp_path) == []


@pytest.mark.parametrize("owner", [None, b"not json", b'{"pid": "x"}'])
def test_a_directory_without_a_readable_owner_is_never_touched(
        tmp_path: Path, owner: bytes | None) -> None:
    other = tmp_path / "gg-test-unknown"
    other.mkdir()
    if owner is not None:
        (other / OWNER_FILE).write_bytes(owner)
    assert owner_alive(other) is None
    assert sweep("gg-test-", tmp_path) == []
    assert other.is_dir()


def _postmaster(directory: Path) -> psutil.Process:
    pid = int((directory / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])
    return psutil.Process(pid)


def test_a_postgres_left_by_a_killed_process_is_stopped_and_deleted() -> None:
    left = Path(_python(
        "import os, signal; from simulator.backend.postgres import start_embedded; "
        "d = start_embedded(); print(d._directory, flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"))
    postmaster = _postmaster(left)
    assert postmaster.is_running(), "the planted orphan: a server nobody will stop"
    assert left in orphans(DIR_PREFIX)
    assert left in sweep(DIR_PREFIX, before_remove=stop_postmaster)
    assert not left.exists()
    _, alive = psutil.wait_procs([postmaster], timeout=10)
    assert alive == []


def test_stop_postmaster_spares_a_process_the_stale_pid_file_names(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (pgdata / "postmaster.pid").write_text(f"{bystander.pid}\n{pgdata}\n")
        stop_postmaster(tmp_path, timeout_s=1)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def _database_dir(owner_pid: int) -> Path:
    """The embedded PostgreSQL directory that process `owner_pid` made."""
    for directory in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        owner = directory / OWNER_FILE
        if owner.is_file() and orjson.loads(owner.read_bytes())["pid"] == owner_pid:
            return directory
    raise AssertionError(f"process {owner_pid} made no PostgreSQL directory")


def _start_run(report: Path, phones: Path, *, sigint_ignored: bool = False
               ) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """`ggsim run smoke` as a process, once its phones have files; with the processes
    it started: the backend (a child) and PostgreSQL (pg_ctl leaves it to init).
    `sigint_ignored`: as a shell starts a background job (`ggsim run &`)."""
    phones.mkdir()
    command = [sys.executable, "-m", "simulator.cli", "run", "smoke", "--report",
               str(report), "--phone-dir", str(phones), "--progress", "never"]
    if sigint_ignored:  # the disposition survives exec
        command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(phones.glob(f"{PHONE_DIR_PREFIX}*/phone-*.db")):
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the run did not reach its phones"
        time.sleep(0.1)
    (server,) = [c for c in psutil.Process(run.pid).children(recursive=True)
                 if "serve" in c.cmdline()]
    return run, [server, _postmaster(_database_dir(run.pid))]


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background"])
def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path: Path, sigint_ignored: bool) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "summary.json").write_text('{"from": "an earlier run"}')
    run, started = _start_run(report, tmp_path / "phones", sigint_ignored=sigint_ignored)
    if sigint_ignored:  # the planted condition holds: asyncio installs no Ctrl-C handler
        status = Path(f"/proc/{run.pid}/status").read_text()
        ignored = int(status.split("SigIgn:")[1].split()[0], 16)
        assert ignored & (1 << (signal.SIGINT - 1))
    database = _database_dir(run.pid)
    run.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    run.send_signal(signal.SIGTERM)  # CI sends more than one: cleanup still finishes
    _, err = run.communicate(timeout=120)
    assert run.returncode == EXIT_INTERRUPTED, err
    assert "ggsim run: interrupted" in err
    assert "Traceback" not in err and "never awaited" not in err
    _, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], "the backend or PostgreSQL outlived the run"
    assert not database.exists()
    assert list((tmp_path / "phones").iterdir()) == [], "phone files left behind"
    assert not (report / "summary.json").exists(), "an earlier run's summary looks like this one's"
    header, events = read(report / "trace.jsonl.gz")  # readable
    assert header["scenario"]["name"] == "smoke"
    assert not any(e.get("kind") == "footer" for e in events)  # and says it is unfinished


def test_a_sigkilled_run_leaves_nothing_serving_that_the_next_run_keeps(
        tmp_path: Path) -> None:
    phones = tmp_path / "phones"
    run, (server, postmaster) = _start_run(tmp_path / "report", phones)
    database = _database_dir(run.pid)
    run.kill()
    run.wait()
    # the backend process reads its life line (stdin) to the end and stops by itself
    _, alive = psutil.wait_procs([server], timeout=30)
    assert alive == []
    # PostgreSQL and the phone files are left for the next run's sweep
    assert postmaster.is_running()
    (left_phones,) = orphans(PHONE_DIR_PREFIX, phones)
    assert database in sweep(DIR_PREFIX, before_remove=stop_postmaster)
    assert sweep(PHONE_DIR_PREFIX, phones) == [left_phones]
    _, alive = psutil.wait_procs([postmaster], timeout=10)
    assert alive == [] and not database.exists() and not left_phones.exists()
