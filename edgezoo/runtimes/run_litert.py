"""The LiteRT part of a bundle's run.py (everything below the marker is embedded)."""


from edgezoo.bundle.runner import RuntimeMissing, dequantize, quantize

# --- run.py ---
# Runtime: LiteRT (pip install ai-edge-litert; older Raspberry Pi OS images: tflite-runtime).
class Session:
    def __init__(self, path, threads, config):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            try:  # older Raspberry Pi OS images ship the predecessor
                from tflite_runtime.interpreter import Interpreter
            except ImportError:
                raise RuntimeMissing("this bundle needs ai-edge-litert (or tflite-runtime): pip install ai-edge-litert") from None
        self.it = Interpreter(model_path=str(path), num_threads=threads)
        self.it.allocate_tensors()
        self.ins, self.outs = self.it.get_input_details(), self.it.get_output_details()

    def run(self, inputs):
        for d, x in zip(self.ins, inputs):  # full-integer models: quantized with the tensor's own scale
            self.it.set_tensor(d["index"], quantize(x, d["dtype"], *d["quantization"]))
        self.it.invoke()
        return [dequantize(self.it.get_tensor(d["index"]), *d["quantization"]) for d in self.outs]
