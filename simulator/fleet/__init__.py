"""The fleet: simulated time, scenarios, the runner and its trace."""
