"""Helpers of the reliability suite (`tests/test_reliability_*.py`): release runs that can be
killed, invariants read from the state files and the hub's SQLite file, seeded release histories,
and the figures (budget, counters) that `docs/reliability.md` reports.
"""
