"""The ExecuTorch part of a bundle's run.py (everything below the marker is embedded)."""

import numpy as np

from edgezoo.bundle.runner import RuntimeMissing

# --- run.py ---
# Runtime: ExecuTorch (pip install executorch; its Python runtime takes torch tensors, so it
# brings torch). Devices without Python: build the C++ executor_runner with the XNNPACK
# backend and run `executor_runner --model_path model.pte`.
class Session:
    def __init__(self, path, threads, config):
        try:
            import torch
            from executorch.runtime import Runtime
        except ImportError:
            raise RuntimeMissing("this bundle needs executorch (and the torch it installs): pip install executorch") from None
        try:
            from executorch.extension.pybindings import portable_lib

            portable_lib._unsafe_reset_threadpool(int(threads))
        except (ImportError, AttributeError):
            pass
        self.torch = torch
        self.method = Runtime.get().load_program(path).load_method("forward")

    def run(self, inputs):
        outs = self.method.execute([self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for x in inputs])
        return [np.asarray(o.detach().numpy()) for o in outs]
