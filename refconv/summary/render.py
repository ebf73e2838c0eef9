"""A :class:`~refconv.summary.table.Summary` as a text table, JSON, Markdown or CSV.

Numbers stay exact: integers are printed in full (with thousands separators
in the text and Markdown tables, plain in JSON and CSV); sympy formulas are
printed as strings.  ``bias_macs`` chooses which multiply-add count the table
column shows; JSON and CSV always carry both.

>>> from refconv.summary.layers import Conv, Sequential
>>> from refconv.summary.table import summarize
>>> s = summarize(Sequential([Conv(2, 3)]), (1, 5, 5))
>>> print(render(s, "csv"), end="")
path,type,description,input_shape,output_shape,params,buffers,macs,macs_with_bias,activations,activation_bytes,receptive_field,jump
0,conv,"2, 3",1x5x5,2x3x3,20,0,162,180,18,72,3x3,1x1
TOTAL,,,1x5x5,2x3x3,20,0,162,180,43,172,,
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Optional

from .layers import is_symbolic
from .table import Summary

__all__ = ["FORMATS", "render", "to_dict"]

FORMATS = ("table", "json", "markdown", "csv")


def _shape(shape: Optional[tuple[Any, ...]]) -> str:
    if shape is None:
        return ""
    # a formula that is not a single symbol or number is parenthesized: 6x(H - 4)x(W - 4)
    return "x".join(str(v) if not is_symbolic(v) or v.is_Atom else f"({v})" for v in shape)


def _num(v: Any) -> str:
    """Thousands separators for integers; formulas as sympy prints them."""
    return f"{v:,}" if not is_symbolic(v) else str(v)


def _json_value(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    if v is None or isinstance(v, (bool, str)):
        return v
    if not is_symbolic(v):
        return int(v)
    return str(v)


def _human(nbytes: Any) -> str:
    """``'115,306,400 B (115.3 MB, 110.0 MiB)'``; formulas stay formulas.

    >>> _human(96 * 10**6)
    '96,000,000 B (96.0 MB, 91.6 MiB)'
    """
    if is_symbolic(nbytes):
        return f"{nbytes} B"
    return f"{nbytes:,} B ({nbytes / 1e6:,.1f} MB, {nbytes / 2**20:,.1f} MiB)"


def to_dict(s: Summary) -> dict[str, Any]:
    """Everything in the summary, JSON-ready (formulas as strings)."""
    totals = {k: _json_value(v) for k, v in s.totals().items()}
    return {
        "network": s.name,
        "input_shape": _json_value(s.input_shape),
        "output_shape": _json_value(s.output_shape),
        "side_outputs": [{"path": p, "output_shape": _json_value(o)} for p, o in s.side_outputs],
        "batch": s.batch,
        "dtype": s.dtype,
        "bytes_per_element": s.itemsize,
        "inplace_activations": s.inplace,
        "conventions": {
            "macs": "products of convolution and linear weighted sums; bias additions excluded",
            "macs_with_bias": "macs plus one addition per output element of a layer with a bias",
            "buffers": "non-trainable state: batch-norm running mean and variance",
            "forward": "input plus every produced tensor (Flatten is a view"
            + ("; ReLU/LeakyReLU/Dropout in place)" if s.inplace else ")"),
            "training": "forward values plus one gradient of each (2x forward)",
        },
        "layers": [
            {
                "path": r.path,
                "type": r.kind,
                "description": r.description,
                "depth": r.depth,
                "input_shape": _json_value(r.input_shape),
                "output_shape": _json_value(r.output_shape),
                "params": _json_value(r.params),
                "buffers": _json_value(r.buffers),
                "macs": _json_value(r.macs),
                "macs_with_bias": _json_value(r.macs_bias),
                "activations": _json_value(r.activations),
                "activation_bytes": _json_value(r.activations * s.itemsize),
                "receptive_field": _json_value(r.receptive_field),
                "jump": _json_value(r.jump),
            }
            for r in s.rows
        ],
        "totals": totals,
        "warnings": [{"path": w.path, "category": w.category, "message": w.message} for w in s.warnings],
    }


def _columns(s: Summary, bias_macs: bool) -> tuple[list[str], list[list[str]]]:
    head = ["layer", "type", "", "output", "params", "MACs" + (" (+bias)" if bias_macs else " (no bias)"),
            "activations", f"bytes ({s.dtype})", "RF"]
    body = [
        [r.path, r.kind, r.description, _shape(r.output_shape), _num(r.params + r.buffers) + ("*" if r.buffers else ""),
         _num(r.macs_bias if bias_macs else r.macs), _num(r.activations), _num(r.activations * s.itemsize),
         _shape(r.receptive_field)]
        for r in s.rows
    ]
    return head, body


def _totals_lines(s: Summary) -> list[str]:
    t = s.totals()
    lines = [
        f"parameters: {_num(t['params'])} trainable + {_num(t['non_trainable_buffers'])} non-trainable buffers"
        f" = {_human(t['param_bytes'])} in {s.dtype}" + (
            f" ({_num(t['params'] - t['int32_bias_params'])} weights in {s.dtype}, {_num(t['int32_bias_params'])} "
            "biases in int32)" if s.quantized else ""),
        f"multiply-adds per image: {_num(t['macs'])} without bias additions, {_num(t['macs_with_bias'])} with them",
        f"forward activations per image: {_num(t['forward_activations_per_image'])} elements = "
        f"{_human(t['forward_bytes_per_image'])}",
        f"training activations per image (values + gradients): {_human(t['training_bytes_per_image'])}",
    ]
    if s.batch != 1:
        lines += [
            f"batch of {s.batch}: forward {_human(t['forward_bytes_batch'])}, "
            f"training {_human(t['training_bytes_batch'])}, multiply-adds {_num(t['macs_batch'])}",
        ]
    lines.append(f"output: {_shape(s.output_shape)}" + "".join(
        f"; side output {p}: {_shape(o)}" for p, o in s.side_outputs))
    return lines


def _text(s: Summary, bias_macs: bool) -> str:
    head, body = _columns(s, bias_macs)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    numeric = {4, 5, 6, 7}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(head))
    out = [f"{s.name}: input {_shape(s.input_shape)}, batch {s.batch}, {s.dtype} ({s.itemsize} bytes)", rule,
           line(head), rule, *(line(r) for r in body), rule, *_totals_lines(s)]
    if any(r.buffers for r in s.rows):
        out.append("* includes non-trainable buffers (batch-norm running mean and variance)")
    out += [f"warning: {w}" for w in s.warnings]
    return "\n".join(out) + "\n"


def _markdown(s: Summary, bias_macs: bool) -> str:
    head, body = _columns(s, bias_macs)
    head[2] = "settings"

    def esc(c: str) -> str:
        # table separators, and the emphasis markers of products in formulas (6*H*W)
        return c.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")

    out = [f"### {s.name}: input {_shape(s.input_shape)}, batch {s.batch}, {s.dtype}", "",
           "| " + " | ".join(head) + " |", "|" + "|".join("---:" if i in (4, 5, 6, 7) else "---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    out += [""] + [f"- {esc(line)}" for line in _totals_lines(s)]
    out += [f"- **warning** {esc(str(w))}" for w in s.warnings]
    return "\n".join(out) + "\n"


def _csv(s: Summary) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "type", "description", "input_shape", "output_shape", "params", "buffers", "macs",
                     "macs_with_bias", "activations", "activation_bytes", "receptive_field", "jump"])
    for r in s.rows:
        writer.writerow([r.path, r.kind, r.description, _shape(r.input_shape), _shape(r.output_shape), r.params,
                         r.buffers, r.macs, r.macs_bias, r.activations, r.activations * s.itemsize,
                         _shape(r.receptive_field), _shape(r.jump)])
    writer.writerow(["TOTAL", "", "", _shape(s.input_shape), _shape(s.output_shape), s.params, s.buffers, s.macs,
                     s.macs_bias, s.forward_elements, s.forward_elements * s.itemsize, "", ""])
    return buf.getvalue()


def render(s: Summary, fmt: str = "table", *, bias_macs: bool = True) -> str:
    """The summary in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "table":
        return _text(s, bias_macs)
    if fmt == "markdown":
        return _markdown(s, bias_macs)
    if fmt == "csv":
        return _csv(s)
    if fmt == "json":
        return json.dumps(to_dict(s), indent=2) + "\n"
    from ..params import ConvParamError

    raise ConvParamError(f"format={fmt!r}: formats are {', '.join(FORMATS)}")
