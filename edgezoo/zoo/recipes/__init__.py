"""Reproducible training recipes for the models the project trains itself."""
