"""Every convolution and pooling layer of a real network, checked at its real size (specs/networks.md).

``check_network(target, 'resnet50')`` walks the network (a zoo name, a
TOML/JSON network file or a :class:`~refconv.summary.zoo.Network`), collects
each distinct convolution and pooling configuration with the input shape it
sees, in the network's order, and judges the target once per configuration on
inputs of that exact shape:

* pooling layers: every output element against the exact oracle (the oracle
  is vectorized over output positions: one pass per window tap);
* convolutions: a sample of output positions exactly (:func:`positions`:
  every corner, every position whose window touches the padding, the last
  full and first partial tile of each axis for tiles of 2 to 64, every
  channel group boundary and channel tile remainder, plus ``random``
  interior positions), each with the exact oracle evaluated on that
  position's window only (:func:`exact_at`), and the whole output against the
  rigorous error bound, with the fast engine in float64 (direct summation)
  as the reference: ``|actual - ref| <= B + e_ref`` where
  ``e_ref = gamma_n(2**-53) S`` bounds the reference's own error.  A
  violation of that is a certain violation of ``B``; passing it guarantees
  ``|actual - exact| <= B + 2 e_ref``.

The inputs are the catalogue's ``normal`` values (standard normal, rounded to
the dtype), fixed by ``seed`` and the layer's position in the network.

Examples
--------
>>> r = check_network('refconv.fast', 'lenet5', random=4, seed=0)
>>> r.verdict, [layer.op for layer in r.layers]
('PASS', ['conv', 'avg_pool', 'conv', 'avg_pool', 'conv'])
>>> r.layers[0].exact_positions > 4, r.layers[0].bound_elements
(True, 4704)
"""

from __future__ import annotations

import itertools
import math
import os
import time
import traceback
import zlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable

import numpy as np

from .. import fast, oracle, tolerance
from ..atomic import atomic_write
from ..params import ConvParamError, normalize_padding, per_axis
from . import bounds
from .cases import Case, dtype_of
from .report import SCHEMA_VERSION, _jsonable

__all__ = ["LayerCheck", "NetworkReport", "check_network", "layer_cases", "positions", "exact_at", "load_network",
           "DEFAULT_RANDOM"]

#: random interior positions judged exactly per convolution layer, by default
DEFAULT_RANDOM = 64
#: tile widths whose last full and first partial tile are sampled on every axis
TILES = (2, 4, 8, 16, 32, 64)
#: structured positions per layer at most (3-D layers: the borders of each axis along the centre lines beyond it)
MAX_STRUCTURED = 1024
#: positions of each side whose window touches the padding, at most, per axis
MAX_BORDER = 4


# --------------------------------------------------------------------------- the network's layers


def load_network(network: Any) -> Any:
    """A :class:`~refconv.summary.zoo.Network` from a zoo name, a ``.toml``/``.json`` path, or a Network.

    >>> load_network('lenet5').name
    'lenet5'
    >>> load_network('resnet5')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: network='resnet5': neither a zoo name nor a .toml/.json file; zoo names are lenet5, alexnet, alexnet_original, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn, googlenet, googlenet_aux, googlenet_original, resnet18, resnet34, resnet50, resnet101, resnet152
    """
    from ..summary import io, zoo

    if isinstance(network, zoo.Network):
        return network
    if isinstance(network, (str, os.PathLike)):
        spec = os.fspath(network)
        if spec in zoo.ZOO:
            return zoo.get(spec)
        if spec.lower().endswith((".toml", ".json")):
            if not os.path.isfile(spec):
                raise ConvParamError(f"network={spec!r}: no such file")
            return io.load(spec)
        raise ConvParamError(f"network={spec!r}: neither a zoo name nor a .toml/.json file; zoo names are "
                             + ", ".join(zoo.ZOO))
    raise ConvParamError(f"network={network!r}: expected a zoo name, a .toml/.json file or a Network")


def _walk(layer: Any, shape: tuple[int, ...], path: str, out: list) -> tuple[int, ...]:
    """Append ``(path, leaf, input shape)`` for every leaf in forward order; the output shape of ``layer``."""
    from ..summary.layers import Concat, Residual, Sequential, SideOutput

    def join(label: str) -> str:
        return f"{path}.{label}" if path else label

    if isinstance(layer, Sequential):
        for label, child in layer.children():
            shape = _walk(child, shape, join(label), out)
        return shape
    if isinstance(layer, SideOutput):
        for label, child in layer.children():
            _walk(child, shape, join(label), out)
        return shape
    if isinstance(layer, (Concat, Residual)):
        for label, child in layer.children():
            _walk(child, shape, join(label), out)
        return tuple(layer.output_shape(shape))
    out.append((path or layer.kind, layer, tuple(shape)))
    return tuple(layer.output_shape(shape))


