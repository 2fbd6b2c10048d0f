"""suture's benchmarks: ``python -m bench [NAME ...]`` (``make bench`` runs them all).

Each benchmark is a module ``bench/<name>.py`` with ``run() -> dict[str, float | int | str]``.
The runner prints its table and writes ``bench/results/<name>.json`` (flat keys, units in the
key names). Figures are reported as ratios against a baseline measured in the same run.
"""
