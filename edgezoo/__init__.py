"""edgezoo: a model zoo joined to a compression and export pipeline for edge targets.

The public API lives in :mod:`edgezoo.api`; importing this package stays cheap
(no torch, no runtimes) so the CLI starts fast.
"""

__version__ = "0.1.0"
