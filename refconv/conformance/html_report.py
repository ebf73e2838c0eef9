"""One self-contained HTML page from JSON reports: verdict matrix, failures, error-versus-bound plots.

:func:`render` reads what refconv writes: ``refconv check --json`` reports
(one object or a list), ``refconv check --network --json`` reports, and sweep
files (``refconv sweep --json``, ``refconv report merge``).  The page has no
external asset and no script from elsewhere: the plots are inline SVG, the
one script copies a reproduction to the clipboard.

* the verdict matrix: targets down, ops and dtypes across; each cell the
  worst verdict of its checks (FAIL, ERROR, INCONCLUSIVE, UNSUPPORTED or
  SKIPPED, PASS) with their count, the details in its tooltip;
* every failure: what failed, the worst element, the diagnosis and a
  reproduction to copy;
* per op, the measured error of every judged case against its bound on
  log-log axes (one point per case; the diagonal is the bound, so the
  vertical distance below it is the margin); exact results (error 0) sit on
  the bottom line.

:func:`validate` checks a document against specs/report.schema.json.

Examples
--------
>>> page = render([('r.json', {'schema_version': 1, 'kind': 'check', 'target': 't', 'op': 'conv', 'dims': 1,
...                 'dtype': 'float32', 'verdict': 'PASS', 'failure': None,
...                 'case_errors': [{'case': 'c', 'error': 1e-7, 'bound': 1e-6, 'ratio': 0.1}]})])
>>> '<svg' in page and 'http' not in page.replace('http://www.w3.org/2000/svg', '')
True
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from ..params import ConvParamError
from .report import SCHEMA_VERSION

__all__ = ["render", "entries", "validate", "schema", "SCHEMA_PATH", "SCHEMA_VERSION"]

#: the published schema of every JSON report
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "specs" / "report.schema.json"
#: verdicts from worst to best: a matrix cell shows the first present
ORDER = ("FAIL", "ERROR", "INCONCLUSIVE", "UNSUPPORTED", "SKIPPED", "PASS")
COLORS = {"FAIL": "#d73027", "ERROR": "#7b3294", "INCONCLUSIVE": "#fdae61", "UNSUPPORTED": "#bdbdbd",
          "SKIPPED": "#bdbdbd", "PASS": "#1a9850"}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def schema() -> dict[str, Any]:
    """The JSON Schema of refconv's reports (specs/report.schema.json)."""
    try:
        return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConvParamError(f"the report schema {str(SCHEMA_PATH)!r} cannot be read ({exc})") from None


