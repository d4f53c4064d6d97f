"""Runtime adapters: each knows whether it is available, its version, how to load a model
file and run a batch. Imports of the runtime itself happen inside the functions."""
