"""Every zoo card x every target at the target's default format and precision, through the
public API (what `edgezoo export` runs). Each cell either builds a bundle that verifies or is
refused with a documented exit code and reason (does not fit the board, an operator the
runtime lacks, ...); anything else (exit 1, a crash) is a failure of this script.

    python benchmarks/matrix_smoke.py                          # the full sweep (long)
    python benchmarks/matrix_smoke.py --cards digits-cnn       # the slice CI runs
    python benchmarks/matrix_smoke.py --targets nrf52840 raspberrypi --json matrix.json
    python benchmarks/matrix_smoke.py --card-targets            # each card on the targets its card names
    python benchmarks/matrix_smoke.py --card-targets --first    # each card on its default target (the zoo table)

Cards whose weights are not available offline (not shipped, not in the cache) use
--weights random: sizes, operators and memory verdicts do not depend on the weights, and no
task metric is reported for them. The metric column shows fp32 / the exported precision,
both measured in the target's runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    from edgezoo import api
    from edgezoo.errors import EdgezooError

    cards = [c.id for c in api.list_models()]
    targets = [t.id for t in api.list_targets()]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cards", nargs="+", default=cards)
    ap.add_argument("--targets", nargs="+", default=targets)
    ap.add_argument("--card-targets", action="store_true", help="each card on the targets its card lists (else every target)")
    ap.add_argument("--first", action="store_true", help="with --card-targets: only each card's first (default) target")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from edgezoo.zoo.sources import available_offline
    cells, failures = [], 0
    print("| card | target | format | precision | result | size KB | metric fp32 / exported (or fidelity) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for card_id in args.cards:
            card = api.get_card(card_id)
            weights = None if available_offline(card.version()) else "random"
            targets = [t for t in card.targets if t in args.targets] if args.card_targets and card.targets else args.targets
            for target_id in targets[:1] if args.first else targets:
                t0 = time.perf_counter()
                cell = {"card": card_id, "target": target_id}
                try:
                    plan = api.plan_export(card_id, target_id, weights=weights, out_dir=Path(tmp) / f"{card_id}-{target_id}")
                    cell.update(format=plan.format, precision=plan.precision)
                    out = api.export(plan)
                    ok = api.verify(out.bundle_dir).ok
                    q = out.report.variants[plan.precision].quality
                    ref = out.report.variants["fp32"].quality
                    gate = q.gate_value if weights is None else None
                    cell.update(result="ok" if ok else "bundle does not verify", size_kb=out.report.variants[plan.precision].size_bytes / 1024,
                                quality=(f"{q.gate_metric} {ref.gate_value:.2f} / {gate:.2f}" if gate is not None else
                                         f"agreement {q.agreement:.1f} %, SQNR {q.sqnr_db:.1f} dB" if q.sqnr_db is not None else "exact"),
                                weights="pretrained" if weights is None else "random")
                    failures += not ok
                except EdgezooError as exc:
                    cell.update(result=f"refused (exit {exc.exit_code}): {exc}")
                    failures += exc.exit_code not in (2, 4)  # usage/compatibility or budget: documented refusals
                except Exception as exc:  # a bug: the script reports it and fails
                    cell.update(result=f"FAILED (bug): {type(exc).__name__}: {exc}")
                    failures += 1
                cell["seconds"] = round(time.perf_counter() - t0, 1)
                cells.append(cell)
                print(f"| {card_id} | {target_id} | {cell.get('format', '-')} | {cell.get('precision', '-')} | {cell['result'][:160]} | "
                      f"{cell.get('size_kb', 0):.0f} | {cell.get('quality', '-')} | {cell['seconds']} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(cells, indent=2) + "\n")
    print(f"\n{len(cells)} cells, {sum(c['result'] == 'ok' for c in cells)} ok, "
          f"{sum(c['result'].startswith('refused') for c in cells)} refused with a documented reason, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
