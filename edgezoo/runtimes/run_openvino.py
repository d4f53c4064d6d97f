"""The OpenVINO part of a bundle's run.py (everything below the marker is embedded)."""

import numpy as np

from edgezoo.bundle.runner import RuntimeMissing

# --- run.py ---
# Runtime: OpenVINO (pip install openvino). The manifest's config pins the inference precision.
class Session:
    def __init__(self, path, threads, config):
        try:
            import openvino as ov
        except ImportError:
            raise RuntimeMissing("this bundle needs openvino: pip install openvino") from None
        cfg = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, **config}
        self.compiled = ov.Core().compile_model(str(path), "CPU", cfg)
        self.request = self.compiled.create_infer_request()

    def run(self, inputs):
        self.request.infer(dict(enumerate(inputs)))
        return [np.array(self.request.get_output_tensor(i).data) for i in range(len(self.compiled.outputs))]
