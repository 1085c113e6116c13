"""The phone app's on-device database code, written once as a sans-I/O core.

Operations are generators that yield `effects.Sql` statements and receive the rows;
they perform no I/O. Drivers (`simulator.drivers`) run them on real SQLite files.
"""
