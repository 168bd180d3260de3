"""Benchmarks for issue 7: feed serving, scheduling, dispatch and national scale.

Run them with ``python3 bench/run.py`` (see README.md, "Performance"). Nothing here is part
of the service; ``tests/test_bench_smoke.py`` keeps the pieces importable and working.
"""
