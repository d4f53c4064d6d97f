"""The sentence-embedding part of a bundle's run.py (everything below the marker is
embedded). edgezoo's own scoring and data preparation import ``tokenize`` and ``cosine``
from here, so what a report measures is what the runner computes."""

import sys

import numpy as np

from edgezoo.bundle.runner import HERE, InputError

# --- run.py ---
# Task: sentence embedding. Reads sentences (a text file, one per line), tokenizes them with
# the bundle's tokenizer.json (pip install tokenizers), prints each embedding and, for two or
# more sentences, their cosine similarities.
def tokenize(sentences, tokenizer_path, length):
    """Token ids and attention masks (int64, N x length); sentences longer than ``length``
    tokens are truncated, and their indices returned so the caller can say so."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise InputError("this bundle tokenizes with the tokenizers package: pip install tokenizers") from None
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_truncation()
    tok.no_padding()
    ids = np.zeros((len(sentences), length), np.int64)
    mask = np.zeros((len(sentences), length), np.int64)
    truncated = []
    for i, enc in enumerate(tok.encode_batch(list(sentences))):
        t = enc.ids
        if len(t) > length:
            truncated.append(i)
            t = t[: length - 1] + t[-1:]  # keep the closing [SEP]
        ids[i, : len(t)] = t
        mask[i, : len(t)] = 1
    return ids, mask, truncated


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / max(1e-12, np.linalg.norm(a) * np.linalg.norm(b)))


def add_arguments(parser):
    parser.add_argument("--values", type=int, default=6, help="how many leading values of each embedding to print (default 6)")


def read_input(path, manifest):
    if not path.is_file():
        raise InputError(f"no such input file: {path}")
    try:
        lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    if not lines:
        raise InputError(f"{path} holds no sentence (one sentence per line)")
    return lines


def infer(session, sentences, manifest):
    length = int(manifest["inputs"][0]["shape"][1])
    ids, mask, truncated = tokenize(sentences, HERE / "tokenizer.json", length)
    for i in truncated:
        print(f"note: sentence {i + 1} is longer than {length} tokens and was truncated", file=sys.stderr)
    return [np.concatenate([np.asarray(session.run([ids[i : i + 1], mask[i : i + 1]])[0]) for i in range(len(sentences))])]


def present(outputs, manifest, args):
    emb = np.asarray(outputs[0], np.float64)
    result = {"embeddings": [{"dimensions": int(e.size), "norm": float(np.linalg.norm(e)), "values": [float(v) for v in e[: args.values]]}
                             for e in emb]}
    if len(emb) > 1:
        result["similarity"] = [[round(cosine(a, b), 4) for b in emb] for a in emb]
    return result


def render(result):
    lines = []
    for i, e in enumerate(result["embeddings"]):
        lines.append(f"sentence {i + 1}: {e['dimensions']} dims, norm {e['norm']:.3f}  [{', '.join(f'{v:.4f}' for v in e['values'])}, ...]")
    if "similarity" in result:
        lines.append("cosine similarity:")
        for i, row in enumerate(result["similarity"]):
            lines.append(f"  {i + 1}: " + "  ".join(f"{v:6.3f}" for v in row))
    return "\n".join(lines)
