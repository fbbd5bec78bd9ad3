"""The benchmark driver behind `scripts/bench`: printnet and CUPS side by side.

Modules: `common` (timing, the discard sink, result rows), `printnet_bench`
(printnet's metrics), `cups` (a private cupsd and its metrics), `report`
(docs/BENCHMARKS.md and the plot), `run` (the entry point:
``python -m bench.run [--quick]``).  Nothing here is imported by printnet.
"""