def validate(doc: Any) -> list[str]:
    """The schema violations of ``doc`` (empty: valid); needs the ``jsonschema`` package."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


# --------------------------------------------------------------------------- reading


def _check_entry(r: dict[str, Any], source: str) -> dict[str, Any]:
    f = r.get("failure")
    entry: dict[str, Any] = {"target": str(r.get("target")), "op": str(r.get("op")), "dims": r.get("dims"),
             "dtype": str(r.get("dtype")), "precision": r.get("precision"), "verdict": str(r.get("verdict")),
             "source": source, "points": [], "failure": None, "what": "check"}
    for p in r.get("case_errors") or []:
        entry["points"].append((p.get("error"), p.get("bound"), p.get("case", "")))
    if f:
        entry["failure"] = {"kind": f.get("kind"), "message": f.get("message", ""),
                            "case": (f.get("case") or {}).get("description", ""), "worst": f.get("worst"),
                            "diagnosis": list(f.get("diagnosis") or []), "known": list(f.get("known") or []),
                            "repro": f.get("repro", "")}
    elif entry["verdict"] in ("ERROR", "INCONCLUSIVE"):
        text = r.get("error") or r.get("unjudged_reason") or ""
        entry["failure"] = {"kind": entry["verdict"].lower(), "message": (r.get("error_stage") or "") + "",
                            "case": "", "worst": None, "diagnosis": [], "known": [], "repro": "",
                            "traceback": text}
    return entry


def _network_entries(r: dict[str, Any], source: str) -> list[dict[str, Any]]:
    out = []
    for layer in r.get("layers") or []:
        case = layer.get("case") or {}
        verdict = str(layer.get("verdict"))
        e: dict[str, Any] = {"target": str(r.get("target")), "op": str(layer.get("op")), "dims": len(case.get("spatial") or ()),
             "dtype": str(r.get("dtype")), "precision": r.get("precision"), "verdict": verdict, "source": source,
             "points": [], "failure": None,
             "what": f"network {r.get('network')} layer {layer.get('index')} {', '.join(layer.get('paths') or [])}"}
        w = layer.get("worst")
        if w and w.get("bound") is not None:
            e["points"].append((w.get("error"), w.get("bound"), f"{r.get('network')} {(layer.get('paths') or [''])[0]}"))
        if verdict in ("FAIL", "ERROR"):
            e["failure"] = {"kind": layer.get("kind"), "message": layer.get("message", ""),
                            "case": case.get("description", ""), "worst": w, "diagnosis": list(layer.get("diagnosis") or []),
                            "known": [], "repro": layer.get("repro", ""), "traceback": layer.get("traceback", "")}
        out.append(e)
    return out


def entries(doc: Any, source: str = "") -> list[dict[str, Any]]:
    """The checks in one JSON document, flattened: one entry per check, per network layer, per sweep cell."""
    if isinstance(doc, list):
        return [e for d in doc for e in entries(d, source)]
    if not isinstance(doc, dict):
        raise ConvParamError(f"{source!r}: not a refconv report (a JSON object or a list of them)")
    kind = doc.get("kind")
    if kind == "sweep":
        out = []
        for rec in doc.get("results") or []:
            if rec.get("report") is not None:
                out += entries(rec["report"], f"{source} [{rec.get('cell')}]")
            else:
                spec = rec.get("spec") or {}
                op = spec.get("op") or f"network {spec.get('network')}"
                out.append({"target": str(spec.get("target")), "op": str(op), "dims": spec.get("dims"),
                            "dtype": str(spec.get("dtype")), "precision": spec.get("precision"),
                            "verdict": str(rec.get("verdict")), "source": f"{source} [{rec.get('cell')}]",
                            "points": [], "what": "sweep cell",
                            "failure": None if rec.get("verdict") == "UNSUPPORTED" else {
                                "kind": "error", "message": rec.get("message", ""), "case": "", "worst": None,
                                "diagnosis": [], "known": [], "repro": ""},
                            "note": rec.get("message", "")})
        return out
    if kind == "network":
        return _network_entries(doc, source)
    if kind in ("check", None) and "op" in doc and "verdict" in doc and "target" in doc:
        return [_check_entry(doc, source)]
    raise ConvParamError(f"{source!r}: not a refconv report (kind {kind!r})")


# --------------------------------------------------------------------------- writing


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _worst(verdicts: list[str]) -> str:
    for v in ORDER:
        if v in verdicts:
            return v
    return verdicts[0] if verdicts else ""


def _matrix(items: list[dict[str, Any]]) -> str:
    targets = list(dict.fromkeys(e["target"] for e in items))
    ops = list(dict.fromkeys(e["op"] for e in items))
    dtypes = list(dict.fromkeys(e["dtype"] for e in items))
    cols = [(op, dt) for op in ops for dt in dtypes if any(e["op"] == op and e["dtype"] == dt for e in items)]
    head1 = "".join(f'<th colspan="{sum(1 for o, _ in cols if o == op)}">{_e(op)}</th>' for op in ops
                    if any(o == op for o, _ in cols))
    head2 = "".join(f"<th>{_e(dt)}</th>" for _, dt in cols)
    rows = []
    for t in targets:
        cells = []
        for op, dt in cols:
            sel = [e for e in items if e["target"] == t and e["op"] == op and e["dtype"] == dt]
            if not sel:
                cells.append('<td class="none">&#8211;</td>')
                continue
            v = _worst([e["verdict"] for e in sel])
            tip = "\n".join(f"{e['verdict']}: {e['what']} {_dims(e)}{e['source']}".strip() for e in sel)
            n = sum(e["verdict"] == v for e in sel)
            cells.append(f'<td class="v" data-verdict="{_e(v)}" style="background:{COLORS.get(v, "#fff")}" '
                         f'title="{_e(tip)}">{_e(v)}{f" {n}/{len(sel)}" if len(sel) > 1 else ""}</td>')
        rows.append(f'<tr><th class="t">{_e(t)}</th>{"".join(cells)}</tr>')
    return (f'<table id="matrix" class="matrix"><thead><tr><th rowspan="2">target</th>{head1}</tr>'
            f"<tr>{head2}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _failures(items: list[dict[str, Any]]) -> str:
    fails = [e for e in items if e.get("failure") and e["verdict"] in ("FAIL", "ERROR", "INCONCLUSIVE")]
    if not fails:
        return '<p id="no-failures">No failure: every judged check passed.</p>'
    out = []
    for i, e in enumerate(fails):
        f = e["failure"]
        parts = [f'<div class="failure" id="failure-{i}"><h3><span class="badge" style="background:'
                 f'{COLORS.get(e["verdict"], "#999")}">{_e(e["verdict"])}</span> {_e(e["target"])} &#8212; '
                 f'{_e(e["op"])} {_dims(e)}{_e(e["dtype"])} <small>{_e(e["what"])} {_e(e["source"])}</small></h3>']
        if f.get("kind") or f.get("message"):
            parts.append(f"<p><b>{_e(f.get('kind') or '')}</b>: {_e(f.get('message') or '')}</p>")
        if f.get("case"):
            parts.append(f"<p>case: <code>{_e(f['case'])}</code></p>")
        w = f.get("worst")
        if w:
            parts.append(f"<p>worst element {_e(tuple(w.get('index') or ()))}: expected {_e(w.get('expected'))}, "
                         f"got {_e(w.get('actual'))}, error {_e(_g(w.get('error')))} vs bound {_e(_g(w.get('bound')))}"
                         + (f" ({_e(w['judged'])})" if w.get("judged") else "") + "</p>")
        for k in f.get("known") or []:
            parts.append(f"<p>known divergence: {_e(k)}</p>")
        if f.get("diagnosis"):
            parts.append('<div class="diagnosis"><b>diagnosis</b><ul>'
                         + "".join(f"<li>{_e(d)}</li>" for d in f["diagnosis"]) + "</ul></div>")
        if f.get("traceback"):
            parts.append(f"<details><summary>details</summary><pre>{_e(f['traceback'])}</pre></details>")
        if f.get("repro"):
            parts.append(f'<div class="repro"><b>reproduce</b> <button type="button" onclick="copyRepro({i})">copy'
                         f'</button><pre><code id="repro-{i}">{_e(f["repro"])}</code></pre></div>')
        parts.append("</div>")
        out.append("".join(parts))
    return "".join(out)


def _dims(e: dict[str, Any]) -> str:
    return f"{e['dims']}-D " if isinstance(e.get("dims"), int) else ""


def _g(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, (int, float)) else str(v)


def _plot(op: str, items: list[dict[str, Any]]) -> str:
    """Inline SVG: log10(bound) across, log10(error) up, the diagonal error = bound; error 0 on the bottom line."""
    pts = [(e["target"], err, bnd, label) for e in items for err, bnd, label in e["points"]
           if isinstance(bnd, (int, float)) and isinstance(err, (int, float)) and bnd > 0 and math.isfinite(bnd)
           and math.isfinite(err)]
    if not pts:
        return ""
    logs = [math.log10(b) for _, _, b, _ in pts] + [math.log10(e) for _, e, _, _ in pts if e > 0]
    lo, hi = math.floor(min(logs)) - 1, math.ceil(max(logs))
    W, H, L, B = 560, 420, 64, 48
    span = max(hi - lo, 1)

    def sx(v: float) -> float:
        return L + (v - lo) / span * (W - L - 16)

    def sy(v: float) -> float:
        return H - B - (v - lo) / span * (H - B - 16)

    zero_y = H - B + 14
    targets = list(dict.fromkeys(t for t, *_ in pts))
    g = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 24 + 16 * len(targets)}" '
         f'role="img" aria-label="error against bound, {_e(op)}">',
         f'<text x="{W / 2}" y="12" text-anchor="middle" font-weight="bold">{_e(op)}: measured error vs bound</text>']
    step = max(1, math.ceil(span / 8))  # at most about 8 labelled decades per axis
    for k in range(lo, hi + 1, step):
        x, y = sx(k), sy(k)
        g.append(f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>'
                 f'<line x1="{L}" y1="{y:.1f}" x2="{W - 16}" y2="{y:.1f}" stroke="#eee"/>'
                 f'<text x="{x:.1f}" y="{H - B + 30}" font-size="10" text-anchor="middle">1e{k}</text>'
                 f'<text x="{L - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">1e{k}</text>')
    g.append(f'<text x="{L - 4}" y="{zero_y + 3}" font-size="10" text-anchor="end">0</text>')
    g.append(f'<line x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}" stroke="#d73027" '
             'stroke-dasharray="4 3"><title>error = bound</title></line>')
    g.append(f'<text x="{(L + W) / 2}" y="{H - B + 44}" font-size="11" text-anchor="middle">bound</text>'
             f'<text x="14" y="{(H - B) / 2}" font-size="11" text-anchor="middle" '
             f'transform="rotate(-90 14 {(H - B) / 2})">measured error</text>')
    for t, err, bnd, label in pts:
        c = PALETTE[targets.index(t) % len(PALETTE)]
        y = sy(math.log10(err)) if err > 0 else zero_y
        over = err > bnd
        g.append(f'<circle cx="{sx(math.log10(bnd)):.1f}" cy="{y:.1f}" r="{4 if over else 2.5}" fill="{c}" '
                 f'fill-opacity="0.7" stroke="{"#d73027" if over else "none"}" stroke-width="2">'
                 f'<title>{_e(t)}: {_e(label)}: error {_g(err)}, bound {_g(bnd)}</title></circle>')
    for i, t in enumerate(targets):
        y = H + 12 + 16 * i
        g.append(f'<circle cx="{L + 6}" cy="{y - 4}" r="4" fill="{PALETTE[i % len(PALETTE)]}"/>'
                 f'<text x="{L + 16}" y="{y}" font-size="11">{_e(t)} ({sum(p[0] == t for p in pts)} cases)</text>')
    g.append("</svg>")
    return "".join(g)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px}table.matrix{border-collapse:collapse}
.matrix th,.matrix td{border:1px solid #999;padding:4px 8px;text-align:center}.matrix td.v{color:#fff;font-weight:bold}
.failure{border:1px solid #ccc;border-radius:4px;padding:0 1em;margin:1em 0}.badge{color:#fff;padding:2px 6px;border-radius:3px}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}.plots{display:flex;flex-wrap:wrap;gap:1em}"""

