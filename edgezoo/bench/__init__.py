"""Measurements: accuracy and fidelity against fp32, latency and memory on the runtime.
Functions return typed results and never print."""
