"""Arm Ethos-U microNPUs: Vela compiles the full-int8 model here and its own summary says
which operators run on the NPU, the SRAM and flash it needs and its cycle estimate. The NPU
configuration, system configuration and memory mode come from the profile."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgezoo.accelerators.base import Accelerator
from edgezoo.errors import PipelineError, last_line
from edgezoo.schemas.report import VelaSummary

KB = 1024


class EthosU(Accelerator):
    name = "ethos-u"
    description = "Arm Ethos-U55/U65 microNPU; the model is compiled by Vela (ethos-u-vela) at export"
    placement_needs_quantized = True
    options = {
        "npu": "Vela --accelerator-config, e.g. ethos-u55-128",
        "system_config": "Vela --system-config from its bundled vela.ini, e.g. Ethos_U55_High_End_Embedded",
        "memory_mode": "Vela --memory-mode, e.g. Shared_Sram",
    }

    def validate_options(self, options):
        super().validate_options(options)
        missing = [k for k in self.options if not options.get(k)]
        if missing:
            raise ValueError(f"accelerator ethos-u needs accelerator_options.{missing[0]}")

    def compile(self, model, options, out_dir):
        summary = run_vela(model, options, out_dir)
        return out_dir / "model_vela.tflite", summary


def run_vela(model_path: Path, options: dict, out_dir: Path) -> VelaSummary:
    """Compile with Arm's Vela and read its own summary: NPU vs CPU operators, SRAM, flash,
    cycles and the inference-time estimate, for the profile's NPU, system configuration and
    memory mode (recorded in the lineage)."""
    accelerator, system, memory_mode = options["npu"], options["system_config"], options["memory_mode"]
    exe = shutil.which("vela")
    if exe is None:
        raise PipelineError("Ethos-U targets need Arm's Vela compiler", hint="pip install 'edgezoo[micro]' (ethos-u-vela)")
    config = _vela_ini()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [exe, str(model_path), "--accelerator-config", accelerator, "--config", config,
               "--system-config", system, "--memory-mode", memory_mode, "--output-dir", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PipelineError(f"vela failed: {last_line(proc.stderr or proc.stdout)[:300]}")
        produced = Path(tmp) / f"{model_path.stem}_vela.tflite"
        summaries = sorted(Path(tmp).glob("*_summary_*.csv"))
        if not produced.is_file() or not summaries:
            raise PipelineError("vela ran but did not write its model and summary")
        out_dir.mkdir(parents=True, exist_ok=True)
        vela_model = out_dir / "model_vela.tflite"
        shutil.copyfile(produced, vela_model)
        with open(summaries[0], newline="") as fh:
            row = next(csv.DictReader(fh))
        (out_dir / "vela_summary.csv").write_bytes(summaries[0].read_bytes())
        (out_dir / "vela_summary.txt").write_text(_network_summary(proc.stdout), encoding="utf-8")
    # Vela names each operator it leaves on the CPU in a warning ("... Placing on CPU instead")
    cpu_placed = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if "Placing on CPU" in line]


    def count(kind: str):
        m = re.search(rf"{kind} operators = (\d+)", proc.stdout)
        return int(m.group(1)) if m else None

    def num(key):
        try:
            return float(row[key])
        except (KeyError, ValueError):
            return None

    return VelaSummary(
        accelerator=accelerator,
        system_config=system,
        memory_mode=memory_mode,
        vela_version=_vela_version(),
        npu_operators=count("NPU"),
        cpu_operators=count("CPU"),
        cpu_placed=tuple(cpu_placed),
        sram_bytes=(num("sram_memory_used") or 0) * KB,
        flash_bytes=(num("off_chip_flash_memory_used") or 0) * KB + (num("on_chip_flash_memory_used") or 0) * KB,
        npu_cycles=num("cycles_npu"),
        total_cycles=num("cycles_total"),
        inference_time_ms=(num("inference_time") or 0) * 1e3,
        macs=num("nn_macs"),
        method="Vela's own performance estimate for the configured NPU and memory system, not a measurement",
    )


def _network_summary(stdout: str) -> str:
    """Vela's human summary, without the run's warnings."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Network summary")), 0)
    return "\n".join(lines[start:]).strip() + "\n"


def _vela_ini() -> str:
    import importlib.util

    spec = importlib.util.find_spec("ethosu.vela")
    base = Path(spec.origin).parent.parent if spec and spec.origin else None
    ini = base / "config_files" / "Arm" / "vela.ini" if base else None
    if ini is None or not ini.is_file():
        raise PipelineError("Vela's bundled config_files/Arm/vela.ini was not found", hint="reinstall ethos-u-vela")
    return str(ini)


def _vela_version() -> str:
    from importlib.metadata import version

    return version("ethos-u-vela")
