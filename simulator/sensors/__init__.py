"""The workload: realistic phone sensor streams and the batches the app uploads.

Public entry points:
- `FleetConfig`, `FleetGenerator`: a vectorised fleet of synthetic phones;
- `encode_lines`, `NumberFormat`: upload envelopes as JSON Lines (review §4.2 payload);
- `BatchBlock`: the columnar batches every producer hands to the encoder.
"""

from simulator.sensors.batch import BatchBlock
from simulator.sensors.encode import NumberFormat, encode_lines, reference_line
from simulator.sensors.generator import FleetConfig, FleetGenerator
from simulator.sensors.imperfections import Imperfections

__all__ = [
    "BatchBlock",
    "FleetConfig",
    "FleetGenerator",
    "Imperfections",
    "NumberFormat",
    "encode_lines",
    "reference_line",
]
