"""Stock locust, the simulator's phones: `locust -f loadtests/locustfile.py` (web UI) or
`--headless -u N -r R -t T`; with no `--host` the bundled backend starts on embedded
PostgreSQL. See docs/loadtest.md for the options, the gates and distributed runs."""

from simulator.loadtest.user import PhoneUser

__all__ = ["PhoneUser"]
