"""The model zoo: cards as data (cards/*.toml), weight sources, builders and datasets."""
