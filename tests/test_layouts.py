"""The layout vocabulary and the ``layout=`` / ``weight_layout=`` keywords, exactly against the channels-first calls.

Every decorated operation of :mod:`refconv.oracle` (and :mod:`refconv.pooling`,
:mod:`refconv.deform`, :mod:`refconv.padding_modes`) and of :mod:`refconv.fast`
is called in 1-D, 2-D and 3-D on integer data with channels-last arrays built
here by explicit transposes, and its result, transposed back, must equal the
channels-first call's result element for element.
"""

from __future__ import annotations

import numpy as np
import pytest

from refconv import deform, fast, layouts, oracle, padding_modes, pooling
from refconv.params import ConvParamError

SP = (5, 6, 7)  # spatial sizes, distinct per axis
KS = (2, 3, 2)  # kernel sizes


def _ints(shape, seed):
    return np.random.default_rng(seed).integers(-4, 5, size=shape).astype(np.int64)


# --------------------------------------------------------------------------- explicit transposes (independent of refconv.layouts)


def act_last(a):
    """(N, C, *S) -> (N, *S, C)."""
    return np.moveaxis(np.asarray(a), 1, -1)


def act_first(a):
    return np.moveaxis(np.asarray(a), -1, 1)


def shape_last(s):
    return (s[0], *s[2:], s[1])


def w_to(w, name):
    """A canonical weight (O, I, *K) or transposed weight (I, O, *K) in layout ``name``."""
    w = np.asarray(w)
    d = w.ndim - 2
    k = tuple(range(2, 2 + d))
    if name[:2] in ("OI", "IO"):
        return w
    if name.endswith(("IO", "OI")):  # HWIO of (O, I, K): (K, I, O); HWOI of (I, O, K): (K, O, I)
        return w.transpose(*k, 1, 0)
    if name.startswith("O") and name.endswith("I"):  # OHWI
        return w.transpose(0, *k, 1)
    if name.endswith("IM"):  # depthwise (C*M, 1, *K) with C = the weight's own C: kept in w_depthwise
        raise AssertionError("use w_depthwise")
    raise AssertionError(name)


def w_from(w, name, canonical_shape):
    """The inverse of w_to, by transposing a result of shape ``w_to(zeros(canonical_shape), name).shape``."""
    idx = np.arange(int(np.prod(canonical_shape))).reshape(canonical_shape)
    order = w_to(idx, name).reshape(-1)
    out = np.empty(int(np.prod(canonical_shape)), dtype=np.asarray(w).dtype)
    out[order] = np.asarray(w).reshape(-1)
    return out.reshape(canonical_shape)


def w_depthwise(w, cin):
    """(C*M, 1, *K) -> (*K, C, M): output channel o = c*M + m."""
    w = np.asarray(w)
    d = w.ndim - 2
    m = w.shape[0] // cin
    return w.reshape(cin, m, *w.shape[2:]).transpose(*range(2, 2 + d), 0, 1)


def wshape_to(s, name):
    return w_to(np.zeros(s, dtype=np.int8), name).shape


# --------------------------------------------------------------------------- one canonical call per operation


