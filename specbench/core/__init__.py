"""(0) The run record and what it is measured in: errors, atomic writes, defaults, measures, the work file."""
