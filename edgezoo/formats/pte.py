"""ExecuTorch programs (.pte) with the XNNPACK delegate: built from the PyTorch module,
run by ExecuTorch's runtime. The bundle's run.py runs it with numpy, torch and executorch
(ExecuTorch's Python runtime takes torch tensors); on a device without Python, the C++
``executor_runner`` (or an app linking the ExecuTorch runtime with the XNNPACK backend)
loads the same file."""

from __future__ import annotations

import json

from edgezoo.formats.base import Artifact, Format


class PteFormat(Format):
    name = "pte"
    serial_fp32 = True  # torch.export and to_edge_transform_and_lower trace in Python
    runtime = "executorch"
    model_file = "model.pte"
    precisions = ("fp32", "int8")
    tools = {
        "fp32": "torch.export (strict) -> to_edge_transform_and_lower(XnnpackPartitioner) -> .pte",
        "int8": "PT2E with ExecuTorch's XNNPACKQuantizer (symmetric int8, per-channel weights), then lowered",
    }
    description = "ExecuTorch program with the XNNPACK delegate"

    def steps(self, precision, spec):
        return ["convert-executorch", "check-compatibility"] + (["calibrate", "quantize-static-int8"] if precision == "int8" else [])

    def default_quantization(self, target, spec):
        from edgezoo.schemas.target import Quantization

        return Quantization(activation_type="int8", weight_type="int8", format="qdq", per_channel=True, reduce_range=False,
                            rationale="derived: ExecuTorch's XNNPACK quantizer, symmetric int8 with per-channel weights, run by the XNNPACK delegate",
                            tool="executorch PT2E (XNNPACKQuantizer)")

    def fp32(self, ctx):
        from edgezoo.stages import torch_to_pte

        out = ctx.work / "fp32.pte"
        ctx.lineage.append(torch_to_pte.convert_fp32(ctx.torch_model, ctx.plan.card, out, ctx.weights_sha))
        return Artifact("fp32", out, [out])

    def variant(self, ctx, fp32, precision):
        from edgezoo.stages import torch_to_pte

        out = ctx.work / f"{precision}.pte"
        ctx.lineage.append(torch_to_pte.quantize_pt2e(ctx.torch_model, ctx.plan.card, out, ctx.x_cal, ctx.calib_sha))
        return Artifact(precision, out, [out])

    def operators(self, ctx, art):
        """Read from the lowered program at build time: what XNNPACK took and what stays on
        ExecuTorch's portable kernels, which run single-threaded and unvectorised."""
        from edgezoo.stages import torch_to_pte

        rows = json.loads(torch_to_pte.ops_path(art.path).read_text(encoding="utf-8"))
        outside = [r for r in rows if "outside" in r["placement"]]
        for r in outside:
            r["note"] = "not delegated: runs on ExecuTorch's portable kernel (slower than XNNPACK)"
        return rows

    def operator_warnings(self, report):
        outside = [o for o in report if "outside" in o.placement]
        if not outside:
            return []
        return [f"{sum(o.count for o in outside)} operator(s) stay outside the XNNPACK delegate "
                f"({', '.join(sorted({o.op_type for o in outside}))}; first at {outside[0].first_node}): they run on ExecuTorch's "
                "portable kernels, single-threaded and unvectorised, and each boundary copies tensors; expect them to cost latency"]

    def tensor_specs(self, model_path, card):
        from edgezoo.runtimes.executorch import Executorch

        session = Executorch().open(model_path, 1)
        layouts = [i.layout for i in card.inputs]
        inputs = [{"name": card.inputs[k].name if k < len(layouts) else i.name, "shape": list(i.shape), "dtype": i.dtype,
                   "layout": layouts[k] if k < len(layouts) else ""} for k, i in enumerate(session.inputs)]
        outputs = [{"name": o.name, "shape": list(o.shape), "dtype": o.dtype} for o in session.outputs]
        return inputs, outputs

    def deploy_notes(self, plan):
        return ["On a device with Python: `pip install executorch` (it brings torch) and run `python run.py INPUT`. "
                "Without Python: build ExecuTorch's C++ `executor_runner` with the XNNPACK backend "
                "(cmake -DEXECUTORCH_BUILD_XNNPACK=ON) and run `executor_runner --model_path model.pte`, "
                "or link the runtime into your app."]
