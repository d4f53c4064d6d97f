"""Accelerators: operator placement and the compiler step of an NPU or TPU."""
