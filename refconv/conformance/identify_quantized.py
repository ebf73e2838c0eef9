"""Fingerprint a quantized convolution (``qlinear_conv``): its rounding, padding and overflow conventions.

Each row is a probe crafted so that the conventions give different outputs, compared bit for bit with the
oracle run under each convention (``refconv.quantized``):

- ``ties``: ``x - zx = -128 .. 127`` times ``M = 1/8`` (a tie at every fourth odd value): half to even,
  half away from zero, half up, gemmlowp's double rounding, truncation, floor;
- ``scale``: ``3 * fl32(1/6)``, just above a tie: the exact product or the float32 scale path;
- ``padding``: an input equal to its zero point, padded: the zero point (exact zeros) or the raw 0;
- ``saturation``: results past both ends of uint8: clamped, or the low 8 bits (the cast wraps);
- ``accumulator``: 66400 products of 255 * 127 (2150364000, past int32): exact, wrapped modulo 2**32,
  saturated at int32;
- ``per-channel``: scales 1/4 and 1/16 on two channels: honoured, or the first used for both.

A probe the target refuses is tried again with the same real values in int8 on a ``(1, L)`` plane (an
int8-only 2-D kernel); refused again, the row says so (its exception) instead of a convention.  The rows after ``ties`` are
judged in the rounding mode the ties showed (when it is one of :data:`refconv.quantized.ROUNDINGS`).

Examples
--------
>>> fp = identify_quantized('refconv.oracle')
>>> fp['ties'], fp['scale'], fp['padding'], fp['accumulator']
('half_even', 'exact', 'the zero point', 'exact (int64 or wider)')
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import numpy as np

from .. import quantized as Q

__all__ = ["identify_quantized", "table", "ROWS"]

ROWS = ("ties", "scale", "padding", "saturation", "accumulator", "per-channel")
_KW1 = dict(stride=(1,), padding=((0, 0),), dilation=(1,), groups=1, out_dtype="uint8")


def _args(x: np.ndarray, sx: float, zx: int, w: np.ndarray, sw: Any, zw: Any, sy: float, zy: int) -> tuple:
    return (x.astype(np.uint8), np.float32(sx), np.uint8(zx), w.astype(np.int8), np.asarray(sw, np.float32)[()],
            np.asarray(zw, np.int8)[()], np.float32(sy), np.uint8(zy), None)


def _probes(base: str = "half_even") -> dict[str, tuple[tuple, dict, dict[str, Callable[[tuple, dict], np.ndarray]]]]:
    """row -> (arguments, keywords, {convention: its result on them}); rows after ``ties`` round by ``base``."""
    oracle = lambda r: (lambda a, k: Q.qlinear_conv(*a, **k, rounding=r))  # noqa: E731

    def other_rounding(mode: str) -> Callable:
        def run(a: tuple, k: dict) -> np.ndarray:
            acc = Q.conv_integer(a[0], a[3], a[2], a[5], **{n: v for n, v in k.items() if n != "out_dtype"})
            m = Q.real_multiplier(a[1], a[4], a[6], acc.shape[1], "half_even")[0]
            v = [int(a[7]) + (int(np.floor(Fraction(int(t)) * m)) if mode == "floor" else int(Fraction(int(t)) * m))
                 for t in acc.ravel()]
            return np.clip(v, *Q.OUT_DTYPES[k["out_dtype"]]).reshape(acc.shape)
        return run

    ties = _args(np.arange(256).reshape(1, 1, 256), 0.5, 128, np.ones((1, 1, 1)), 0.25, 0, 1.0, 128)
    rounding = {r: oracle(r) for r in ("half_even", "half_away", "half_up", "gemmlowp")}
    rounding.update(truncate=other_rounding("truncate"), floor=other_rounding("floor"))
    near = _args(np.array([[[131, 137, 143]]]), float(np.float32(1 / 6)), 128, np.ones((1, 1, 1)), 1.0, 0, 1.0, 128)
    pad = _args(np.full((1, 1, 3), 200), 1.0, 200, np.ones((1, 1, 3)), 1.0, 0, 1.0, 100)
    pad_kw = {**_KW1, "padding": ((1, 1),)}  # 'same' for the 3-tap kernel

    def raw_zero(a: tuple, k: dict) -> np.ndarray:
        # padded with the raw 0, then shifted by zx
        xp = np.pad(a[0].astype(np.int64), [(0, 0), (0, 0)] + [tuple(p) for p in k["padding"]])
        return Q.qlinear_conv(xp, *a[1:], **{**k, "padding": 0}, rounding=base)

    sat = _args(np.array([[[0, 255, 128]]]), 1.0, 128, np.ones((1, 1, 1)) * 100, 1.0, 0, 1.0, 128)

    def wrapped(a: tuple, k: dict) -> np.ndarray:
        acc = Q.conv_integer(a[0], a[3], a[2], a[5], **{n: v for n, v in k.items() if n != "out_dtype"})
        lo = Q.OUT_DTYPES[k["out_dtype"]][0]
        return np.asarray([(int(v) + int(a[7]) - lo) % 256 + lo for v in acc.ravel()]).reshape(acc.shape)

    # 66400 products of 255 * 127: 2150364000 > 2**31 - 1 (weight zero point 0: every engine takes it); y_scale
    # puts the exact result at 100.6 (-> 101) and int32's limit at 100.37 (-> 100); a wrapped sum clamps to 0
    sy = float(np.float32(255 * 127 * 66400 / 100.6))
    big = _args(np.full((1, 66400, 1), 255), 1.0, 0, np.full((1, 66400, 1), 127), 1.0, 0, sy, 0)

    def acc_as(f: Callable[[int], int]) -> Callable:
        def run(a: tuple, k: dict) -> np.ndarray:
            acc = Q.conv_integer(a[0], a[3], a[2], a[5], **{n: v for n, v in k.items() if n != "out_dtype"})
            m = Q.real_multiplier(a[1], a[4], a[6], 1, "half_even")[0]
            v = Q.requantize([f(int(acc.ravel()[0]))], m, a[7], out_dtype=k["out_dtype"], rounding=base)
            return v.reshape(acc.shape)
        return run

    per = _args(np.arange(64, 192).reshape(1, 1, 128), 1.0, 128, np.ones((2, 1, 1)), [0.25, 0.0625], [0, 0], 1.0, 128)
    first = lambda a, k: Q.qlinear_conv(*(*a[:4], np.float32(a[4][0]), *a[5:]), **k, rounding=base)  # noqa: E731
    return {
        "ties": (ties, _KW1, rounding),
        "scale": (near, _KW1, {"exact": oracle(base), "float32 scale path": oracle("float32")}),
        "padding": (pad, pad_kw, {"the zero point": oracle(base), "raw 0": raw_zero}),
        "saturation": (sat, _KW1, {"saturates": oracle(base), "wraps (low 8 bits)": wrapped}),
        "accumulator": (big, _KW1, {"exact (int64 or wider)": oracle(base), "int32, wraps": acc_as(Q.wrap_int32),
                                    "int32, saturates": acc_as(lambda v: min(max(v, Q.INT32_MIN), Q.INT32_MAX))}),
        "per-channel": (per, _KW1, {"per-channel scales": oracle(base), "first scale for all": first}),
    }


def identify_quantized(target: Any, *, timeout: float | None = 10.0) -> dict[str, str]:
    """Row -> the convention(s) the target's ``qlinear_conv`` matches on that probe ('/'-joined), or why not."""
    from .targets import resolve

    fn = resolve(target).function("qlinear_conv")
    out: dict[str, str] = {}
    probes = _probes()
    for row in ROWS:
        if row == "scale" and out["ties"] in Q.ROUNDINGS:
            probes = _probes(out["ties"])  # the later rows judged in the rounding the ties showed
        args, kw, conventions = probes[row]
        y, refusal = _call(fn, args, kw, timeout)
        if refusal:
            # the same probe in int8 and 2-D (an int8-only 2-D kernel such as TFLite's)
            args, kw = _int8_2d(args, kw)
            y, _ = _call(fn, args, kw, timeout)
        if y is None:
            out[row] = f"refused ({refusal})"
            continue
        hits = [name for name, f in conventions.items() if _same(f, args, kw, y)]
        out[row] = " / ".join(hits) if hits else "none of the known conventions"
    return out


