"""One-time rewrites of the result files kept in `results/`, for layouts an older gpj wrote.
Each is run once over `results/` and its output committed; a rerun finds nothing left to do.
They sit above `gpj.experiments` and `gpj.report` (they use both), so that neither imports
the other's way up."""
