"""Drivers: executors of the sans-I/O core's effects on real SQLite files."""
