"""(6) Deciding from records, torch-free: the claims' verdicts, performance profiles, the regression gate."""
