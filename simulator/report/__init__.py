"""Reports of a fleet run: a terminal summary, JSON for CI, a self-contained HTML page."""
