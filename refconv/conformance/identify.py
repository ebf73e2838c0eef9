"""Convention fingerprinting: probe an implementation with impulses and small integers.

Each probe calls the target on one tiny integer input and compares the
result, exactly, with the oracle under every candidate convention; the
finding is the convention that matches (or ``'none matched'`` / the exception).
Probes go through the canonical signature (what the target does with the
explicit parameters) and, for built-in adapters, through the library's own
``same`` modes (which side gets the odd zero).

Examples
--------
>>> from refconv import oracle
>>> fp = identify('refconv.oracle', ops=('conv',))
>>> fp['conv.kernel']
'cross-correlation (no flip)'
>>> fp['conv.dilation']
'counted from 1 (dilation 1 is dense)'
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from . import ops
from .cases import Case
from .diagnose import Candidate, _explicit_pool, _interleave
from .targets import Target, resolve

__all__ = ["identify", "table", "PROPERTIES", "native_same_side"]

#: property -> one-line meaning, in table order
PROPERTIES = {
    "conv.kernel": "correlation or convolution (kernel flip)",
    "conv.padding": "padding pair (lo, hi) applied as given",
    "conv.dilation": "dilation counted from 0 or 1",
    "conv.stride": "first strided output at offset 0",
    "conv.groups": "group mapping of channels",
    "conv.layout": "memory layout",
    "same.odd_zero": "odd 'same' padding: side of the extra zero (library's own mode)",
    "max_pool.ceil": "ceil_mode rule",
    "avg_pool.divisor_include_pad": "avg pool divisor with count_include_pad=True",
    "avg_pool.divisor_exclude_pad": "avg pool divisor with count_include_pad=False",
    "conv_transpose.weight": "transposed-convolution weight layout",
    "conv_transpose.crop": "transposed-convolution crop (padding) sides",
}


_CAPS: list = []  # capabilities of the target being probed (set by identify)


def _probe(fn: Callable, case: Case, arrays: dict[str, np.ndarray], truth: str, alts: list[tuple[str, Candidate]]) -> str:
    caps = _CAPS[-1] if _CAPS else None
    if caps is not None and not caps.supports(case):
        return "not offered"
    # small integers: exact in float32, which every adapter accepts
    call_arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    try:
        y = np.asarray(ops.call(fn, case, call_arrays), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - an unsupported probe is a finding, not a crash
        return f"raises {type(exc).__name__}"
    exp = ops.expected(case, arrays)
    if y.shape == exp.shape and np.array_equal(y, exp):
        return truth
    for label, cand in alts:
        try:
            c = cand.evaluate(arrays)
        except Exception:  # noqa: BLE001
            continue
        if c.shape == y.shape and np.array_equal(c, y):
            return label
    return "none matched"


def _ints(case: Case, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.integers(1, 10, size=s).astype(np.float64) for k, s in case.input_shapes().items()}


def _conv_probes(fn: Callable) -> dict[str, str]:
    out = {}
    c = Case("conv", 1, 1, 1, (6,), (3,))
    a = {"x": np.array([[[0, 0, 1, 0, 0, 0]]], float), "w": np.array([[[1, 2, 4]]], float)}  # an impulse
    flipped = Candidate("", "", c, inputs=lambda d: {**d, "w": d["w"][..., ::-1]})
    out["conv.kernel"] = _probe(fn, c, a, "cross-correlation (no flip)", [("convolution (kernel flipped)", flipped)])
    c = Case("conv", 1, 1, 1, (5,), (2,), padding=((0, 1),))
    a = _ints(c)
    out["conv.padding"] = _probe(fn, c, a, "(lo, hi) as given", [("(hi, lo): sides swapped", Candidate("", "", replace(c, padding=((1, 0),))))])
    c = Case("conv", 1, 1, 1, (7,), (2,), dilation=(2,))
    a = _ints(c)
    out["conv.dilation"] = _probe(fn, c, a, "counted from 1 (dilation 1 is dense)",
                                  [("counted from 0 (dilation 0 is dense)", Candidate("", "", replace(c, dilation=(3,))))])
    c = Case("conv", 1, 1, 1, (7,), (2,), stride=(2,))
    a = _ints(c)
    one = replace(c, stride=(1,), padding=((0, 1),))
    out["conv.stride"] = _probe(fn, c, a, "offset 0", [("offset 1", Candidate("", "", one, output=lambda y: y[..., 1::2][..., :3]))])
    c = Case("conv", 1, 4, 4, (3,), (1,), groups=2)
    a = _ints(c)
    out["conv.groups"] = _probe(fn, c, a, "contiguous blocks (o // (C_out/groups))",
                                [("interleaved (o % groups)", Candidate("", "", c, compute=_interleave(c, "output")))])
    c = Case("conv", 1, 2, 1, (5,), (3,))
    a = _ints(c)
    nhwc = _probe(fn, c, a, "channels first (N, C, *spatial)", [])
    out["conv.layout"] = nhwc if nhwc != "none matched" else "not channels first"
    return out


def _pool_probes(target: Target, caps: Callable) -> dict[str, str]:
    out = {}
    caps("max_pool")
    try:
        mp = target.function("max_pool")
    except Exception:  # noqa: BLE001
        mp = None
    if mp is not None:
        # n=6, k=3, s=2, pad 1: floor gives 3 windows, ceil 4 (the 4th starts inside the input)
        c = Case("max_pool", 1, 1, 1, (6,), (3,), stride=(2,), padding=((1, 1),), ceil_mode=True)
        a = {"x": np.array([[[1, 2, 3, 4, 5, 6]]], float)}
        first = _probe(mp, c, a, "ceil", [("floor (ceil_mode ignored)", _explicit_pool(c, c.padding, -np.inf, "floor", "padded"))])
        if first == "ceil":
            # n=5, k=2, s=2, pad 1: plain ceil adds a 4th window starting in the right padding; PyTorch's rule drops it
            c = Case("max_pool", 1, 1, 1, (5,), (2,), stride=(2,), padding=((1, 1),), ceil_mode=True)
            a = {"x": np.array([[[1, 2, 3, 4, 5]]], float)}
            first = _probe(mp, c, a, "ceil; last window must start inside input or left padding (PyTorch)",
                           [("plain ceil (a window may start in the right padding)", _explicit_pool(c, c.padding, -np.inf, "plain", "padded"))])
        out["max_pool.ceil"] = first
    try:
        ap = target.function("avg_pool")
    except Exception:  # noqa: BLE001
        ap = None
    caps("avg_pool")
    if ap is not None:
        for cip, key in ((True, "avg_pool.divisor_include_pad"), (False, "avg_pool.divisor_exclude_pad")):
            c = Case("avg_pool", 1, 1, 1, (5,), (3,), stride=(2,), padding=((1, 1),), ceil_mode=True, count_include_pad=cip)
            a = {"x": np.array([[[6, 12, 24, 48, 96]]], float)}  # window sums divisible by 1, 2 and 3: exact averages
            labels = {"padded": "window inside input + padding", "input": "input elements only",
                      "kernel": "always the kernel size"}
            truth = labels["padded" if cip else "input"]
            alts = []
            for rule in ("pytorch", "plain", "floor"):
                for div, lab in labels.items():
                    cand = _explicit_pool(c, c.padding, 0.0, rule, div)
                    if cand is not None and not (rule == "pytorch" and lab == truth):
                        alts.append((lab + ("" if rule == "pytorch" else f" ({rule} ceil)"), cand))
            c2 = c
            if not target.capabilities("avg_pool", 1, "float32").ceil_mode:
                c2 = replace(c, ceil_mode=False)
                alts = [(lab, _explicit_pool(c2, c2.padding, 0.0, "floor", div)) for div, lab in labels.items() if lab != truth]
            if cip not in target.capabilities("avg_pool", 1, "float32").count_include_pad:
                out[key] = "not offered"
                continue
            out[key] = _probe(ap, c2, a, truth, alts)
    return out


def _transpose_probes(target: Target) -> dict[str, str]:
    out = {}
    try:
        fn = target.function("conv_transpose")
    except Exception:  # noqa: BLE001
        return out
    c = Case("conv_transpose", 1, 2, 2, (3,), (2,))
    a = _ints(c)
    swapped = Candidate("", "", c, inputs=lambda d: {**d, "w": np.swapaxes(d["w"], 0, 1)})
    out["conv_transpose.weight"] = _probe(fn, c, a, "(C_in, C_out/groups, *K)",
                                          [("(C_out, C_in/groups, *K)", swapped)])
    caps = target.capabilities("conv_transpose", 1, "float32")
    c = Case("conv_transpose", 1, 1, 1, (3,), (3,), stride=(2,), padding=((0, 1),))
    if "asymmetric" not in caps.padding:
        out["conv_transpose.crop"] = "symmetric only"
    else:
        a = _ints(c)
        out["conv_transpose.crop"] = _probe(fn, c, a, "lo from the start, hi from the end",
                                            [("swapped", Candidate("", "", replace(c, padding=((1, 0),))))])
    return out


def native_same_side(target: Target) -> str:
    """Which side the library's own odd 'same' padding puts the extra zero on (adapters only)."""
    from .. import oracle

    x = np.array([[[1.0, 2.0, 4.0, 8.0]]])
    w = np.array([[[1.0, 16.0]]])
    fns = _native_same(target.name)
    if not fns:
        return "no 'same' mode"
    found = []
    for label, fn in fns.items():
        try:
            y = np.asarray(fn(x, w), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001
            found.append(f"{label}: raises {type(exc).__name__}")
            continue
        if np.array_equal(y, oracle.conv(x, w, padding="same")):
            found.append(f"{label}: end")
        elif np.array_equal(y, oracle.conv(x, w, padding="same_lower")):
            found.append(f"{label}: start")
        else:
            found.append(f"{label}: none matched")
    return "; ".join(found)


def _native_same(name: str) -> dict[str, Callable]:
    if name == "torch":
        def t(x, w):
            import torch

            return torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), padding="same").numpy()
        return {"padding='same'": t}
    if name == "onnxruntime":
        from .adapters.onnx_adapter import run_node

        return {m: (lambda x, w, m=m: run_node("Conv", [x.astype(np.float32), w.astype(np.float32)], kernel_shape=[2], auto_pad=m))
                for m in ("SAME_UPPER", "SAME_LOWER")}
    if name == "jax":
        def j(x, w):
            from jax import lax

            return np.asarray(lax.conv_general_dilated(x.astype(np.float32), w.astype(np.float32), (1,), "SAME",
                                                       dimension_numbers=("NCH", "OIH", "NCH")))
        return {"padding='SAME'": j}
    if name == "scipy":
        from scipy import signal

        return {"correlate(mode='same')": lambda x, w: signal.correlate(x[0, 0], w[0, 0], mode="same")[None, None]}
    if name == "numpy":
        return {"correlate(mode='same')": lambda x, w: np.correlate(x[0, 0], w[0, 0], mode="same")[None, None]}
    return {}


