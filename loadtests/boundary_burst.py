"""Phones on the 5-minute boundaries, or at their own phases, side by side:
`locust -f loadtests/boundary_burst.py --headless --boundary aligned --summary-dir runs/herd`
and the same with `--boundary phased --summary-dir runs/phased`; then
`ggsim compare runs/herd runs/phased`. See docs/loadtest.md."""

from simulator.loadtest.locust_shapes import BoundaryBurst
from simulator.loadtest.user import PhoneUser

__all__ = ["BoundaryBurst", "PhoneUser"]
