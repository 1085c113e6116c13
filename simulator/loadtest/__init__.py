"""Load tests with stock locust: the phone as a locust user (`loadtests/locustfile.py`).

Everything here except `user.py` is free of locust and gevent (importing locust patches
the standard library for gevent, so only the locustfile's process may do it): the phone's
schedule and operations through the app core, the cluster's phone allocation, the
ledgers gathered from workers and reconciled with the backend, the gates on locust's
statistics, and the summary `ggsim compare` reads.
"""