def identify(target: Any, *, ops: tuple[str, ...] = ("conv", "max_pool", "avg_pool", "conv_transpose")) -> dict[str, str]:
    """Fingerprint of ``target``'s conventions: ``{property: finding}`` (see :data:`PROPERTIES`)."""
    tgt = resolve(target)
    out: dict[str, str] = {}
    try:
        return _identify(tgt, ops, out)
    finally:
        _CAPS.clear()


def _identify(tgt: Target, ops: tuple[str, ...], out: dict[str, str]) -> dict[str, str]:
    def caps(op: str) -> None:
        _CAPS.clear()
        try:
            _CAPS.append(tgt.capabilities(op, 1, "float32"))
        except Exception:  # noqa: BLE001
            pass

    if "conv" in ops:
        caps("conv")
        try:
            out.update(_conv_probes(tgt.function("conv")))
        except KeyError:
            pass
        same = native_same_side(tgt)
        if same != "no 'same' mode":
            out["same.odd_zero"] = same
    if "max_pool" in ops or "avg_pool" in ops:
        out.update(_pool_probes(tgt, caps))
    if "conv_transpose" in ops:
        caps("conv_transpose")
        out.update(_transpose_probes(tgt))
    return out


def table(fingerprints: dict[str, dict[str, str]]) -> str:
    """A markdown table: one row per property, one column per target."""
    names = list(fingerprints)
    props = [p for p in PROPERTIES if any(p in fp for fp in fingerprints.values())]
    lines = ["| property | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for p in props:
        lines.append(f"| {PROPERTIES[p]} | " + " | ".join(fingerprints[n].get(p, "n/a") for n in names) + " |")
    return "\n".join(lines)


def to_json(fingerprints: dict[str, Any]) -> str:
    return json.dumps(fingerprints, indent=2, sort_keys=True)


#: columns of the framework table: (header, property)
FRAMEWORK_COLUMNS = (
    ("kernel", "conv.kernel"),
    ("odd 'same' zero", "same.odd_zero"),
    ("dilation", "conv.dilation"),
    ("groups", "conv.groups"),
    ("ceil_mode", "max_pool.ceil"),
    ("avg divisor, include pad", "avg_pool.divisor_include_pad"),
    ("avg divisor, exclude pad", "avg_pool.divisor_exclude_pad"),
    ("transposed weight", "conv_transpose.weight"),
    ("transposed crop", "conv_transpose.crop"),
)

ADAPTER_TARGETS = ("torch", "onnxruntime", "jax", "scipy", "numpy")


def framework_table(fingerprints: dict[str, dict[str, str]]) -> str:
    """Markdown table, one row per target, the columns of :data:`FRAMEWORK_COLUMNS`."""
    lines = ["| target | " + " | ".join(h for h, _ in FRAMEWORK_COLUMNS) + " |",
             "|---" * (len(FRAMEWORK_COLUMNS) + 1) + "|"]
    for name, fp in fingerprints.items():
        lines.append(f"| `{name}` | " + " | ".join(fp.get(p, "n/a") for _, p in FRAMEWORK_COLUMNS) + " |")
    return "\n".join(lines)


def adapter_fingerprints() -> dict[str, dict[str, str]]:
    """Fingerprints of the built-in adapters to other libraries (what specs/conventions.md shows)."""
    return {name: identify(name) for name in ADAPTER_TARGETS}
