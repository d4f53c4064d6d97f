"""The onnxruntime part of a bundle's run.py (everything below the marker is embedded)."""

import numpy as np

from edgezoo.bundle.runner import RuntimeMissing

# --- run.py ---
# Runtime: onnxruntime (pip install onnxruntime).
class Session:
    def __init__(self, path, threads, config):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeMissing("this bundle needs onnxruntime: pip install onnxruntime") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.sess.get_inputs()]

    def run(self, inputs):
        return [np.asarray(y) for y in self.sess.run(None, dict(zip(self.names, inputs)))]
