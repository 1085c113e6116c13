"""Every exception class of the simulator, in one tree (issue 14).

    Exception
     ├── SimulatorError             bad input or environment; the message says what to fix
     │    ├── UsageError            (ValueError) a value a user gave cannot be used; exit status 2
     │    │    ├── ScenarioError    a scenario file cannot be used; names the file and the key
     │    │    └── FleetFull        a load test asked for more phones than its fleet has
     │    ├── RecordingError        (ValueError) a malformed or truncated phone recording
     │    ├── PushError             a live push message that cannot be used (HTTP status)
     │    ├── SchemaError           a phone file's schema version this code cannot open
     │    ├── MigrationError        a backend migration failed or its history differs from the files
     │    ├── ApiLoadError          the backend refused a request of a capacity sample
     │    ├── StackError            the stack refused a fleet's set-up (registering its phones)
     │    └── InputError            a request the backend API refuses (HTTP status, error code)
     ├── InternalError              a bug of the calling code, not bad input: never caught
     │    ├── InvariantError        (ValueError) a caller's arguments break a stated precondition
     │    ├── StateError            (RuntimeError) a state the code rules out was found
     │    └── RoundTripError        (AssertionError) a storage layout lost what was uploaded
     └── SimulatedFault             not an error: a simulated event, control flow inside a run
          ├── AppKilled             the simulated app process dies in an operation
          └── NetworkError          a phone's request gets no response (timeout, offline, refused)

Three kinds, told apart by their base:

- `SimulatorError`: the simulator refuses its input (a command-line option, a scenario, a
  recording, a file, a request) or its environment failed it (a database, a migration).
  `ggsim` prints the message and exits with status 2; the message names what to fix.
- `InternalError`: code broke a rule the simulator states (a function's precondition, an
  invariant of its state). It is a bug to fix in the calling code, not in its input;
  nothing catches it, so `ggsim` ends with its traceback, which is the bug report.
- `SimulatedFault`: an event the simulation makes happen to a phone (its app is killed, its
  request gets no answer). These are not errors of the simulator and are never shown to a
  user: the phone's code handles them as the modelled app would, and the fleet run counts
  them.

The classes keep the builtin bases they had (`UsageError` is a `ValueError`, ...), so
`except ValueError` still catches them; the modules that defined them still export them.
This module imports nothing of `simulator` (it is the lowest layer).
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulator raises on purpose about its input or environment.

    Raised with a message that says what to fix. Callers that drive the simulator (the
    `ggsim` commands) catch it, print the message and exit with status 2; a caller of the
    Python API may catch it to report the message to its own user."""


class UsageError(SimulatorError, ValueError):
    """An argument or option has a value the simulator cannot use.

    Raised for a value a user chose: a command-line option, a scenario value, a name to
    pick among known ones. The message names the value and what is allowed; the user
    changes the value and runs the command again."""


class ScenarioError(UsageError):
    """A scenario file that cannot be used; the message names the file and the key.

    Raised by `simulator.fleet.scenario` when a scenario is missing, is not TOML, or has
    a value out of range (`$.network.loss_probability`). Fix the file (its JSON Schema,
    `ggsim scenario-schema`, gives the rules) or the command-line option that overrode it."""


class FleetFull(UsageError):
    """A load test asked for more phones than its fleet has.

    Raised by `simulator.loadtest.allocator` when every index below `--phones` is held:
    run at most that many locust users, or raise `--phones`."""


class RecordingError(SimulatorError, ValueError):
    """A Sensor Logger export is malformed; the message names the file and the line.

    Raised by `simulator.sensors.recording` while reading a recording (a zip member
    that cannot be read, not UTF-8, a truncated last line, a missing column, a value
    that is not a number). Fix or export the recording again."""


