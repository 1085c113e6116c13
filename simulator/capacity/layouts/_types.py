"""The package's vocabulary: numpy array aliases, the progress callback, and how instants
are written (milliseconds since `EPOCH`; the JSON's ISO-8601 UTC in whole seconds).

Invariant: aliases and constants only; nothing here runs or imports from the rest of the
package.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Progress = Callable[[str], None]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
Bool = npt.NDArray[np.bool_]
_ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
