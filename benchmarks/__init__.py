"""Measured performance of visualizer, printed as a table (never asserted).

Run ``python -m benchmarks`` from the repository root; ``--help`` lists the options.
One module per thing measured: ``throughput`` (capture vs the bare loop), ``app`` (the
running window: throughput, UI stalls, latency), ``memory``, ``attribution``, ``startup``
and ``syncs``; ``workloads``, ``loops``, ``timing``, ``options`` and ``report`` are shared.
"""
