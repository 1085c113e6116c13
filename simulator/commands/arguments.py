"""What the subcommands' options share: the argparse `type=` functions (an
`ArgumentTypeError` is argparse's usage error: the message, exit status 2) and the
`--progress` choice."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TypeAlias

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

MAX_HOURS = 8784
PROGRESS_CHOICES = ("auto", "always", "never")
# --number-format: how upload envelopes write floats (`simulator.sensors.encode.NumberFormat`)
NUMBER_FORMATS = ("float32", "float64", *(f"round{n}" for n in range(10)), "orgjson",
                  "orgjson64")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def hours(text: str) -> float:
    value = positive_float(text)
    if value > MAX_HOURS:
        raise argparse.ArgumentTypeError(f"at most {MAX_HOURS} hours (a leap year), got {text}")
    return value


def seed(text: str) -> int:
    try:  # decimal, or 0x.. / 0o.. / 0b..
        value = int(text, 0) if text[1:2].isalpha() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be >= 0, got {value}")
    return value


def show_progress(choice: str) -> bool:
    """Whether `--progress CHOICE` shows progress: always, never, or (auto) when standard
    error is a terminal."""
    return choice == "always" or (choice == "auto" and sys.stderr.isatty())
