"""Rows of the aggregate tables: the (5-minute window, geohash) and (day, geohash) cells
that simulated fleets really touch, modelled against fleet size beside review §5.3.

Review §5.3 says `sensor_aggregates_5m` grows by 26K rows a month and
`sensor_aggregates_daily` by 900 at 1K users: three active cells per 5-minute window
(8,640 windows in a 30-day month) and thirty a day (`review_arithmetic`). Here the cells
are counted on generated fleets and modelled two ways:

- curves of cells against fleet size n (`scipy.optimize.curve_fit`): a saturating
  K (1 - exp(-(n/s)^b)) and a power law a n^b, bootstrapped over seeds;
- an occupancy model, E[cells](n) = sum over cells j of 1 - (1 - p_j)^n, where p_j is the
  chance that one phone touches cell j (in a window, or in a day), estimated per 250 m
  ring and jackknifed over blocks of phones. Fitted curves chase the range they are
  fitted on; the occupancy model does not, so projections use it (`HeldOutFleet`
  repeats the check every run).

One job per module, each opening with its invariants; a module imports only modules
above it in this list:

- `_types`: the vocabulary types (arrays, the progress callback, table and model names);
- `counting`: what a cell is (exactly a row the aggregation job writes) and counting
  them; precision-6 geohashes as integer codes;
- `arithmetic`: what review §5.3's figures imply; 30-day months;
- `geometry`: geohash cells around the city and the rings the occupancy model pools;
- `fleet`: generating each seed's fleet on each date and measuring fleets of n phones;
- `occupancy`: the occupancy model and its jackknife;
- `curves`: the saturating and power-law fits and their bootstrap;
- `ceiling`: how many cells there are to touch at all;
- `report`: the report's dataclasses, its table and the held-out fleet;
- `projection`: rows a table gains at some users in some days (`project_rows`);
- `measure`: `measure_aggregate_cells`, which runs the above;
- `job`: `check_against_job`, the counts held to the real job's rows on PostgreSQL.

Names with a leading underscore are private to this package: its modules share them,
nothing outside it imports them (tests of the helpers aside).

Invariant: the report is a pure function of its arguments: bootstrap generators are
keyed by the seeds and sizes (`SeedSequence`); no wall clock is read.
"""

from __future__ import annotations

from simulator.capacity.aggregates.arithmetic import (
    DAYS_PER_MONTH,
    ReviewArithmetic,
    review_arithmetic,
)
from simulator.capacity.aggregates.ceiling import CityCeiling
from simulator.capacity.aggregates.counting import CellCount, count_block_cells, count_cells
from simulator.capacity.aggregates.curves import (
    CellFits,
    CurveFit,
    fit_curve,
    power_law,
    saturating,
)
from simulator.capacity.aggregates.fleet import FleetCells
from simulator.capacity.aggregates.geometry import geohash_cells_in_disc
from simulator.capacity.aggregates.job import JobCheck, check_against_job
from simulator.capacity.aggregates.measure import measure_aggregate_cells
from simulator.capacity.aggregates.occupancy import OccupancyEstimate, OccupancyModel
from simulator.capacity.aggregates.projection import project_rows
from simulator.capacity.aggregates.report import (
    AggregateCellsReport,
    DayCells,
    HeldOutFleet,
    RowProjection,
    SizeRow,
)

__all__ = [
    "DAYS_PER_MONTH",
    "AggregateCellsReport",
    "CellCount",
    "CellFits",
    "CityCeiling",
    "CurveFit",
    "DayCells",
    "FleetCells",
    "HeldOutFleet",
    "JobCheck",
    "OccupancyEstimate",
    "OccupancyModel",
    "ReviewArithmetic",
    "RowProjection",
    "SizeRow",
    "check_against_job",
    "count_block_cells",
    "count_cells",
    "fit_curve",
    "geohash_cells_in_disc",
    "measure_aggregate_cells",
    "power_law",
    "project_rows",
    "review_arithmetic",
    "saturating",
]
