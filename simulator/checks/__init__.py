"""Oracles: invariants checked against real SQLite files and what the app believed."""
