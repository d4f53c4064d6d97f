"""Model formats: how a deployable file is built from a source model for each precision."""
