"""Benchmarks of the fine-tuning autopilot: ``make bench`` (``python -m bench``).

They are scripts that print figures (one table, and the same figures as JSON in
``bench-results/latest.json``), never timed assertions in tests. See
:mod:`bench.run` for what is measured and README's "Performance" section for the
latest figures.
"""
