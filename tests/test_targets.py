"""The int8 scheme follows the runtime and the instruction set."""

from __future__ import annotations

from dataclasses import replace

from edgezoo.schemas.target import Quantization
from edgezoo.targets import load_target, quant_scheme


def test_x86_with_vnni_is_u8s8_full_range():
    q = quant_scheme(load_target("generic-cpu"), "onnx")
    assert (q.activation_type, q.weight_type, q.format, q.per_channel, q.reduce_range) == ("uint8", "int8", "qdq", True, False)


def test_x86_without_vnni_reduces_weight_range():
    t = load_target("generic-cpu")
    t = replace(t, hardware=replace(t.hardware, isa=("sse4.2", "avx2", "fma")))
    q = quant_scheme(t, "onnx")
    assert q.activation_type == "uint8" and q.reduce_range is True


def test_arm_is_s8s8():
    for name in ("raspberrypi", "raspberrypi5"):
        q = quant_scheme(load_target(name), "onnx")
        assert (q.activation_type, q.weight_type, q.reduce_range) == ("int8", "int8", False)


def test_profile_quantization_table_wins():
    explicit = Quantization("uint8", "uint8", "qoperator", False, False, "from the profile")
    t = load_target("raspberrypi")
    t = replace(t, formats={**t.formats, "onnx": replace(t.formats["onnx"], quantization=explicit)})
    assert quant_scheme(t, "onnx") is explicit
    # jetson's profile states TensorRT's scheme itself
    assert quant_scheme(load_target("jetson-orin-nano")).rationale.startswith("TensorRT")


def test_every_format_gets_a_scheme():
    t = load_target("generic-cpu")
    assert quant_scheme(t, "tflite").format == "tflite"
    assert quant_scheme(t, "openvino").format == "fakequantize"
    assert quant_scheme(load_target("coral-edgetpu")).integer_io is True


def test_microcontroller_facts_and_memory_figures_are_shown():
    import json

    from .conftest import run_cli

    rows = {t["id"]: t for t in json.loads(run_cli("targets", "--json").stdout)}
    assert rows["nrf52840"]["hardware"]["ram_mb"] == 0.25 and rows["nrf52840"]["hardware"]["arch"] == "armv7e-m"
    assert rows["esp32-s3"]["hardware"]["arch"] == "xtensa"
    assert rows["cortex-m55-ethos-u55"]["hardware"]["arch"] == "armv8.1-m"
    out = run_cli("targets", "show", "nrf52840").stdout
    assert "memory.flash_kb" in out and "memory.ram_kb" in out