def _case_of(layer: Any, shape: tuple[int, ...], batch: int) -> Case | None:
    """The conformance case of a convolution or pooling layer on input ``(batch, *shape)``; None for others."""
    from ..summary.layers import AdaptiveAvgPool, AvgPool, Conv, GlobalAvgPool, MaxPool

    c, sp = shape[0], tuple(shape[1:])
    nd = len(sp)
    if isinstance(layer, GlobalAvgPool):
        return Case("adaptive_avg_pool", n=batch, cin=c, spatial=sp, output_size=(1,) * nd)
    if isinstance(layer, AdaptiveAvgPool):
        return Case("adaptive_avg_pool", n=batch, cin=c, spatial=sp,
                    output_size=per_axis("output_size", layer.output_size, nd, minimum=1))
    if not isinstance(layer, (Conv, MaxPool, AvgPool)):
        return None
    k = per_axis("kernel_size", layer.kernel_size, nd, minimum=1)
    if isinstance(layer, Conv):
        s = per_axis("stride", layer.stride, nd, minimum=1)
        d = per_axis("dilation", layer.dilation, nd, minimum=1)
        pad = tuple(normalize_padding(layer.padding, sp, k, s, d))
        return Case("conv", n=batch, cin=c, cout=layer.out_channels, spatial=sp, kernel=k, stride=s, padding=pad,
                    dilation=d, groups=layer.groups, bias=layer.bias)
    s = k if layer.stride is None else per_axis("stride", layer.stride, nd, minimum=1)
    d = per_axis("dilation", getattr(layer, "dilation", 1), nd, minimum=1)
    pad = tuple(normalize_padding(layer.padding, sp, k, s, d))
    if isinstance(layer, MaxPool):
        return Case("max_pool", n=batch, cin=c, spatial=sp, kernel=k, stride=s, padding=pad, dilation=d,
                    ceil_mode=layer.ceil_mode)
    return Case("avg_pool", n=batch, cin=c, spatial=sp, kernel=k, stride=s, padding=pad, ceil_mode=layer.ceil_mode,
                count_include_pad=layer.count_include_pad)


def layer_cases(network: Any, input_shape: Iterable[int] | None = None, batch: int = 1) -> list[tuple[Case, list[str], str]]:
    """Each distinct convolution and pooling configuration once, in forward order: ``(case, paths, description)``.

    ``paths`` names every layer of the network with that configuration (the
    first one runs); ``description`` is the first layer's summary text.

    >>> [(c.op, c.spatial, len(p)) for c, p, _ in layer_cases('resnet18')][:3]
    [('conv', (224, 224), 1), ('max_pool', (112, 112), 1), ('conv', (56, 56), 4)]
    """
    from ..summary.table import describe

    net = load_network(network)
    shape = net.input_shape if input_shape is None else tuple(input_shape)
    if shape is None:
        raise ConvParamError(f"input_shape=None: network {net.name!r} records no input shape; give one")
    if not shape or any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1 for v in shape):
        raise ConvParamError(f"input_shape={tuple(shape)!r}: expected (C, *spatial) with every size an integer >= 1")
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ConvParamError(f"batch={batch!r}: must be an integer >= 1")
    leaves: list = []
    _walk(net.layers, tuple(int(v) for v in shape), "", leaves)
    seen: dict[Case, tuple[Case, list[str], str]] = {}
    for path, layer, in_shape in leaves:
        case = _case_of(layer, in_shape, int(batch))
        if case is None:
            continue
        if case in seen:
            seen[case][1].append(path)
        else:
            seen[case] = (case, [path], describe(layer))
    return list(seen.values())


# --------------------------------------------------------------------------- positions


