"""What an accelerator plug-in provides: where each operator of the (quantized) model
runs, the compiler step that makes the device's file, and what to do on the device.
Options come from the profile's ``accelerator_options`` table and are checked by
``validate_options``."""

from __future__ import annotations

from pathlib import Path


class Accelerator:
    name: str = ""
    description: str = ""
    placement_needs_quantized: bool = True  # placement is decided on the int8 model the compiler takes
    options: dict[str, str] = {}  # option -> what it means (documented in `edgezoo formats`)

    def validate_options(self, options: dict) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"accelerator {self.name} has no option {unknown[0]!r} (it takes {', '.join(sorted(self.options)) or 'none'})")

    def place(self, ops: list[dict], options: dict) -> list[dict]:
        """Rewrite each operator's placement for this accelerator (default: leave it)."""
        return ops

    def fallbacks(self, report) -> list:
        """Rows of an operator report that leave the accelerator for the host CPU."""
        return []

    def compile(self, model: Path, options: dict, out_dir: Path):
        """Compile ``model`` for the device here, when the compiler runs on this machine:
        returns (file the firmware embeds, summary record) or (model, None)."""
        return model, None

    def deploy_notes(self, plan) -> list[str]:
        return []
