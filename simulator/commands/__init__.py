"""The subcommands of `ggsim`, one module each (`ggsim scenario-schema` is
`scenario_schema`; `ggsim capacity` is `simulator.capacity_command`, its composition root).

Every module has the same two functions: `add_parser(sub)` declares the subcommand, its
options and its help texts; `run(args)` does the work and returns the exit status. A
command's heavy imports are made inside `run`, so that `ggsim --help` and a usage error
stay fast. `simulator.cli` builds the parser from these modules and turns errors and
signals into exit statuses; nothing here imports it.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED = 0, 1  # what a command returns: success, a check failed
