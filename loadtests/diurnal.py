"""A fleet's simulated day: the phones online follow the persona mix's awake share.
`locust -f loadtests/diurnal.py --headless --scenario tenk-day --speed 144
--diurnal-phones 10000 --summary-dir runs/day` runs 24 simulated hours in 10 minutes;
each hour's planned and running phones and its uploads are in the summary. See
docs/loadtest.md (the assumption is stated there)."""

from simulator.loadtest.locust_shapes import Diurnal
from simulator.loadtest.user import PhoneUser

__all__ = ["Diurnal", "PhoneUser"]
