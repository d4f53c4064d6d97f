"""Microcontroller analysis: measured tensor arena, flash/RAM verdicts with the largest
offenders, a labelled latency estimate, and Vela for Ethos-U NPUs."""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgezoo.errors import BudgetError, ModelFileError, PipelineError, require

KB = 1024


def integer_only(model_path: Path) -> None:
    """Refuse models that keep float operators: TFLM's int8 kernels (CMSIS-NN, ESP-NN,
    Ethos-U) cannot run them, and a float fallback on a Cortex-M is not what was asked."""
    from edgezoo.runtimes import litert

    floats = [o for o in litert.operators(model_path) if o["dtype"] == "float32"]
    if floats:
        ops = sorted({o["op"] for o in floats})
        raise ModelFileError(
            f"the int8 model keeps {len(floats)} float operator(s) ({', '.join(ops)}; first at layer {floats[0]['layer']!r}) "
            "that microcontroller int8 kernels cannot run",
            hint="replace those layers (e.g. hard-swish, squeeze-excite) or choose a non-microcontroller target",
        )


def tensor_sizes(model_path: Path) -> tuple[list[dict], list[dict]]:
    """(largest activation tensors, largest constant buffers), biggest first. A constant is
    a tensor no operator produces and the model does not take as input."""
    mod = require("ai_edge_litert.interpreter", package="ai-edge-litert", extra="litert", purpose="reading .tflite models")
    it = mod.Interpreter(model_path=str(model_path), experimental_op_resolver_type=mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    produced = {int(i) for o in it._get_ops_details() for i in o["outputs"]}
    inputs = {d["index"] for d in it.get_input_details()}
    acts, consts = [], []
    for t in it.get_tensor_details():
        size = int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize
        entry = {"name": t["name"], "shape": [int(d) for d in t["shape"]], "dtype": np.dtype(t["dtype"]).name, "bytes": size}
        (acts if t["index"] in produced or t["index"] in inputs else consts).append(entry)
    acts.sort(key=lambda e: -e["bytes"])
    consts.sort(key=lambda e: -e["bytes"])
    return acts[:5], consts[:5]


def memory_report(model_path: Path, target, arena_bytes: int, flash_model: Path | None = None) -> dict:
    """``flash_model``: the file the firmware embeds when it is not ``model_path`` (Vela's)."""
    mem = target.memory
    model_bytes = (flash_model or model_path).stat().st_size
    arena_with_headroom = int(np.ceil(arena_bytes * (1 + mem.arena_headroom) / 16) * 16)
    flash = model_bytes + (mem.runtime_flash_kb + mem.app_flash_kb) * KB
    ram = arena_with_headroom + mem.app_ram_kb * KB
    acts, consts = tensor_sizes(model_path)
    return {
        "model_bytes": model_bytes,
        "arena_measured_bytes": arena_bytes,
        "arena_headroom": mem.arena_headroom,
        "arena_bytes": arena_with_headroom,
        "flash_needed_bytes": flash,
        "ram_needed_bytes": ram,
        "flash_budget_bytes": mem.flash_kb * KB,
        "ram_budget_bytes": mem.ram_kb * KB,
        "flash_breakdown": {"model": model_bytes, "runtime_allowance": mem.runtime_flash_kb * KB, "application_allowance": mem.app_flash_kb * KB},
        "ram_breakdown": {"arena_with_headroom": arena_with_headroom, "application_allowance": mem.app_ram_kb * KB},
        "fits_flash": flash <= mem.flash_kb * KB,
        "fits_ram": ram <= mem.ram_kb * KB,
        "largest_activations": acts,
        "largest_constants": consts,
        "kernel_library": mem.kernel_library,
        "method": "arena: smallest size TFLite Micro's AllocateTensors accepts (binary search with the real interpreter), then one inference; flash/RAM allowances from the profile",
    }


def verdict_line(report: dict, target_id: str) -> str:
    fl, ram = report["flash_needed_bytes"] / KB, report["ram_needed_bytes"] / KB
    fb, rb = report["flash_budget_bytes"] / KB, report["ram_budget_bytes"] / KB
    ok = report["fits_flash"] and report["fits_ram"]
    head = "fits" if ok else "does not fit"
    return f"{head}: needs {fl:.0f} KB flash / {ram:.0f} KB RAM, {target_id} has {fb:.0f} / {rb:.0f}"


def require_fit(report: dict, target_id: str, allow: bool) -> None:
    if report["fits_flash"] and report["fits_ram"] or allow:
        return
    offenders = []
    if not report["fits_flash"] and report["largest_constants"]:
        c = report["largest_constants"][0]
        offenders.append(f"largest weights {c['name']!r} {c['bytes'] / KB:.0f} KB")
    if not report["fits_ram"] and report["largest_activations"]:
        a = report["largest_activations"][0]
        offenders.append(f"largest activation {a['name']!r} {list(a['shape'])} {a['bytes'] / KB:.0f} KB")
    raise BudgetError(
        verdict_line(report, target_id) + (f" ({'; '.join(offenders)})" if offenders else ""),
        hint="choose a smaller model or a larger target, or pass --allow-over-budget",
    )


def latency_estimate(card, target) -> dict:
    mem = target.memory
    cycles = card.macs * mem.cycles_per_mac
    return {
        "estimate_ms": cycles / (target.hardware.clock_mhz * 1e3),
        "method": f"estimate, not a measurement: {card.macs:,} MACs x {mem.cycles_per_mac} cycles/MAC at {target.hardware.clock_mhz} MHz",
        "cycles_source": mem.cycles_source,
    }


VELA_SYSTEM = "Ethos_U55_High_End_Embedded"
VELA_MEMORY_MODE = "Shared_Sram"


def run_vela(model_path: Path, accelerator: str, out_dir: Path) -> tuple[Path, dict]:
    """Compile with Arm's Vela and read its own summary: NPU vs CPU operators, SRAM, flash,
    cycles and the inference-time estimate. The system configuration and memory mode are
    Vela's defaults for a high-end embedded Ethos-U55, named explicitly and recorded."""
    exe = shutil.which("vela")
    if exe is None:
        raise PipelineError("Ethos-U targets need Arm's Vela compiler", hint="pip install 'edgezoo[micro]' (ethos-u-vela)")
    config = _vela_ini()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [exe, str(model_path), "--accelerator-config", accelerator, "--config", config,
               "--system-config", VELA_SYSTEM, "--memory-mode", VELA_MEMORY_MODE, "--output-dir", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PipelineError(f"vela failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1][:300]}")
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

    import re

    def count(kind: str):
        m = re.search(rf"{kind} operators = (\d+)", proc.stdout)
        return int(m.group(1)) if m else None

    def num(key):
        try:
            return float(row[key])
        except (KeyError, ValueError):
            return None

    summary = {
        "accelerator": accelerator,
        "system_config": VELA_SYSTEM,
        "memory_mode": VELA_MEMORY_MODE,
        "vela_version": _vela_version(),
        "npu_operators": count("NPU"),
        "cpu_operators": count("CPU"),
        "cpu_placed": cpu_placed,
        "sram_bytes": (num("sram_memory_used") or 0) * KB,
        "flash_bytes": (num("off_chip_flash_memory_used") or 0) * KB + (num("on_chip_flash_memory_used") or 0) * KB,
        "npu_cycles": num("cycles_npu"),
        "total_cycles": num("cycles_total"),
        "inference_time_ms": (num("inference_time") or 0) * 1e3,
        "macs": num("nn_macs"),
        "method": "Vela's own performance estimate for the configured NPU and memory system, not a measurement",
    }
    return vela_model, summary


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