def _call(fn: Callable, args: tuple, kw: dict, timeout: float | None) -> tuple[np.ndarray | None, str]:
    """The target's result, or None and why it refused."""
    from .isolation import call_in_process

    try:
        return np.asarray(call_in_process(lambda: fn(*args, **kw), timeout)), ""
    except BaseException as exc:  # noqa: BLE001 - the target's refusal is the row's finding
        if isinstance(exc, KeyboardInterrupt):
            raise
        return None, f"{type(exc).__name__}: {str(exc)[:80]}"


def _int8_2d(args: tuple, kw: dict) -> tuple[tuple, dict]:
    """The probe with the same real values in int8 (values and zero points minus 128) on a (1, L) plane."""
    x, sx, zx, w, sw, zw, sy, zy, b = args
    x8 = (x.astype(np.int16) - 128).astype(np.int8)[:, :, None, :]
    args8 = (x8, sx, np.int8(int(zx) - 128), w[:, :, None, :], sw, zw, sy, np.int8(int(zy) - 128), b)
    return args8, {"stride": (1,) + tuple(kw["stride"]), "padding": ((0, 0),) + tuple(kw["padding"]),
                   "dilation": (1,) + tuple(kw["dilation"]), "groups": kw["groups"], "out_dtype": "int8"}


def _same(convention: Callable, args: tuple, kw: dict, y: np.ndarray) -> bool:
    """Whether the convention's result is ``y`` bit for bit (one that does not apply to the probe is not)."""
    from ..params import ConvParamError

    try:
        e = np.asarray(convention(args, kw))
    except ConvParamError:  # e.g. gemmlowp on an accumulator beyond int32
        return False
    return e.shape == y.shape and np.array_equal(e.astype(np.int64), y.astype(np.int64))


def table(fingerprints: dict[str, dict[str, str]]) -> str:
    """One column per target, one row per probe."""
    names = list(fingerprints)
    width = max([len(r) for r in ROWS] + [11])
    cols = [max([len(n)] + [len(fp.get(r, "")) for r in ROWS]) for n, fp in fingerprints.items()]
    lines = ["quantized".ljust(width) + "  " + "  ".join(n.ljust(c) for n, c in zip(names, cols))]
    for r in ROWS:
        lines.append(r.ljust(width) + "  " + "  ".join(fingerprints[n].get(r, "").ljust(c) for n, c in zip(names, cols)))
    return "\n".join(line.rstrip() for line in lines)
