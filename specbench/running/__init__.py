"""(4-5) Running the protocol: jobs, presets, one run, executors, sweeps, tuning, studies, asv's runs."""
