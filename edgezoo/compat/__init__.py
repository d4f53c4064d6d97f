"""Operator support tables that no runtime on this machine can answer for (accelerators
that are not attached), kept as data with their source."""
