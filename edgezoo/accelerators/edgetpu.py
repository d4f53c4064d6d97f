"""Coral Edge TPU: placement from Coral's documented operator table (kept as data in
``edgezoo/compat/edgetpu_ops.toml``, since the TPU is not attached here), applying the
compiler's rule that everything after the first unmapped operator runs on the CPU."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from edgezoo.accelerators.base import Accelerator


class EdgeTpu(Accelerator):
    name = "edgetpu"
    description = "Coral Edge TPU (int8 only); edgetpu_compiler runs on x86-64 Debian, on the user's machine"

    def place(self, ops, options):
        table = edgetpu_table()
        cut = False
        for i, o in enumerate(ops):
            if o["op"] in ("QUANTIZE", "DEQUANTIZE") and i in (0, len(ops) - 1):
                o["placement"] = "CPU (input/output conversion)"
                continue
            in_table = o["op"] in table["supported"]
            ok = in_table and o.get("dtype") in ("int8", "uint8", "int32")
            if not ok and not cut:
                cut = True
                o["note"] = "first operator the Edge TPU cannot run: " + ("not in Coral's supported table" if not in_table else f"{o.get('dtype')} tensors, not int8")
            if ok and not cut:
                o["placement"] = "Edge TPU"
                if o["op"] in table["notes"]:
                    o["note"] = table["notes"][o["op"]]
            else:
                o["placement"] = "CPU (after the Edge TPU graph)" if ok else "CPU (Edge TPU cannot run it)"
        return ops

    def fallbacks(self, report):
        return [o for o in report if o.placement.startswith("CPU") and "input/output" not in o.placement]

    def deploy_notes(self, plan):
        return ["Compile for the Edge TPU on an x86-64 Debian/Ubuntu machine (edgetpu_compiler runs nowhere else): "
                "`edgetpu_compiler -s model.tflite` writes model_edgetpu.tflite and a log of the operators mapped to the Edge TPU; "
                "run that file with libedgetpu and the tflite runtime's EdgeTPU delegate."]


@lru_cache(maxsize=1)
def edgetpu_table() -> dict:
    from edgezoo.schemas._strict import read_toml

    data = read_toml(Path(str(resources.files("edgezoo.compat") / "edgetpu_ops.toml")))
    return {"supported": frozenset(data["supported"]), "notes": data.get("notes", {}), "source": data["source"], "compiler": data["compiler"]}
