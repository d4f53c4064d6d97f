"""The generic part of a bundle's run.py: prints every output (name, shape, summary) and
can save them all to an .npz."""

import numpy as np

# --- run.py ---
# Task: generic. Prints each output's shape and values; --save writes them to an .npz.
def add_arguments(parser):
    parser.add_argument("--save", help="write every output to this .npz file")
    parser.add_argument("--values", type=int, default=8, help="how many leading values of each output to print (default 8)")


def present(outputs, manifest, args):
    names = [o["name"] for o in manifest["outputs"]]
    if args.save:
        np.savez(args.save, **{n: np.asarray(o) for n, o in zip(names, outputs)})
    result = []
    for name, out in zip(names, outputs):
        a = np.asarray(out, dtype=np.float64)
        result.append({"name": name, "shape": list(a.shape), "min": float(a.min()) if a.size else 0.0,
                       "max": float(a.max()) if a.size else 0.0, "mean": float(a.mean()) if a.size else 0.0,
                       "size": int(a.size), "values": [float(v) for v in a.reshape(-1)[: max(0, args.values)]]})
    return {"outputs": result}


def render(result):
    lines = []
    for o in result["outputs"]:
        head = ", ".join(f"{v:.4g}" for v in o["values"])
        lines.append(f"{o['name']} {'x'.join(map(str, o['shape']))}  min {o['min']:.4g}  max {o['max']:.4g}  mean {o['mean']:.4g}  [{head}{', ...' if len(o['values']) < o['size'] else ''}]")
    return "\n".join(lines)