def _conv_case(d, groups=2, cin=4, cout=6):
    x = _ints((2, cin, *SP[:d]), 1)
    w = _ints((cout, cin // groups, *KS[:d]), 2)
    kw = dict(stride=2 if d == 1 else 1, padding=1, groups=groups)
    return x, w, kw


def cases(d):
    """``{name: (args, kwargs)}`` canonical calls of every operation with a layout role."""
    x, w, kw = _conv_case(d)
    y = oracle.conv(x, w, **kw)
    b = _ints((6,), 3)
    xt = _ints((2, 4, *SP[:d]), 4)
    wt = _ints((4, 3, *KS[:d]), 5)  # transposed: (C_in, C_out/g, *K), groups 2 -> C_out 6
    kwt = dict(stride=2, padding=1, groups=2)
    yt = oracle.conv_transpose(xt, wt, **kwt)
    xp = _ints((2, 3, *SP[:d]), 6).astype(np.float64)
    k = KS[:d]
    pooled, idx = oracle.max_pool(xp, k, stride=1, return_indices=True)
    out = {
        "conv": ((x, w, b), kw),
        "general_conv": ((x, w, b), dict(kw, input_dilation=2)),
        "conv_grad_input": ((_ints(y.shape, 8), w, x.shape), kw),
        "conv_grad_weight": ((x, _ints(y.shape, 9), w.shape), kw),
        "conv_grad_bias": ((_ints(y.shape, 10),), {}),
        "conv_transpose": ((xt, wt, b), kwt),
        "conv_transpose_grad_input": ((_ints(yt.shape, 11), wt), kwt),
        "conv_transpose_grad_weight": ((xt, _ints(yt.shape, 12), wt.shape), kwt),
        "max_pool": ((xp, k), dict(stride=1, return_indices=True)),
        "max_pool_indices": ((xp, k), dict(stride=1)),
        "max_pool_grad": ((_ints(pooled.shape, 13).astype(np.float64), xp, k), dict(stride=1)),
        "max_unpool": ((pooled, idx, k), dict(stride=1)),
        "avg_pool": ((xp, k), dict(stride=1, padding=1, count_include_pad=False)),
        "avg_pool_grad": ((_ints(oracle.avg_pool(xp, k, stride=2).shape, 14).astype(np.float64), xp.shape, k),
                          dict(stride=2)),
        "lp_pool": ((np.abs(xp), 2, k), dict(stride=1)),
        "adaptive_avg_pool": ((xp, (3,) * d), {}),
        "adaptive_max_pool": ((xp, (3,) * d), dict(return_indices=True)),
        "global_avg_pool": ((xp,), {}),
        "global_max_pool": ((xp,), {}),
        "fractional_max_pool": ((xp, (2,) * d, (3,) * d, np.full((2, 3, d), 0.25)), dict(return_indices=True)),
        "pad_mode": ((x, ((2, 1),) * d, "reflect"), {}),
        "pad_mode_adjoint": ((_ints(padding_modes.pad_mode(x, ((2, 1),) * d, "reflect").shape, 15), ((2, 1),) * d,
                              "reflect", x.shape), {}),
    }
    # deformable convolution: integer offsets (whole samples), a mask
    xd, wd, kwd = _conv_case(d, groups=1, cin=2, cout=3)
    taps = int(np.prod(KS[:d]))
    yd = oracle.conv(xd, wd, **kwd)
    offset = _ints((2, d * taps, *yd.shape[2:]), 16) // 3
    mask = _ints((2, taps, *yd.shape[2:]), 17)
    out["deform_conv"] = ((xd, offset, wd, None, mask), kwd)
    return out


MODULES = {"oracle": (oracle, pooling, deform, padding_modes), "fast": (fast,)}


def decorated(engine):
    """``[(name, function)]``: every public function of the engine with layout keywords."""
    found = {}
    for mod in MODULES[engine]:
        for name in getattr(mod, "__all__", dir(mod)):
            f = getattr(mod, name, None)
            if callable(f) and hasattr(f, "layout_roles"):
                found[name] = f
    return sorted(found.items())


def _in_layout(args, kwargs, f, wl, last):
    """The arguments channels last (``last``) or first, weights in layout ``wl``, converted here by explicit transposes."""
    roles, _ = f.layout_roles
    import inspect

    bound = inspect.signature(f).bind(*args, **kwargs)
    for name, role in roles.items():
        v = bound.arguments.get(name)
        if v is None:
            continue
        if role == "activation" and last:
            bound.arguments[name] = act_last(v)
        elif role == "activation_shape" and last:
            bound.arguments[name] = shape_last(tuple(v))
        elif role in ("weight", "transposed_weight"):
            bound.arguments[name] = w_to(v, wl)
        elif role in ("weight_shape", "transposed_weight_shape"):
            bound.arguments[name] = wshape_to(tuple(v), wl)
    return bound.args, bound.kwargs


def _back(y, role, wl, like, last):
    if isinstance(y, tuple):
        return tuple(_back(v, role, wl, e, last) for v, e in zip(y, like))
    if role == "activation" and last:
        return act_first(y)
    if role in ("weight", "transposed_weight"):
        return w_from(y, wl, like.shape)
    return y


def _equal(a, b):
    if isinstance(b, tuple):
        return isinstance(a, tuple) and len(a) == len(b) and all(_equal(u, v) for u, v in zip(a, b))
    return np.asarray(a).shape == np.asarray(b).shape and np.array_equal(a, b)


def _names(d, wl_kind):
    sp = "DHW"[3 - d:]
    if wl_kind == "weight":
        return [(f"N{sp}C", f"{sp}IO"), (f"N{sp}C", f"O{sp}I"), (f"NC{sp}", f"OI{sp}"), (f"NC{sp}", f"{sp}IO")]
    if wl_kind == "transposed_weight":
        return [(f"N{sp}C", f"{sp}OI"), (f"NC{sp}", f"IO{sp}")]
    return [(f"N{sp}C", None), (f"NC{sp}", None)]


@pytest.mark.parametrize("engine", sorted(MODULES))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_every_operation_in_every_layout_equals_the_channels_first_call(engine, d):
    table = cases(d)
    funcs = decorated(engine)
    assert len(funcs) >= (14 if engine == "fast" else 22)
    checked = []
    for name, f in funcs:
        assert name in table, f"no layout case for {engine}.{name}"
        args, kwargs = table[name]
        if engine == "fast" and name in ("max_pool", "adaptive_max_pool"):
            kwargs = {k: v for k, v in kwargs.items() if k != "return_indices"}
        roles, result = f.layout_roles
        wkind = next((r.replace("_shape", "") for r in roles.values() if "weight" in r), None)
        expected = f(*args, **kwargs)
        for lay, wl in _names(d, wkind):
            last = lay[-1] == "C"
            a2, k2 = _in_layout(args, kwargs, f, wl or "", last)
            got = f(*a2, **k2, layout=lay, **({"weight_layout": wl} if wl else {}))
            back = _back(got, result, wl, expected, last)
            assert _equal(back, expected), f"{engine}.{name}, layout={lay}, weight_layout={wl}, {d}-D"
            if result == "activation":  # results come back C-contiguous in the caller's layout
                first = got[0] if isinstance(got, tuple) else got
                assert np.asarray(first).flags.c_contiguous
        checked.append(name)
    assert checked


DEPTHWISE = {"conv", "general_conv", "conv_grad_input", "conv_grad_weight"}


@pytest.mark.parametrize("engine", sorted(MODULES))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_depthwise_hwim_is_groups_equal_to_input_channels(engine, d):
    sp = "DHW"[3 - d:]
    cin, m = 3, 2
    x = _ints((2, cin, *SP[:d]), 20)
    w = _ints((cin * m, 1, *KS[:d]), 21)  # canonical depthwise weight
    kw = dict(padding=1)
    mods = MODULES[engine]
    f = {n: g for n, g in decorated(engine)}
    y = f["conv"](x, w, groups=cin, **kw)
    hwim = w_depthwise(w, cin)
    got = f["conv"](act_last(x), hwim, layout=f"N{sp}C", weight_layout=f"{sp}IM", **kw)
    assert np.array_equal(act_first(got), y)
    # also with NC* activations and groups passed explicitly as C_in
    assert np.array_equal(f["conv"](x, hwim, weight_layout=f"{sp}IM", groups=cin, **kw), y)
    dy = _ints(y.shape, 22)
    gi = f["conv_grad_input"](dy, w, x.shape, groups=cin, **kw)
    got = f["conv_grad_input"](act_last(dy), hwim, shape_last(x.shape), layout=f"N{sp}C", weight_layout=f"{sp}IM", **kw)
    assert np.array_equal(act_first(got), gi)
    gw = f["conv_grad_weight"](x, dy, w.shape, groups=cin, **kw)
    got = f["conv_grad_weight"](act_last(x), act_last(dy), hwim.shape, layout=f"N{sp}C", weight_layout=f"{sp}IM", **kw)
    assert np.array_equal(got, w_depthwise(gw, cin))
    with pytest.raises(ConvParamError, match=r"groups=1: weight_layout='.*IM' is depthwise, groups = C_in = 3"):
        f["conv"](x, hwim, weight_layout=f"{sp}IM", groups=1, **kw)
    assert mods


def test_unbatched_channels_last():
    x = _ints((3, 5, 6), 30).astype(np.float64)  # (C, H, W)
    w = _ints((4, 3, 2, 2), 31)
    y = oracle.conv(x, w)
    got = oracle.conv(np.moveaxis(x, 0, -1), w.transpose(2, 3, 1, 0), layout="NHWC", weight_layout="HWIO")
    assert got.shape == (4, 5, 4) and np.array_equal(np.moveaxis(got, -1, 0), y)
    got = fast.max_pool(np.moveaxis(x, 0, -1), 2, layout="NHWC")
    assert np.array_equal(np.moveaxis(got, -1, 0), oracle.max_pool(x[None], 2)[0])


def test_conversions_are_exact_and_invertible():
    rng = np.random.default_rng(0)
    for name in layouts.ACTIVATION_LAYOUTS + layouts.WEIGHT_LAYOUTS + layouts.TRANSPOSED_WEIGHT_LAYOUTS:
        lay = layouts.layout(name)
        shape = tuple(int(v) for v in rng.integers(2, 6, size=len(name)))
        a = rng.integers(-100, 100, size=shape)
        c = layouts.from_layout(a, name)
        back = layouts.to_layout(c, name, in_channels=shape[-2] if lay.depthwise else None)
        assert np.array_equal(back, a), name
        assert sorted(c.reshape(-1).tolist()) == sorted(a.reshape(-1).tolist())  # a permutation of the values
        assert layouts.shape_from_layout(shape, name) == c.shape
        assert layouts.shape_to_layout(c.shape, name, in_channels=shape[-2] if lay.depthwise else None) == shape
        if lay.kind == "activation":  # unbatched: one axis fewer
            assert layouts.shape_from_layout(shape[1:], name) == layouts.from_layout(a[0], name).shape
    # against explicit transposes
    a = rng.integers(0, 9, size=(2, 3, 4, 5))
    assert np.array_equal(layouts.to_layout(a, "NHWC"), a.transpose(0, 2, 3, 1))
    assert np.array_equal(layouts.to_layout(a, "HWIO"), a.transpose(2, 3, 1, 0))
    assert np.array_equal(layouts.to_layout(a, "OHWI"), a.transpose(0, 2, 3, 1))
    assert np.array_equal(layouts.to_layout(a, "HWOI"), a.transpose(2, 3, 1, 0))
    dw = rng.integers(0, 9, size=(6, 1, 3, 2))
    assert np.array_equal(layouts.to_layout(dw, "HWIM", in_channels=3), w_depthwise(dw, 3))
    assert layouts.shape_from_layout((3, 2, 3, 2), "HWIM") == (6, 1, 3, 2)
    assert layouts.shape_to_layout((6, 1, 3, 2), "HWIM", in_channels=3) == (3, 2, 3, 2)
    assert np.array_equal(layouts.convert(a, "HWIO", "OHWI"), layouts.to_layout(layouts.from_layout(a, "HWIO"), "OHWI"))


@pytest.mark.parametrize("call, message", [
    (lambda: oracle.conv(np.ones((1, 2, 3, 3)), np.ones((1, 2, 1, 1)), layout="nhwc"),
     r"layout='nhwc': not a layout name \(activation layouts: NCW"),
    (lambda: oracle.conv(np.ones((1, 3, 3, 2)), np.ones((1, 1, 2, 1)), layout="NHWC", weight_layout="IOHW"),
     r"weight_layout='IOHW': a transposed-convolution weight layout, not a convolution weight layout"),
    (lambda: oracle.conv_transpose(np.ones((1, 3, 3, 2)), np.ones((1, 1, 2, 1)), layout="NHWC", weight_layout="HWIO"),
     r"weight_layout='HWIO': a convolution weight layout, not a transposed-convolution weight layout"),
    (lambda: oracle.conv(np.ones((1, 3, 2)), np.ones((1, 1, 2, 1)), layout="NWC", weight_layout="HWIO"),
     r"layout='NWC', weight_layout='HWIO': 1 and 2 spatial axes"),
    (lambda: oracle.max_pool(np.ones((1, 3, 3, 2)), 2, layout="NHWC", weight_layout="HWIO"),
     r"weight_layout='HWIO': max_pool takes no weight"),
    (lambda: oracle.max_pool(np.ones((1, 3, 3, 3, 2)), 2, layout="NHWC"),
     r"x.shape=\(1, 3, 3, 3, 2\): layout 'NHWC' has 4 axes \(N, H, W, C\) or 3 \(unbatched, without N\)"),
    (lambda: fast.conv(np.ones((1, 3, 3, 2)), np.ones((2, 2, 1)), layout="NHWC", weight_layout="HWIO"),
     r"w.shape=\(2, 2, 1\): layout 'HWIO' has 4 axes \(H, W, I, O\)"),
    (lambda: oracle.conv(np.ones((1, 3, 3, 2)), np.ones((1, 1, 2, 1)), layout=3),
     r"layout=3: not a layout name"),
])
def test_bad_layouts_name_the_argument(call, message):
    with pytest.raises(ConvParamError, match=message):
        call()


def test_keywords_are_in_the_signature_and_the_docstring():
    import inspect

    for f in (oracle.conv, fast.conv_transpose, oracle.max_pool, fast.adaptive_avg_pool):
        params = inspect.signature(f).parameters
        assert params["layout"].default is None and params["weight_layout"].default is None
        assert "layout=" in f.__doc__
