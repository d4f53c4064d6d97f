"""TensorFlow Lite Micro: a full-integer int8 .tflite (int8 inputs and outputs) whose tensor
arena is measured with the TFLM interpreter, a flash/RAM verdict against the profile's
memory, and firmware sources. The fp32 .tflite is the accuracy reference, run in LiteRT:
it is not deployed, and TFLM's float path is not what the board runs."""

from __future__ import annotations

from pathlib import Path

from edgezoo.formats.base import Artifact, Context
from edgezoo.formats.tflite import TfliteFormat, tflite_operators
from edgezoo.stages import Step


class TflmFormat(TfliteFormat):
    name = "tflm"
    runtime = "tflite-micro"
    model_file = "model.tflite"
    precisions = ("int8",)
    tools = {"int8": "litert-torch PT2E (a TFLite source: AI Edge Quantizer), full integer (int8 I/O); arena measured with TFLite Micro"}
    description = "full-int8 TFLite for TensorFlow Lite Micro, with firmware C sources and a flash/RAM verdict"
    check_builds_variant = True

    def validate_spec(self, target, spec):
        super().validate_spec(target, spec)
        if target.memory is None:
            raise ValueError("a target with a tflm format needs a [memory] table")

    def steps(self, precision, spec):
        return ["convert-litert", "check-compatibility", "calibrate", "quantize-static-int8", "measure-arena", "memory-verdict", "firmware-sources"]

    def summary(self, plan):
        return {}

    def prepare(self, ctx: Context):
        """Before any conversion: operators PT2E would leave in float make the model unfit for
        microcontroller int8 kernels; the quantizer's annotation says so in seconds (the
        built model is checked again after quantization)."""
        if not ctx.has_torch or not len(ctx.x_cal[0]):
            return None
        from edgezoo.errors import BudgetError
        from edgezoo.stages import torch_to_litert as tl

        found = tl.pt2e_float_ops(ctx.torch_model, ctx.x_cal)
        if found:
            raise BudgetError(
                f"the int8 model would keep float operators ({', '.join(f'{k} x{v}' for k, v in sorted(found.items()))}: litert-torch's "
                "PT2E quantizer does not quantize them) that microcontroller int8 kernels cannot run",
                hint="replace those layers (e.g. hard-swish with ReLU, squeeze-excite's hard-sigmoid) or choose a non-microcontroller target")
        return None

    def fp32(self, ctx):
        art = super().fp32(ctx)
        art.runtime = "litert"  # the reference runs in LiteRT
        return art

    def operators(self, ctx, art):
        ops = tflite_operators(art.path)
        where = f"TFLite Micro ({ctx.plan.target.memory.kernel_library})"
        for o in ops:
            o["placement"] = where  # no XNNPACK on a microcontroller
        return ops

    def variant(self, ctx, fp32, precision):
        from edgezoo.pipeline import micro
        from edgezoo.runtimes import tflite_micro
        from edgezoo.stages import torch_to_litert as tl

        out = ctx.work / "int8.tflite"
        if not ctx.has_torch:  # a TFLite source: AI Edge Quantizer on the flatbuffer, then integer I/O
            ctx.lineage.append(tl.quantize_aeq_static(fp32.path, out, ctx.x_cal, ctx.calib_sha, threads=ctx.plan.threads, xnnpack=False))
            ctx.lineage.append(tl.integer_io(out))
        else:
            ctx.lineage.append(tl.quantize_pt2e(ctx.torch_model, ctx.plan.card, out, ctx.x_cal, ctx.calib_sha))
        micro.integer_only(out)
        data = out.read_bytes()
        # the runner's interpreter cannot count outputs without printing an error past the last one
        return Artifact("int8", out, [out], {"arena_bytes": tflite_micro.min_arena(data), "outputs": tflite_micro.io_counts(data)[1]})

    def finish(self, ctx: Context, art: Artifact):
        """Memory verdict (refusing what does not fit), the accelerator's compiler, firmware
        sources and compile checks."""
        from edgezoo import registry
        from edgezoo.pipeline import micro
        from edgezoo.schemas.report import MicroReport

        plan, target, spec = ctx.plan, ctx.plan.target, ctx.spec
        extras = ctx.work / "extras"
        fw_model, compiled = art.path, None
        if spec.accelerator:
            accel = registry.accelerator(spec.accelerator)
            fw_model, compiled = accel.compile(art.path, spec.accelerator_options, extras)
            if compiled is not None:
                from edgezoo.hashing import sha256_file

                ctx.lineage.append(Step(compiled.stage, compiled.tool, compiled.tool_version, compiled.params(),
                                        sha256_file(art.path), sha256_file(fw_model)))
        memory = micro.memory_report(art.path, target, art.config["arena_bytes"], flash_model=fw_model)
        if ctx.check_only:
            return MicroReport(memory=memory, latency_estimate=micro.latency_estimate(plan.card, target, art.path), vela=compiled)
        micro.require_fit(memory, plan.target_id, plan.allow_over_budget)
        ops, info = _firmware_info(plan, art, fw_model, memory, compiled)
        from edgezoo.bundle import firmware

        data = fw_model.read_bytes()
        firmware.write_sources(extras / "firmware", data, ops, info)
        compile_report = firmware.compile_checks(extras / "firmware", data, cpu=target.memory.compiler_cpu)
        estimate = compiled.latency_estimate() if compiled is not None else micro.latency_estimate(plan.card, target, art.path)
        return MicroReport(memory=memory, latency_estimate=estimate, vela=compiled, compile=compile_report,
                           resolver_ops=tuple(ops), firmware_model=fw_model.name)


def _firmware_info(plan, art: Artifact, fw_model: Path, memory, compiled) -> tuple[list[str], dict]:
    from edgezoo import __version__
    from edgezoo.hashing import sha256_file
    from edgezoo.pipeline import micro
    from edgezoo.runtimes import litert
    from edgezoo.zoo.labels import load_labels

    ops = sorted({o["op"] for o in litert.operators(fw_model)}) if compiled is None else micro.tflite_op_names(fw_model)
    mod_io = litert._interp().Interpreter(model_path=str(art.path))
    i, o = mod_io.get_input_details()[0], mod_io.get_output_details()[0]
    arena = memory.arena_bytes
    if compiled is not None and compiled.sram_bytes:
        arena = max(arena, int(compiled.sram_bytes))
    info = {
        "edgezoo_version": __version__, "model": plan.card.id, "target": plan.target_id, "sha256": sha256_file(fw_model),
        "arena": arena, "arena_measured": memory.arena_measured_bytes, "headroom": memory.arena_headroom,
        "input": {"shape": [int(d) for d in i["shape"]], "scale": float(i["quantization"][0]), "zero_point": int(i["quantization"][1])},
        "output": {"shape": [int(d) for d in o["shape"]], "scale": float(o["quantization"][0]), "zero_point": int(o["quantization"][1])},
        "labels": list(load_labels(plan.card.labels)) if plan.card.labels else [], "kernel_library": plan.target.memory.kernel_library,
    }
    return ops, info
