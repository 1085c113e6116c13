"""The package's vocabulary types: numpy arrays of int64, float64 and bytes, the progress
callback, and the names of the aggregate tables and of the projection models.

Invariant: aliases only; nothing here runs or imports from the rest of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bytes = npt.NDArray[np.bytes_]
Progress = Callable[[str], None]
Table = Literal["sensor_aggregates_5m", "sensor_aggregates_daily"]
Model = Literal["occupancy", "saturating", "power"]
