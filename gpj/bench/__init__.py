"""Side-by-side benchmarks: `python -m gpj.bench` (see `__main__`)."""
