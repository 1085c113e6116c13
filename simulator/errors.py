"""Exceptions raised on bad input, each with a message that says what to fix.

    SimulatorError
     ├── UsageError            (bad command-line or scenario value; exit status 2)
     └── RecordingError        (a malformed or truncated phone recording; names file and line)
"""


class SimulatorError(Exception):
    """Base of every error the simulator raises on purpose."""


class UsageError(SimulatorError, ValueError):
    """An argument or option has a value the simulator cannot use."""


class RecordingError(SimulatorError, ValueError):
    """A Sensor Logger export is malformed; the message names the file and the line."""
