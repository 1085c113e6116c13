"""The phones' arrival rate stepped up until a step breaks (`ggsim capacity`'s knee):
`locust -f loadtests/ramp_to_break.py --headless [--ramp-* options]`. See
docs/loadtest.md."""

from simulator.loadtest.locust_shapes import RampToBreak
from simulator.loadtest.user import PhoneUser

__all__ = ["PhoneUser", "RampToBreak"]
