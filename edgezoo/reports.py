"""`edgezoo report`: every bundle in a folder on one page, with the trade-offs drawn.

Reads each bundle's report.json and manifest.json, any device results that
``edgezoo bench BUNDLE --device ...`` wrote beside them, and the format x precision tables
``edgezoo bench MODEL --target T`` writes (``bench-*.json``), and renders:

- a table of every variant (the deployed precision and the references built beside it);
- accuracy against latency for every variant and format, the Pareto front marked;
- model size per variant;
- the latency distribution per variant (box plots from the recorded percentiles).

HTML is one self-contained file (plots embedded as PNG data); Markdown is written with its
plots as PNG files beside it. Device figures are marked as measured on the device, host
figures as a proxy, microcontroller figures as cycle estimates.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from edgezoo.errors import MissingDependencyError, UsageError


@dataclass
class Row:
    bundle: str
    model: str
    target: str
    format: str
    runtime: str
    precision: str
    deployed: bool
    task: str
    metric: str
    value: float | None  # the task metric (or agreement without labels)
    agreement: float | None
    sqnr_db: float | None
    size_bytes: int
    p50_ms: float | None
    p90_ms: float | None
    quantiles: dict[str, float] = field(default_factory=dict)
    runs: int = 0
    spread: float = 0.0
    source: str = "host"  # "host" (a proxy), "device <name>", "estimate"
    weights: str = ""

    @property
    def label(self) -> str:
        return f"{self.model} / {self.target} / {self.format} {self.precision}" + ("" if self.deployed else " (ref)")


def collect(paths: list[Path]) -> tuple[list[Row], list[str]]:
    """Rows for every bundle folder found at or one level below each path; skipped folders
    are returned as notes (a folder without report.json is not a bundle)."""
    from edgezoo.schemas import _strict
    from edgezoo.schemas.report import Report

    folders: list[Path] = []
    for p in paths:
        if not p.exists():
            raise UsageError(f"no such folder: {p}", hint="pass the --out folder of your exports, or bundle folders")
        if (p / "report.json").is_file():
            folders.append(p)
        elif p.is_dir():
            folders += sorted(d for d in p.iterdir() if d.is_dir() and (d / "report.json").is_file())
    benches = sorted({b for p in paths if p.is_dir() for b in p.glob("bench-*.json")})
    if not folders and not benches:
        raise UsageError(f"no bundles in {', '.join(map(str, paths))}",
                         hint="a bundle is a folder with report.json and manifest.json, written by `edgezoo export` "
                              "(`edgezoo bench` writes bench-*.json, which are read too)")
    rows: list[Row] = []
    notes: list[str] = []
    for b in benches:  # `edgezoo bench`: every format x precision of one model on one target
        try:
            data = json.loads(b.read_text(encoding="utf-8"))
            for r in data["rows"]:
                if r.get("error"):
                    notes.append(f"{b.name}: {r['format']} {r['precision']} failed: {r['error']}")
                    continue
                labelled = r.get("top1") is not None
                rows.append(Row(bundle=b.stem, model=data["model"], target=data["target"], format=r["format"], runtime=r["runtime"],
                                precision=r["precision"], deployed=bool(r.get("deployable", True)), task="",
                                metric=r.get("metric", "top1") if labelled else "agreement",
                                value=r["top1"] if labelled else r["agreement"], agreement=r["agreement"], sqnr_db=r.get("sqnr_db"),
                                size_bytes=int(r["size_bytes"]), p50_ms=r["p50_ms_nt"], p90_ms=r["p90_ms_nt"], runs=0,
                                source="host", weights=data.get("weights", "")))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            notes.append(f"{b.name}: skipped (not a result of `edgezoo bench`: {exc})")
    for folder in folders:
        try:
            report = _strict.load(Report, json.loads((folder / "report.json").read_text(encoding="utf-8")), source=f"{folder.name}/report.json")
            json.loads((folder / "manifest.json").read_text(encoding="utf-8"))  # a bundle has a readable manifest
        except (ValueError, OSError, UsageError) as exc:
            notes.append(f"{folder.name}: skipped ({str(exc).splitlines()[0]})")
            continue
        metric = report.metric or "agreement"
        for prec, v in report.variants.items():
            q = v.quality
            value = None if q is None else (q.agreement if metric == "agreement" else q.metrics.get(metric))
            lat = v.latency
            row = Row(bundle=folder.name, model=report.model, target=report.target, format=report.format, runtime=v.runtime,
                      precision=prec, deployed=prec == report.precision, task=report.task, metric=metric, value=value,
                      agreement=q.agreement if q else None, sqnr_db=q.sqnr_db if q else None, size_bytes=v.size_bytes,
                      p50_ms=lat.p50_ms if lat else None, p90_ms=lat.p90_ms if lat else None,
                      quantiles=dict(lat.quantiles_ms) if lat else {}, runs=lat.runs if lat else 0,
                      spread=lat.spread if lat else 0.0, weights=report.weights)
            if lat is None and report.microcontroller is not None and prec == report.precision:
                row.p50_ms, row.source = report.microcontroller.latency_estimate.estimate_ms, "estimate"
            rows.append(row)
        deployed = next(r for r in rows[::-1] if r.bundle == folder.name and r.deployed)
        for dev in sorted(folder.parent.glob(f"device-{folder.name}-*.json")):
            try:
                d = json.loads(dev.read_text(encoding="utf-8"))
                rows.append(Row(bundle=folder.name, model=report.model, target=report.target, format=report.format,
                                runtime=d["device"]["runtime_version"] or d["device"]["runtime"], precision=d["precision"],
                                deployed=True, task=report.task, metric=metric, value=deployed.value, agreement=None, sqnr_db=None,
                                size_bytes=deployed.size_bytes, p50_ms=d["p50_ms"], p90_ms=d["p90_ms"],
                                quantiles=d.get("quantiles_ms", {}), runs=d["runs"],
                                source=f"device {d['device']['hostname']} ({d['device']['cpu']})", weights=report.weights))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                notes.append(f"{dev.name}: skipped (not a device result: {exc})")
    return rows, notes


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower latency and higher accuracy."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


# -- plots ----------------------------------------------------------------------------------

def _plt():
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "report", "drawing report plots") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def pyplot():
    """matplotlib.pyplot on the Agg backend (one line naming the `report` extra when missing)."""
    return _plt()


def save_png(fig, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically (a temporary file renamed into place)."""
    import os

    data = _png(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


MARKERS = {"fp32": "o", "fp16": "s", "bf16": "D", "int8": "^", "dynamic-int8": "v"}


def plot_tradeoff(rows: list[Row]) -> list[tuple[str, bytes]]:
    """One accuracy-vs-latency plot per metric, every variant a point, the Pareto front a line."""
    plt = _plt()
    out = []
    metrics = sorted({r.metric for r in rows if r.value is not None and r.p50_ms})
    for metric in metrics:
        pts = [r for r in rows if r.metric == metric and r.value is not None and r.p50_ms]
        fig, ax = plt.subplots(figsize=(8, 5))
        formats = sorted({r.format for r in pts})
        colors = {f: plt.cm.tab10(i % 10) for i, f in enumerate(formats)}
        front = pareto([(r.p50_ms, r.value) for r in pts])
        for i, r in enumerate(pts):
            ax.scatter(r.p50_ms, r.value, s=70, marker=MARKERS.get(r.precision, "o"), color=colors[r.format],
                       facecolors="none" if not r.deployed else colors[r.format], linewidths=1.5, zorder=3)
            if r.deployed or i in front:  # references off the front stay unlabelled: fewer overlapping labels
                tag = "" if r.source == "host" else f" [{r.source.split(' ')[0]}]"
                ax.annotate(f"{r.model}/{r.target} {r.precision}{tag}", (r.p50_ms, r.value), textcoords="offset points",
                            xytext=(5, 4 + 9 * (i % 3)), fontsize=7)
        if front:
            ax.step([pts[i].p50_ms for i in front], [pts[i].value for i in front], where="post", color="crimson",
                    linestyle="--", linewidth=1.2, label="Pareto front", zorder=2)
            ax.scatter([pts[i].p50_ms for i in front], [pts[i].value for i in front], s=200, facecolors="none",
                       edgecolors="crimson", linewidths=1.2, zorder=4)
        for f in formats:
            ax.scatter([], [], color=colors[f], label=f)
        for p in sorted({r.precision for r in pts}):
            ax.scatter([], [], color="gray", marker=MARKERS.get(p, "o"), label=p)
        ax.set_xscale("log")
        _plain_ticks(ax)
        ax.set_xlabel("p50 latency, ms (log; host proxy unless marked [device])")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs latency (filled: deployed variant; hollow: reference)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        out.append((f"tradeoff-{metric}", _png(fig)))
    return out


def _plain_ticks(ax) -> None:
    """Log-axis ticks as plain numbers (0.05, 0.1), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))


def plot_sizes(rows: list[Row]) -> bytes:
    plt = _plt()
    rs = [r for r in rows if r.source in ("host", "estimate")]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(rs) + 1)))
    ys = range(len(rs))
    ax.barh(list(ys), [r.size_bytes / 1024 for r in rs], color=["steelblue" if r.deployed else "lightgray" for r in rs])
    ax.set_yticks(list(ys), [r.label for r in rs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("model file, KB (log)")
    ax.set_xscale("log")
    for y, r in zip(ys, rs):
        ax.text(r.size_bytes / 1024, y, f" {r.size_bytes / 1024:,.0f}", va="center", fontsize=7)
    ax.set_title("size per variant (blue: deployed, gray: reference)")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def plot_latency(rows: list[Row]) -> bytes | None:
    plt = _plt()
    rs = [r for r in rows if r.p50_ms and r.source != "estimate"]
    if not rs:
        return None
    stats = []
    for r in rs:
        q = r.quantiles
        med = q.get("50", r.p50_ms)
        stats.append({"label": r.label + ("" if r.source == "host" else " [device]"), "med": med,
                      "q1": q.get("25", med), "q3": q.get("75", r.p90_ms or med),
                      "whislo": q.get("1", q.get("10", med)), "whishi": q.get("99", r.p90_ms or med), "fliers": []})
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(rs) + 1)))
    try:
        ax.bxp(stats, orientation="horizontal", showfliers=False)  # matplotlib >= 3.10
    except TypeError:
        ax.bxp(stats, vert=False, showfliers=False)
    ax.tick_params(axis="y", labelsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    _plain_ticks(ax)
    ax.set_xlabel("latency per inference, ms (log; box p25-p75, whiskers p1-p99)")
    ax.set_title("latency distribution")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


# -- documents ------------------------------------------------------------------------------

def _f(x, fmt="{:.3f}"):
    return "-" if x is None else fmt.format(x)


def _table_rows(rows: list[Row]) -> list[list[str]]:
    return [[r.model, r.target, f"{r.format} ({r.runtime})", r.precision + ("" if r.deployed else " (ref)"), r.metric,
             _f(r.value, "{:.2f}"), _f(r.sqnr_db, "{:.1f}") if r.sqnr_db is not None else ("exact" if r.agreement == 100.0 else "-"),
             f"{r.size_bytes / 1024:,.1f}", _f(r.p50_ms), _f(r.p90_ms),
             f"{r.spread * 100:.0f} %" if r.spread else "-",
             {"host": "host (proxy)", "estimate": "cycle estimate"}.get(r.source, r.source)] for r in rows]


HEADERS = ["model", "target", "format (runtime)", "precision", "metric", "value", "SQNR dB", "size KB", "p50 ms", "p90 ms",
           "round spread", "latency measured on"]


def render(rows: list[Row], notes: list[str], *, title: str) -> tuple[str, str, list[tuple[str, bytes]]]:
    """(HTML, Markdown, plots as (name, PNG bytes))."""
    plots = plot_tradeoff(rows)
    plots.append(("sizes", plot_sizes(rows)))
    lat = plot_latency(rows)
    if lat is not None:
        plots.append(("latency", lat))
    table = _table_rows(rows)
    bundles = sorted({r.bundle for r in rows})
    host_note = ("Latency marked 'host (proxy)' was measured on the machine that exported the bundle with the target's thread "
                 "count: a proxy for the device. 'device' rows come from `edgezoo bench BUNDLE --device ...` on the device itself. "
                 "Microcontroller rows are cycle estimates.")
    caption = {"sizes": "Size per variant", "latency": "Latency distribution"}
    # HTML
    h = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
         f"<title>{html.escape(title)}</title><style>",
         "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}",
         "table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}",
         "th{background:#f0f0f0}td:nth-child(-n+5){text-align:left}tr.ref{color:#777}img{max-width:100%;border:1px solid #eee;margin:.5em 0}",
         ".note{color:#555;font-size:13px}</style></head><body>",
         f"<h1>{html.escape(title)}</h1>",
         f"<p>{len(bundles)} bundle(s), {len(rows)} variant(s). {html.escape(host_note)}</p>",
         "<h2>Variants</h2><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in HEADERS) + "</tr>"]
    for r, cells in zip(rows, table):
        h.append(f"<tr class='{'' if r.deployed else 'ref'}'>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    h.append("</table>")
    for name, png in plots:
        cap = caption[name] if name in caption else f"{name.split('-', 1)[1]} vs latency (Pareto front dashed)"
        h.append(f"<h2>{html.escape(cap)}</h2><img alt='{html.escape(cap)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    if notes:
        h.append("<h2>Skipped</h2><ul>" + "".join(f"<li class='note'>{html.escape(n)}</li>" for n in notes) + "</ul>")
    h.append("</body></html>")
    # Markdown (plots referenced as files beside it)
    md = [f"# {title}", "", f"{len(bundles)} bundle(s), {len(rows)} variant(s). {host_note}", "",
          "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    md += ["| " + " | ".join(c.replace("|", "/") for c in cells) + " |" for cells in table]
    md.append("")
    for name, _ in plots:
        md += [f"![{caption.get(name, name)}](@@{name}.png)", ""]
    if notes:
        md += ["## Skipped", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(h) + "\n", "\n".join(md), plots
