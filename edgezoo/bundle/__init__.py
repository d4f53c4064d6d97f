"""Bundles: manifest, checksums, rendered card, runner and verification."""