def _axis_positions(o: int, n: int, k: int, s: int, lo: int, d: int) -> tuple[list[int], set[int], set[int]]:
    """Output indices of one axis to judge: ``(all, border, tile)``; border windows touch the padding or end the axis."""
    span = d * (k - 1)
    low = [p for p in range(min(o, MAX_BORDER + 1)) if p * s < lo]
    high = [p for p in range(o - 1, max(-1, o - 2 - MAX_BORDER), -1) if p * s - lo + span > n - 1]
    border = {0, o - 1, *low, *high}
    # the first and last windows inside the input (their neighbours are border windows)
    inside = [p for p in (len(low), o - 1 - len(high)) if 0 <= p < o]
    tile = set()
    for t in TILES:
        r = o % t
        if o > t and r:
            tile |= {o - r - 1, o - r}
    return sorted(border | set(inside) | tile | {o // 2}), border, tile


def _channel_positions(c: int, groups: int) -> list[int]:
    """Output channels to judge: first, last, each side of the first and last group boundary, channel tile remainders."""
    per = c // groups
    chans = {0, c - 1, per - 1, min(per, c - 1), max(0, c - per - 1), max(0, c - per)}
    for t in TILES:
        r = c % t
        if c > t and r:
            chans |= {c - r - 1, c - r}
    return sorted(chans)


def positions(case: Case, out_shape: tuple[int, ...], *, random: int = DEFAULT_RANDOM,
              seed: int = 0) -> list[tuple[tuple[int, ...], str]]:
    """The output positions of ``case`` to judge exactly, each with its class.

    Classes: ``corner`` (every spatial index first or last), ``border`` (a
    window touching the padding, or first or last on an axis), ``tile``
    (the last full or first partial tile of an axis for tiles of
    :data:`TILES`), ``inner`` (the first and last windows inside the input,
    the middle), ``random`` (``random`` positions drawn uniformly from the
    windows that touch no padding; deterministic in ``seed``).  Corners are
    judged for every channel of :func:`_channel_positions`; the other
    structured positions cycle through those channels and the first and last
    image.

    >>> c = Case('conv', n=1, cin=2, cout=4, spatial=(5, 5), kernel=(3, 3), padding=((1, 1), (1, 1)))
    >>> ps = positions(c, (1, 4, 5, 5), random=2, seed=0)
    >>> ps[0], sorted({k for _, k in ps})
    (((0, 0, 0, 0), 'corner'), ['border', 'corner', 'inner', 'random', 'tile'])
    """
    n_img, c_out, *osp = out_shape
    if n_img == 0 or c_out == 0 or any(o == 0 for o in osp):
        return []
    axes = [_axis_positions(o, n, k, s, lo, d)
            for o, n, k, s, (lo, _), d in zip(osp, case.spatial, case.kernel, case.stride or (), case.padding or (),
                                              case.dilation or ())]
    chans = _channel_positions(c_out, case.groups if case.op == "conv" else 1)
    imgs = sorted({0, n_img - 1})
    combos = list(itertools.product(*(a[0] for a in axes)))
    if len(combos) > MAX_STRUCTURED:
        # each axis's list along the centre lines of the others, plus every corner
        centre = [o // 2 for o in osp]
        combos = sorted({tuple(centre[:i]) + (p,) + tuple(centre[i + 1:]) for i, a in enumerate(axes) for p in a[0]}
                        | set(itertools.product(*({0, o - 1} for o in osp))))
    out: dict[tuple[int, ...], str] = {}

    def kind(sp: tuple[int, ...]) -> str:
        if all(p in (0, o - 1) for p, o in zip(sp, osp)):
            return "corner"
        if any(p in a[1] for p, a in zip(sp, axes)):
            return "border"
        if any(p in a[2] for p, a in zip(sp, axes)):
            return "tile"
        return "inner"

    for i, sp in enumerate(combos):
        k = kind(sp)
        if k == "corner":
            for ch in chans:
                for im in imgs:
                    out.setdefault((im, ch, *sp), k)
        else:
            out.setdefault((imgs[i % len(imgs)], chans[i % len(chans)], *sp), k)
    rng = np.random.default_rng([seed, 0x5EED])
    lows = [min(len([q for q in a[1] if q < o // 2]), o - 1) for a, o in zip(axes, osp)]
    highs = [max(lo_, o - 1 - len([q for q in a[1] if q > o // 2])) for a, o, lo_ in zip(axes, osp, lows)]
    for _ in range(random):
        pos = (int(rng.integers(n_img)), int(rng.integers(c_out)),
               *(int(rng.integers(lo_, hi_ + 1)) for lo_, hi_ in zip(lows, highs)))
        out.setdefault(pos, "random")
    return sorted(out.items(), key=lambda kv: kv[0])


def _window(case: Case, sp: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[tuple[int, int], ...]] | None:
    """Input slices and explicit padding of the window of output position ``sp``; None if it holds padding only."""
    slices, pads = [], []
    for p, n, k, s, (lo, _), d in zip(sp, case.spatial, case.kernel, case.stride or (), case.padding or (),
                                      case.dilation or ()):
        start = p * s - lo               # window of padded index p*s .. p*s + d(k-1), in input coordinates
        end = start + d * (k - 1) + 1
        a, e = max(start, 0), min(end, n)
        if a >= e:
            return None
        slices.append(slice(a, e))
        pads.append((a - start, end - e))
    return tuple(slices), tuple(pads)


def exact_at(case: Case, arrays: dict[str, np.ndarray], where: Iterable[tuple[int, ...]], *,
             magnitudes: bool = False) -> np.ndarray:
    """The exact convolution at output positions ``where`` (``(n, o, *spatial)``), correctly rounded to float64.

    Each value is :func:`refconv.oracle.conv` of that position's window alone:
    ``b[o] + sum_{c, k} xp[n, g(o) C_in/groups + c, p s + k d] w[o, c, k]``
    with the window cut out of the input and its padding made explicit, so
    the cost is one window per position.  ``magnitudes=True`` gives
    ``S = |b[o]| + sum |x w|`` instead (the error bound's magnitude).

    >>> c = Case('conv', n=1, cin=2, cout=3, spatial=(6, 5), kernel=(3, 2), stride=(2, 1),
    ...          padding=((1, 2), (0, 1)), dilation=(2, 1), groups=1, bias=True)
    >>> a = {k: v.astype(np.float64) for k, v in c.arrays('float32').items()}
    >>> full = oracle.conv(a['x'], a['w'], a['b'], stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(2, 1))
    >>> pts = [tuple(int(i) for i in p) for p in np.ndindex(*full.shape)]
    >>> bool(np.array_equal(exact_at(c, a, pts), full.ravel()))
    True
    """
    x = np.asarray(arrays["x"]).astype(np.float64)
    w = np.asarray(arrays["w"]).astype(np.float64)
    b = arrays.get("b")
    b = None if b is None else np.asarray(b).astype(np.float64)
    if magnitudes:
        x, w, b = np.abs(x), np.abs(w), (None if b is None else np.abs(b))
    cg = case.cin // case.groups
    per = case.cout // case.groups
    vals = []
    for pos in where:
        n, o, *sp = (int(i) for i in pos)
        g = o // per                      # g(o) = o // (C_out / groups)
        win = _window(case, tuple(sp))
        bias = None if b is None else b[o:o + 1]
        if win is None:                   # a window of padding only: the bias alone
            vals.append(0.0 if bias is None else float(bias[0]))
            continue
        slices, pads = win
        xs = x[(slice(n, n + 1), slice(g * cg, (g + 1) * cg), *slices)]
        y = oracle.conv(xs, w[o:o + 1], bias, stride=1, padding=pads, dilation=case.dilation)
        vals.append(float(np.asarray(y).ravel()[0]))
    return np.array(vals, dtype=np.float64)


# --------------------------------------------------------------------------- results


@dataclass
class LayerCheck:
    """The verdict on one distinct layer configuration."""

    index: int
    paths: list[str]
    op: str
    description: str
    case: Case
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None = None
    #: 'PASS', 'FAIL', 'ERROR' or 'SKIPPED' (declared unsupported, or not an op asked for: never a PASS)
    verdict: str = "SKIPPED"
    #: output positions compared with the exact oracle, and how many of them were out of bound
    exact_positions: int = 0
    exact_violations: int = 0
    #: what was judged exactly: 'every element' (pooling) or 'sampled positions' (convolutions)
    exact_scope: str = ""
    #: output elements compared against the rigorous bound with the float64 fast engine as the reference
    bound_elements: int = 0
    bound_violations: int = 0
    #: the largest error / bound over everything judged (0 when every element is exact)
    worst_ratio: float | None = None
    #: the position of the largest error / bound: index, expected, actual, error, bound, and how it was judged
    worst: dict[str, Any] | None = None
    #: the classes of the positions judged exactly, and of those that failed
    classes: dict[str, int] = field(default_factory=dict)
    failed_classes: dict[str, int] = field(default_factory=dict)
    kind: str = ""
    message: str = ""
    diagnosis: list[str] = field(default_factory=list)
    repro: str = ""
    traceback: str = ""
    elapsed_s: float = 0.0

    def params_text(self) -> str:
        """The layer's parameters in short: ``k3x3 s2 p1`` (padding ``lo,hi`` per axis when asymmetric) ...

        >>> LayerCheck(1, ['c'], 'conv', '', Case('conv', cin=4, cout=4, spatial=(9, 9), kernel=(3, 3),
        ...            stride=(2, 2), padding=((1, 1), (0, 1)), groups=2, bias=True), (1, 4, 9, 9)).params_text()
        'k3x3 s2 p(1,1)x(0,1) g2 bias'
        """
        c = self.case
        if c.record.adaptive:
            return "out " + "x".join(map(str, c.output_size or ()))
        padding, stride, dilation = c.padding or (), c.stride or (), c.dilation or ()  # filled by Case

        def xs(t: tuple[int, ...]) -> str:
            return "x".join(map(str, t)) if len(set(t)) > 1 else str(t[0])

        pads = (str(padding[0][0]) if len(set(padding)) == 1 and padding[0][0] == padding[0][1]
                else "x".join(f"({lo},{hi})" for lo, hi in padding))
        parts = [f"k{'x'.join(map(str, c.kernel))}", f"s{xs(stride)}", f"p{pads}"]
        if any(d != 1 for d in dilation):
            parts.append(f"d{xs(dilation)}")
        if c.op == "conv":
            parts += [f"g{c.groups}"] if c.groups != 1 else []
            parts += ["bias"] if c.bias else []
        if c.ceil_mode:
            parts.append("ceil")
        if c.op == "avg_pool" and not c.count_include_pad:
            parts.append("exclude-pad")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["case"] = asdict(self.case)
        d["case"]["description"] = self.case.describe()
        d["params"] = self.params_text()
        return d


@dataclass
class NetworkReport:
    """Result of :func:`check_network`; ``verdict`` PASS only when every selected layer was judged and passed."""

    target: str
    network: str
    input_shape: tuple[int, ...]
    batch: int
    dtype: str
    precision: str
    seed: int
    random_positions: int
    layers: list[LayerCheck] = field(default_factory=list)
    #: layers of ops not asked for (``ops=``), listed and not judged
    not_selected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    elapsed_s: float = 0.0

    @property
    def verdict(self) -> str:
        verdicts = {layer.verdict for layer in self.layers}
        if "FAIL" in verdicts:
            return "FAIL"
        if self.error or "ERROR" in verdicts:
            return "ERROR"
        if not self.layers or "SKIPPED" in verdicts:
            return "INCONCLUSIVE"
        return "PASS"

    @property
    def ok(self) -> bool:
        return self.verdict == "PASS"

    def headline(self) -> str:
        n = len(self.layers)
        counts = {v: sum(layer.verdict == v for layer in self.layers) for v in ("PASS", "FAIL", "ERROR", "SKIPPED")}
        what = (f"{self.target}  network {self.network} input {'x'.join(map(str, self.input_shape))} batch "
                f"{self.batch} {self.dtype} (precision {self.precision})")
        parts = ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v)
        return f"{self.verdict}  {what}: {n} distinct layer configurations: {parts or 'none'}"

    def table(self) -> str:
        """The per-layer table: layer, shape, params, positions judged, worst error / bound, verdict."""
        head = ("#", "layer", "op", "input -> output", "params", "exact", "by bound", "worst err/bound", "verdict")
        rows = []
        for layer in self.layers:
            name = layer.paths[0] + (f" (+{len(layer.paths) - 1})" if len(layer.paths) > 1 else "")
            shape = f"{'x'.join(map(str, layer.input_shape))} -> " + (
                "x".join(map(str, layer.output_shape)) if layer.output_shape else "?")
            exact = ("all " if layer.exact_scope == "every element" else "") + str(layer.exact_positions)
            ratio = "-" if layer.worst_ratio is None else f"{layer.worst_ratio:.3g}"
            rows.append((str(layer.index), name, layer.op, shape, layer.params_text(), exact,
                         str(layer.bound_elements), ratio, layer.verdict))
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip() for r in [head, *rows])

    def __str__(self) -> str:
        lines = [self.headline(), self.table()]
        for layer in self.layers:
            if layer.verdict in ("FAIL", "ERROR") or (layer.verdict == "SKIPPED" and layer.message):
                lines.append(f"layer {layer.index} {layer.paths[0]} ({layer.op}): {layer.verdict}: {layer.message}")
                if layer.worst:
                    w = layer.worst
                    lines.append(f"  worst element {tuple(w['index'])} ({w['judged']}): expected {w['expected']!r}, "
                                 f"got {w['actual']!r}, error {w['error']:.3g} > bound {w['bound']:.3g}")
                lines += [f"  diagnosis: {d}" for d in layer.diagnosis]
                if layer.traceback:
                    lines += ["    " + t for t in layer.traceback.rstrip().splitlines()[-6:]]
                if layer.repro:
                    lines.append("  reproduce:")
                    lines += ["    " + t for t in layer.repro.splitlines()]
        if self.error:
            lines.append("  refconv traceback:")
            lines += ["    " + t for t in self.error.rstrip().splitlines()]
        if self.not_selected:
            lines.append(f"  not selected (other ops): {', '.join(self.not_selected)}")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(
            f"  judged exactly: every output element of each pooling layer; at each convolution the sampled positions "
            f"(corners, padding borders, tile remainders, channel-group and channel-tile edges, {self.random_positions} "
            "random interior positions) with the exact oracle on their windows. Judged by bound: every output element "
            "of each convolution, against the float64 fast engine (direct summation), the reference's own error "
            f"added to the bound. {len(self.layers)} layers in {self.elapsed_s:.1f} s, seed {self.seed}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "layers"}
        d["schema_version"] = SCHEMA_VERSION
        d["kind"] = "network"
        d["layers"] = [layer.to_dict() for layer in self.layers]
        d["verdict"] = self.verdict
        d["ok"] = self.ok
        return d

    def to_json(self, **kw: Any) -> str:
        import json

        return json.dumps(self.to_dict(), default=_jsonable, **kw)

    def save_json(self, path: str | os.PathLike) -> None:
        """Write the JSON report atomically (temporary file, then rename)."""
        atomic_write(path, self.to_json(indent=2))


# --------------------------------------------------------------------------- the check


def _validate(dtype: str, precision: str | None, random: Any, seed: Any) -> None:
    try:
        dtype_of(dtype)
    except ValueError as exc:
        raise ConvParamError(str(exc)) from None
    if precision is not None and precision not in bounds.PROFILES:
        raise ConvParamError(f"precision={precision!r}: profiles are " + ", ".join(repr(p) for p in bounds.PROFILES))
    if not isinstance(random, (int, np.integer)) or isinstance(random, bool) or random < 0:
        raise ConvParamError(f"random={random!r}: must be an integer >= 0 (random interior positions per layer)")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConvParamError(f"seed={seed!r}: must be an integer >= 0")


def check_network(target: Any, network: Any, *, input_shape: Iterable[int] | None = None, batch: int = 1,
                  dtype: str = "float32", precision: str | None = None, random: int = DEFAULT_RANDOM, seed: int = 0,
                  ops: Iterable[str] | None = None, timeout: float | None = 60.0, isolate: bool = False,
                  load_timeout: float | None = None, progress: bool = False) -> NetworkReport:
    """Check ``target`` on every distinct convolution and pooling configuration of ``network``, at its real size.

    Parameters
    ----------
    target : str or callable
        As for :func:`refconv.conformance.check`.
    network : str or Network
        A zoo name (``'resnet50'``), a ``.toml``/``.json`` network file, or a Network.
    input_shape : tuple of int, optional
        ``(C, *spatial)`` per image (default: the network's own).
    batch : int
        Images per call.
    dtype, precision : str
        The inputs' dtype and the claimed precision profile (default: the dtype).
    random : int
        Random interior positions judged exactly per convolution, besides the structured ones.
    seed : int
        Fixes the inputs and the random positions.
    ops : list of str, optional
        Check only layers of these ops (the others are listed as not selected);
        default: every layer (a function target: the op its signature names).

    Returns
    -------
    NetworkReport
        ``verdict`` FAIL if a layer fails, ERROR if refconv failed, INCONCLUSIVE if a
        layer was not judged (declared unsupported), else PASS.
    """
    from .engine import _choose_op, open_target

    _validate(dtype, precision, random, seed)
    if ops is not None:
        from . import registry

        ops = [registry.get(o).name for o in ops]
    net = load_network(network)
    configs = layer_cases(net, input_shape, batch)
    prec = precision or dtype
    prof = bounds.profile(prec, dtype)
    t0 = time.perf_counter()
    tgt, worker = open_target(target, isolate=isolate, timeout=timeout, load_timeout=load_timeout)
    if ops is None and tgt.is_function:
        ops = [_choose_op(tgt, None)]
    shape = net.input_shape if input_shape is None else tuple(input_shape)
    report = NetworkReport(target=tgt.name, network=net.name, input_shape=tuple(int(v) for v in shape),
                           batch=int(batch), dtype=dtype, precision=prec, seed=int(seed), random_positions=int(random))
    bar = _bar(progress, len(configs), f"{tgt.name} {net.name}")
    try:
        _run_layers(report, tgt, worker, configs, ops, prof, timeout, bar)
    finally:
        if worker is not None:
            worker.close()
        _close(bar)
    report.elapsed_s = time.perf_counter() - t0
    return report


def _run_layers(report: NetworkReport, tgt: Any, worker: Any, configs: list, ops: list[str] | None, prof: Any,
                timeout: float | None, bar: Any) -> None:
    """Judge each configuration in order into ``report`` (one Runner per op, closed at the end)."""
    from .engine import Runner
    from .targets import TargetError

    runners: dict[str, Any] = {}
    seed, dtype = report.seed, report.dtype
    try:
        for i, (case0, paths, desc) in enumerate(configs):
            case = replace(case0, seed=zlib.crc32(f"{seed}:{i}".encode()))
            if ops is not None and case.op not in ops:
                report.not_selected.append(f"{paths[0]} ({case.op})")
                _tick(bar)
                continue
            layer = LayerCheck(index=len(report.layers) + 1, paths=paths, op=case.op, description=desc, case=case,
                               input_shape=case.input_shapes()["x"])
            report.layers.append(layer)
            t1 = time.perf_counter()
            try:
                caps = tgt.capabilities(case.op, case.dims, dtype)
                if not caps.supports(case) or dtype not in caps.dtypes:
                    layer.message = f"declared unsupported by {tgt.name} ({case.describe()})"
                else:
                    if case.op not in runners:
                        runners[case.op] = Runner(tgt, case.op, dtype, prof, timeout=timeout, worker=worker)
                    _judge_layer(runners[case.op], layer, prof, dtype, report.random_positions, seed + i)
            except (TargetError, KeyboardInterrupt):
                raise
            except Exception:  # noqa: BLE001 - refconv's own failure on this layer: ERROR, never a PASS
                layer.verdict, layer.kind = "ERROR", "refconv"
                layer.message = "refconv failed while judging this layer (a bug in refconv, not in the target)"
                layer.traceback = traceback.format_exc()
            layer.elapsed_s = time.perf_counter() - t1
            _tick(bar)
    finally:
        for r in runners.values():
            r.close()
            report.notes += [n for n in r.notes if n not in report.notes]


def _judge_layer(runner: Any, layer: LayerCheck, prof: Any, dtype: str, random: int, seed: int) -> None:
    case = layer.case
    arrays = case.arrays(dtype)
    layer.output_shape = tuple(case.output_shape or ())
    if case.op != "conv":
        # pooling: the engine's own judge, exact at every output element
        out = runner.evaluate_arrays(case, arrays)
        layer.exact_scope = "every element"
        layer.exact_positions = int(np.prod(layer.output_shape))
        _pooled(layer, out)
        if not out.ok:
            _failed(runner, layer, out.kind, out.message)
        return
    pristine = {k: np.array(v, copy=True) for k, v in arrays.items()}
    # the judgement is fixed before the target runs
    where = positions(case, layer.output_shape, random=random, seed=seed)
    pts = [p for p, _ in where]
    y_exact = exact_at(case, pristine, pts)
    s_exact = exact_at(case, pristine, pts, magnitudes=True)
    b_exact = _bound(case, pristine, prof, s_exact, np.abs(y_exact), pts) + np.abs(y_exact) * 2.0**-52
    ref, e_ref, b_full = _reference(case, pristine, prof)
    outcome = _call(runner, case, arrays, pristine, layer.output_shape)
    if isinstance(outcome, str):
        kind, _, msg = outcome.partition(":")
        _failed(runner, layer, kind, msg.strip())
        return
    act = outcome.astype(np.float64)
    _judge_positions(layer, where, act, y_exact, b_exact)
    # every element against the bound, the float64 reference's error added
    with np.errstate(invalid="ignore", over="ignore"):
        err_full = np.abs(act - ref)
        lim = b_full + e_ref
        viol = ~(err_full <= lim)
    layer.bound_elements = int(act.size)
    layer.bound_violations = int(viol.sum())
    if act.size:
        ratio_full = _ratios(err_full, lim)
        wf = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio_full)), act.shape))
        if layer.worst_ratio is None or ratio_full[wf] > layer.worst_ratio:
            # the worst element by bound, judged exactly too (one more window)
            _confirm_exactly(layer, pristine, prof, act, wf, {p for p, _ in where})
            layer.worst_ratio = max(float(layer.worst_ratio or 0.0), float(ratio_full[wf]))
    if layer.exact_violations or layer.bound_violations:
        msg = (f"{layer.exact_violations} of {layer.exact_positions} exactly judged positions and "
               f"{layer.bound_violations} of {layer.bound_elements} elements judged by bound are out of bound")
        _failed(runner, layer, "value", msg)
        layer.diagnosis = _diagnosis(layer)
    else:
        layer.verdict = "PASS"


def _judge_positions(layer: LayerCheck, where: list, act: np.ndarray, y_exact: np.ndarray, b_exact: np.ndarray) -> None:
    """The sampled positions against their exact values and bounds: counts, classes, the worst of them."""
    pts = [p for p, _ in where]
    a_pts = np.array([act[p] for p in pts], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a_pts - y_exact)
    bad = ~(err <= b_exact)
    layer.exact_scope = "sampled positions"
    layer.exact_positions = len(pts)
    layer.exact_violations = int(bad.sum())
    for (_, k), v in zip(where, bad):
        layer.classes[k] = layer.classes.get(k, 0) + 1
        if v:
            layer.failed_classes[k] = layer.failed_classes.get(k, 0) + 1
    if pts:
        ratio = _ratios(err, b_exact)
        i = int(np.argmax(ratio))
        layer.worst_ratio = float(ratio[i])
        layer.worst = {"index": list(pts[i]), "expected": float(y_exact[i]), "actual": float(a_pts[i]),
                       "error": float(err[i]), "bound": float(b_exact[i]), "judged": "exactly"}


def _confirm_exactly(layer: LayerCheck, pristine: dict[str, np.ndarray], prof: Any, act: np.ndarray,
                     wf: tuple[int, ...], sampled: set) -> None:
    """Element ``wf`` judged with the exact oracle; it becomes the layer's worst element."""
    case = layer.case
    y = exact_at(case, pristine, [wf])[0]
    s = exact_at(case, pristine, [wf], magnitudes=True)
    bnd = float(_bound(case, pristine, prof, s, np.abs([y]), [wf])[0] + abs(y) * 2.0**-52)
    e = abs(float(act[wf]) - y)
    layer.worst = {"index": list(wf), "expected": y, "actual": float(act[wf]), "error": e, "bound": bnd,
                   "judged": "exactly (the worst element by bound)"}
    layer.worst_ratio = max(float(layer.worst_ratio or 0.0), e / bnd if bnd > 0 else (0.0 if e == 0 else math.inf))
    if wf not in sampled:
        layer.exact_positions += 1
        layer.exact_violations += int(not e <= bnd)


def _ratios(err: np.ndarray, bnd: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(err == 0, 0.0, err / np.where(bnd > 0, bnd, np.finfo(float).tiny))
    return np.where(np.isnan(r), np.inf, r)


def _pooled(layer: LayerCheck, out: Any) -> None:
    if out.ok and out.bound is not None and out.actual is not None:
        err = np.abs(np.asarray(out.actual, dtype=np.float64) - out.expected)
        fin = np.isfinite(out.expected)
        r = _ratios(np.where(fin, err, 0.0), out.bound)
        layer.worst_ratio = float(r.max()) if r.size else 0.0
        if r.size:
            i = np.unravel_index(int(np.argmax(r)), r.shape)
            layer.worst = {"index": [int(v) for v in i], "expected": float(out.expected[i]),
                           "actual": float(np.asarray(out.actual)[i]), "error": float(err[i]), "bound": float(out.bound[i]),
                           "judged": "exactly"}
        layer.verdict = "PASS"
        layer.classes = {"every element": layer.exact_positions}
    elif out.worst:
        layer.worst = {**out.worst, "judged": "exactly"}
        b = out.worst["bound"]
        layer.worst_ratio = out.worst["error"] / b if b > 0 else math.inf
        layer.exact_violations = out.violations


def _failed(runner: Any, layer: LayerCheck, kind: str, message: str) -> None:
    from .report import repro as _engine_repro

    layer.verdict, layer.kind, layer.message = "FAIL", kind, message
    tgt = runner.target
    if layer.op != "conv":
        layer.repro = _engine_repro(tgt, layer.op, layer.case, runner.dtype)
        return
    from . import ops

    idx = tuple(layer.worst["index"]) if layer.worst else None
    lines = ["import numpy as np", "from refconv.conformance.cases import Case",
             "from refconv.conformance.network import exact_at", tgt.setup.format(op=layer.op),
             f"case = {replace(layer.case, label='')!r}", f"arrays = case.arrays({runner.dtype!r})",
             "x, w, b = arrays['x'], arrays['w'], arrays.get('b')",
             f"y = np.asarray({ops.repro_call(layer.case)}, dtype=np.float64)",
             f"assert y.shape == {layer.output_shape!r}, y.shape"]
    if idx is not None:
        lines += [f"where = {idx!r}",
                  "expected = exact_at(case, arrays, [where])[0]  # exact, correctly rounded to float64",
                  "print(where, 'expected', expected, 'got', y[where], 'error', abs(y[where] - expected))"]
    layer.repro = "\n".join(lines)


def _diagnosis(layer: LayerCheck) -> list[str]:
    """Where the failing exactly judged positions lie, by class."""
    if not layer.failed_classes:
        return ["the sampled positions are within the bound; elements elsewhere are out of it (see the worst element)"]
    out = []
    failing = set(layer.failed_classes)
    for k, n in sorted(layer.failed_classes.items()):
        out.append(f"{n} of {layer.classes.get(k, 0)} {k} positions fail")
    if failing <= {"corner", "border"}:
        out.append("only windows that touch the padding or end an axis fail: look at the padding / border handling")
    elif failing <= {"tile"}:
        out.append("only the last full or first partial tile fails: look at the tile remainder handling")
    elif "random" in failing or "inner" in failing:
        out.append("windows inside the input fail too: the arithmetic itself is wrong, not only the edges")
    return out


def _call(runner: Any, case: Case, arrays: dict[str, np.ndarray], pristine: dict[str, np.ndarray],
          shape: tuple[int, ...]) -> np.ndarray | str:
    """The target's result as an array, or ``'kind: message'`` for what went wrong in the call."""
    from .engine import _results
    from .isolation import TargetFailure

    failure = None
    try:
        res = runner._call(case, arrays, pristine)
    except TargetFailure as exc:
        failure = exc
    tampered = runner._tampering()
    if tampered:
        out = runner._tampered(tampered)
        return f"{out.kind}: {out.message}"
    if failure is not None:
        out = runner._failed(failure)
        return f"{out.kind}: {out.message}"
    if res.not_array:
        return f"type: the result is not an array of numbers: {res.not_array}"
    try:
        act, _ = _results(case, res.value)
    except Exception as exc:  # noqa: BLE001 - whatever the target returned
        return f"type: the result is not an array of numbers: {type(res.value).__name__} ({exc})"
    if res.mutated:
        return f"mutation: the target modified its input(s) {', '.join(res.mutated)} in place"
    if act.shape != shape:
        return f"shape: output shape {act.shape}, expected {shape}"
    return act


def _kw(case: Case) -> dict[str, Any]:
    return {"stride": case.stride, "padding": case.padding, "dilation": case.dilation, "groups": case.groups}


def _factor_sums(case: Case, arrays: dict[str, np.ndarray], pts: list | None) -> np.ndarray:
    """``sum |x| + sum |w|`` over each term's factors (+1 for the bias), in float64 with its own error covered."""
    x = np.abs(np.asarray(arrays["x"]).astype(np.float64))
    w = np.abs(np.asarray(arrays["w"]).astype(np.float64))
    one = np.ones(case.cout) if case.bias else None
    f = (fast.conv(x, np.ones_like(w), one, algorithm="direct", **_kw(case))
         + fast.conv(np.ones_like(x), w, None, algorithm="direct", **_kw(case)))
    f = f * (1 + 4 * tolerance.gamma(case.terms() + 1, 2.0**-53))
    return f if pts is None else np.array([f[p] for p in pts])


def _bound(case: Case, arrays: dict[str, np.ndarray], prof: Any, S: np.ndarray, y: np.ndarray,
           pts: list | None) -> np.ndarray:
    """The direct bound of ``specs/tolerance.md`` from magnitudes ``S`` and values ``y`` (as bounds.case_bound)."""
    n, factors = bounds.op_terms(case.op, case.terms())
    b = bounds.elementwise_bound(S, y, n, prof, input_factors=factors)
    if prof.eta_in:
        b = b + bounds.input_underflow_bound(_factor_sums(case, arrays, pts), n, prof, input_factors=factors)
    return b


def _reference(case: Case, arrays: dict[str, np.ndarray], prof: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ref, e_ref, B)``: the float64 fast result, a bound on its own error, and the target's bound around it."""
    x = np.asarray(arrays["x"]).astype(np.float64)
    w = np.asarray(arrays["w"]).astype(np.float64)
    b = arrays.get("b")
    b = None if b is None else np.asarray(b).astype(np.float64)
    ref = fast.conv(x, w, b, algorithm="direct", **_kw(case))
    s = fast.conv(np.abs(x), np.abs(w), None if b is None else np.abs(b), algorithm="direct", **_kw(case))
    g = tolerance.gamma(case.terms() + 1, 2.0**-53)
    s_up = s * (1 + 2 * g)                # S computed in float64: an upper bound of the exact S
    e_ref = g * s_up                      # |ref - exact| <= gamma_n(2**-53) S (direct summation in float64)
    return ref, e_ref, _bound(case, arrays, prof, s_up, np.abs(ref) + e_ref, None)


def _bar(enabled: bool, total: int, desc: str) -> Any:
    from .engine import _progress

    return _progress(enabled, total, desc)


def _tick(bar: Any) -> None:
    from .engine import _tick as tick

    tick(bar)


def _close(bar: Any) -> None:
    from .engine import _close as close

    close(bar)