_JS = """function copyRepro(i){var t=document.getElementById('repro-'+i).textContent;
if(navigator.clipboard){navigator.clipboard.writeText(t);}else{var a=document.createElement('textarea');a.value=t;
document.body.appendChild(a);a.select();document.execCommand('copy');document.body.removeChild(a);}}"""


def render(docs: list[tuple[str, Any]], *, title: str = "refconv conformance report") -> str:
    """The page for ``docs``, a list of ``(name, parsed JSON document)``."""
    items = [e for name, d in docs for e in entries(d, name)]
    counts = {v: sum(e["verdict"] == v for e in items) for v in ORDER}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    ops = list(dict.fromkeys(e["op"] for e in items))
    plots = "".join(_plot(op, [e for e in items if e["op"] == op]) for op in ops)
    sources = "".join(f"<li><code>{_e(name)}</code></li>" for name, _ in docs)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"
            f'<p id="summary">{len(items)} checks: {_e(summary or "none")}</p>'
            f"<h2>Verdicts</h2>{_matrix(items) if items else '<p>no checks</p>'}"
            f'<h2>Failures</h2><div id="failures">{_failures(items)}</div>'
            f"<h2>Measured error against the bound</h2><p>One point per judged case (per layer for networks): "
            f"the bound across, the measured error up, both log scale; the dashed diagonal is error = bound, "
            f"points on the bottom line are exact.</p><div class=\"plots\">{plots or '<p>no judged values</p>'}</div>"
            f"<h2>Sources</h2><ul>{sources}</ul><script>{_JS}</script></body></html>")
