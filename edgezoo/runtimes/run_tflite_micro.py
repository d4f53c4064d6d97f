"""The TensorFlow Lite Micro part of a bundle's run.py (everything below the marker is embedded)."""


from edgezoo.bundle.runner import RuntimeMissing, dequantize, quantize

# --- run.py ---
# Runtime: TensorFlow Lite Micro's interpreter on a host (pip install tflite-micro); on the
# board, firmware/ holds the same model as C sources.
class Session:
    def __init__(self, path, threads, config):
        try:
            from tflite_micro import runtime
        except ImportError:
            raise RuntimeMissing("this bundle needs tflite-micro on the host: pip install tflite-micro") from None
        self.it = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=int(config["arena_bytes"]))
        self.n_outputs = int(config.get("outputs") or 0)  # bundles before 0.1 did not record it

    def _q(self, detail):
        q = detail["quantization_parameters"]
        return (float(q["scales"][0]), int(q["zero_points"][0])) if len(q["scales"]) else (0.0, 0)

    def run(self, inputs):
        for i, x in enumerate(inputs):
            d = self.it.get_input_details(i)
            self.it.set_input(quantize(x, d["dtype"], *self._q(d)), i)
        self.it.invoke()
        if self.n_outputs:
            return [dequantize(self.it.get_output(i), *self._q(self.it.get_output_details(i))) for i in range(self.n_outputs)]
        outs, i = [], 0
        while True:
            try:
                d = self.it.get_output_details(i)
            except Exception:  # past the last output
                break
            outs.append(dequantize(self.it.get_output(i), *self._q(d)))
            i += 1
        return outs