class PushError(SimulatorError):
    """A Sensor Logger live push message `ggsim live` cannot use.

    Raised by `simulator.sensors.push` for a malformed message (400, 413, 422; the
    message names the field) and by `simulator.sensors.live_session` for one of another
    device or session (409). `status` is the HTTP status the receiver answers with;
    nothing of the message is applied."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class SchemaError(SimulatorError):
    """The phone file's schema version is not one this code can open.

    Raised by `simulator.phone.schema.open_schema` for a version it does not know or a file
    newer than the wanted version (sqflite would refuse it too). Use a file of version 2
    or 3, or a new empty file."""


class MigrationError(SimulatorError):
    """A backend migration failed or the recorded history does not match the files.

    Raised by `simulator.backend.migrations`: no or duplicate migration files, a recorded
    migration whose file changed since (never silently re-applied), a statement that
    failed. Restore the migration file, or start from an empty database."""


class ApiLoadError(SimulatorError):
    """The backend refused or failed a request of the sample.

    Raised by `simulator.capacity.api_load` when a request of the capacity sample is not
    answered 2xx (the measurement would be of a different set of rows); the message names
    the request and the answer. Look at the backend's log for why it refused."""


class StackError(SimulatorError):
    """The stack a fleet runs against refused its set-up.

    Raised by `simulator.fleet.runner` when registering a phone (`POST /devices`) is not
    answered 201: the message names the device and the answer. Check that `--target`
    is a greengains backend and that its database is migrated."""


class InputError(SimulatorError):
    """A request the API refuses: HTTP status, a stable error code, and what is wrong.

    Raised inside the backend's request handlers (and by the upload parser they share
    with the capacity workload). The server's route turns it into its JSON answer with
    `status` (400 malformed JSON, 401/403 credentials, 409 conflict, 413 too large, 422
    invalid field, 429 rate limited, 503 `pot_contended`: retry) and `body()`, so it never
    leaves the server: the client reads `error` and `detail` and fixes its request;
    `retry_after_s`, when set, becomes the answer's `Retry-After` header."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.path = status, code, detail, path
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, str]:
        out = {"error": self.code, "detail": self.detail}
        if self.path:
            out["path"] = self.path
        return out


class InternalError(Exception):
    """Base of the errors that mean a bug of the calling code, not bad input.

    Raised when code breaks a rule the simulator states. Nothing catches it on purpose
    (`ggsim` ends with its traceback): fix the calling code, not its input."""


class InvariantError(InternalError, ValueError):
    """A caller's arguments break a precondition the function states.

    Raised by functions of the Python API whose callers are other code, never a user's
    value directly: a layout name not in `LAYOUTS`, runs of two variants where one is
    wanted, inconsistent `BatchBlock` arrays, no uploads to store. The message names the
    argument and what it must be; fix the call."""


class StateError(InternalError, RuntimeError):
    """A state the code rules out was found.

    Raised when a guard that should make something impossible did not: an operation holds
    a transaction across a request on a shared connection, the backend's pot moved without
    its event row. Fix the code that reached that state (the operation, the guard)."""


class RoundTripError(InternalError, AssertionError):
    """A layout does not hold what was uploaded (a broken invariant, not bad input).

    Raised by the storage-layout measurement when a layout's rows, counted or made back
    into the payload JSON, differ from the uploads: its numbers would measure different
    data. Fix the layout's load or read-back code."""


class SimulatedFault(Exception):
    """Base of the events the simulation makes happen to a phone; not errors.

    Raised by the drivers and the fault models into a phone's operation, as control flow
    inside a run. The phone's code handles them as the modelled app would and the fleet
    run counts them; they are never an error of the simulator and never shown to a user."""


class AppKilled(SimulatedFault):
    """The app was killed in the middle of an operation (a fault, `kill_after`).

    Raised by `simulator.drivers.network.run_async` when the app dies after `kill_after`
    effects, or when its process already died (`alive`). What was committed and what the
    server got stays; the caller (the fleet's phone) counts the kill and goes on from what
    the phone's file holds, as the restarted app would."""


class NetworkError(SimulatedFault):
    """No response: `kind` is "timeout", "offline" or "refused" (a timeout may have been
    delivered; the client cannot know).

    Raised by a transport (the fault model in front of the backend, or a real request that
    failed) and thrown into the phone's operation, which handles it as the app would
    (keeps the upload queued, retries later)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
