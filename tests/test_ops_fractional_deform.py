"""fractional_max_pool and deform_conv as checked ops: the fast engine against the oracle, the records, the
catalogues, the bounds, tests/broken entries, the adapters, and PyTorch's recorded divergence."""

import numpy as np
import pytest

from refconv import fast, oracle
from refconv.conformance import adapters, check, ops, registry
from refconv.conformance.cases import Case, catalogue
from refconv.conformance.divergences import load
from refconv.params import ConvParamError

NEW = ("fractional_max_pool", "deform_conv")


# --------------------------------------------------------------------------- the fast engine


@pytest.mark.parametrize("seed", range(40))
def test_fast_fractional_equals_the_oracle_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 4))
    n = tuple(int(v) for v in rng.integers(1, 9, d))
    k = tuple(int(rng.integers(1, m + 1)) for m in n)
    o = tuple(int(rng.integers(1, m - kk + 2)) for m, kk in zip(n, k))
    shape = (int(rng.integers(0, 3)), int(rng.integers(1, 3))) + n
    x = rng.integers(-3, 4, shape).astype((np.float32, np.float64, np.int64)[seed % 3])
    if seed % 3 == 1 and x.size:
        x.flat[int(rng.integers(x.size))] = np.nan  # the first NaN of a window wins
    u = rng.integers(0, 256, shape[:2] + (d,)) / 256
    got, want = fast.fractional_max_pool(x, k, o, u, return_indices=True), oracle.fractional_max_pool(
        x, k, o, u, return_indices=True)
    assert got[0].dtype == want[0].dtype and np.array_equal(got[0], want[0], equal_nan=True)
    assert np.array_equal(got[1], want[1])


@pytest.mark.parametrize("seed", range(30))
def test_fast_deform_equals_the_oracle_on_dyadic_offsets(seed):
    # small integers, offsets k/4 and a mask k/8: every step exact in float64
    rng = np.random.default_rng(seed)
    d, g, og = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
    cin, cout = g * og * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, d))
    kw = dict(stride=tuple(int(v) for v in rng.integers(1, 3, d)), dilation=tuple(int(v) for v in rng.integers(1, 3, d)),
              padding=tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (d, 2))), groups=g, offset_groups=og)
    n = tuple(di * (kk - 1) + 1 + int(rng.integers(0, 4)) for kk, di in zip(k, kw["dilation"]))
    x = rng.integers(-3, 4, (2, cin) + n).astype(float)
    w = rng.integers(-3, 4, (cout, cin // g) + k).astype(float)
    out = oracle.conv(x, w, stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"], groups=g).shape[2:]
    taps = int(np.prod(k))
    off = rng.integers(-12, 13, (2, d * og * taps) + out) / 4
    mask = rng.integers(0, 9, (2, og * taps) + out) / 8 if seed % 2 else None
    b = rng.integers(-3, 4, cout).astype(float) if seed % 3 else None
    got, want = fast.deform_conv(x, off, w, b, mask, **kw), oracle.deform_conv(x, off, w, b, mask, **kw)
    assert got.shape == want.shape and np.array_equal(got, want)


def test_fast_deform_with_zero_offsets_is_conv_and_refuses_what_the_oracle_refuses():
    x, w = np.arange(20.0).reshape(1, 2, 10), np.ones((3, 2, 3))
    assert np.array_equal(fast.deform_conv(x, np.zeros((1, 3, 8)), w), oracle.conv(x, w))
    with pytest.raises(ConvParamError, match="offset.shape"):
        fast.deform_conv(x, np.zeros((1, 2, 8)), w)
    with pytest.raises(ConvParamError, match="offset"):
        fast.deform_conv(x, np.full((1, 3, 8), np.nan), w)
    with pytest.raises(ConvParamError, match="samples"):
        fast.fractional_max_pool(x, 2, 3, [[[1.0], [0.5]]])


# --------------------------------------------------------------------------- records, catalogues, bounds


def test_check_and_identify_offer_the_new_ops():
    import subprocess
    import sys

    def usage(cmd):
        return subprocess.run([sys.executable, "-m", "refconv", cmd, "--help"], capture_output=True, text=True,
                              timeout=120).stdout

    assert "fractional_max_pool" in usage("check") and "deform_conv" in usage("check")
    # identify offers the registry's probed ops: these two have no convention probes (their records say so)
    assert "{" + ",".join(registry.probed()) + "}" in usage("identify")
    assert not any(registry.get(op).probed for op in NEW)


def test_the_records_and_their_catalogues():
    for op in NEW:
        rec = registry.get(op)
        assert rec.fast_function() is getattr(fast, op) and rec.oracle_function() is getattr(oracle, op)
        for dims in (1, 2, 3):
            cases = catalogue(op, dims)
            assert any(c.expect_refusal for c in cases) and all(c.is_valid() for c in cases if not c.expect_refusal)
    labels = " | ".join(c.label for c in catalogue("fractional_max_pool", 2))
    for want in ("output size 1", "n - k + 1", "samples 0", "just below 1", "kernel 1", "ties", "exact integer"):
        assert want in labels
    labels = " | ".join(c.label for c in catalogue("deform_conv", 2))
    for want in ("zero offsets", "integer offsets", "half-way", "outside", "mask", "offset groups", "groups", "stride"):
        assert want in labels


def test_fractional_samples_at_the_ends_are_exact_in_each_dtype():
    c = Case("fractional_max_pool", spatial=(9, 8), kernel=(2, 2), output_size=(4, 3), samples=(0.0, "top"))
    for dt, top in (("float32", 1 - 2.0**-24), ("float64", 1 - 2.0**-53), ("bfloat16", 1 - 2.0**-8)):
        assert c.arrays(dt)["samples"].astype(np.float64).tolist() == [[[0.0, top]]]


def test_zero_offsets_give_the_convolution_and_outside_offsets_the_bias():
    c = Case("deform_conv", 1, 2, 3, (6, 5), (3, 2), bias=True, offsets="zero", offset_groups=1, mask=False)
    a = c.arrays("float64")
    assert np.array_equal(ops.expected(c, a), oracle.conv(a["x"], a["w"], a["b"]))
    far = Case("deform_conv", 1, 2, 3, (6, 5), (3, 2), bias=True, offsets="outside", offset_groups=1, mask=False)
    a = far.arrays("float64")
    assert np.array_equal(ops.expected(far, a), np.broadcast_to(a["b"].reshape(1, 3, 1, 1), far.output_shape))


def test_the_bounds():
    from refconv.conformance import bounds

    # fractional pooling: exact
    c = Case("fractional_max_pool", spatial=(10,), kernel=(2,), output_size=(4,))
    a = c.arrays("float32")
    y = ops.values_of(c, ops.expected(c, a))
    assert not bounds.case_bound(c, a, y, bounds.profile("float32"), dtype="float32").any()
    # deform: gamma_N S with N = C_in/groups * taps + bias + 2D + 2**D, and nothing where a position rounds
    d = Case("deform_conv", 1, 2, 2, (6, 5), (3, 2), bias=True, mask=True, offset_groups=1, seed=3)
    assert d.terms() == 2 * 6 + 1 + 4 + 4
    a = d.arrays("float32")
    y = ops.expected(d, a)
    b = bounds.case_bound(d, a, y, bounds.profile("float32"), dtype="float32")
    assert np.isfinite(b).all() and (b > 0).any()
    # offsets of 24 significant bits from 2**-2 down: base + offset is not a float32 where the base is not 0
    a["offset"] = np.full_like(a["offset"], np.float32(1 / 3))
    b = bounds.case_bound(d, a, ops.expected(d, a), bounds.profile("float32"), dtype="float32")
    assert np.isinf(b).any() and not np.isinf(bounds.case_bound(d, a, ops.expected(d, a), bounds.profile("float64"),
                                                                 dtype="float64")).any()


@pytest.mark.parametrize("op", NEW)
@pytest.mark.parametrize("target", ["refconv.fast", "refconv.oracle"])
def test_refconv_engines_pass(op, target):
    for dims in (1, 2):
        r = check(target, op=op, dims=dims, dtype="float32", max_examples=5, seed=dims)
        assert r.verdict == "PASS", str(r)


# --------------------------------------------------------------------------- tests/broken entries


def _entries():
    from broken.new_ops2 import EXTRA2_BROKEN, EXTRA2_CORRECT

    return [(d, True) for d in EXTRA2_BROKEN] + [(d, False) for d in EXTRA2_CORRECT]


@pytest.mark.parametrize("entry,broken", _entries(), ids=[d["name"] for d, _ in _entries()])
def test_broken_and_correct_implementations_are_classified(entry, broken):
    r = check(entry["fn"], op=entry["op"], dims=entry.get("dims", 2), dtype=entry.get("dtype", "float32"),
              max_examples=5, seed=0)
    if not broken:
        assert r.ok, str(r)
        return
    assert not r.ok and r.failure.kind in ("value", "indices"), str(r)
    assert entry["diagnosis"] in " ".join(r.failure.diagnosis), r.failure.diagnosis


# --------------------------------------------------------------------------- adapters


def test_the_adapters_declare_the_new_ops():
    torch_caps = adapters.get("torch").capabilities
    assert torch_caps("fractional_max_pool", 3, "float32").dims == (2, 3)
    from refconv.conformance.adapters.torch_adapter import _torchvision_missing

    deform = torch_caps("deform_conv", 2, "float32")
    if _torchvision_missing():  # not offered where torchvision does not load, and the reason is declared
        assert "deform_conv" not in deform.ops and any("torchvision" in n for n in deform.notes)
    else:
        assert deform.dims == (2,) and "deform_conv" in deform.ops
    assert adapters.get("onnxruntime").capabilities("deform_conv", 2, "float32").dims == (2,)
    assert "deform_conv" not in adapters.get("onnxruntime.opset11").capabilities("deform_conv", 2, "float32").ops


def test_torch_fractional_passes_with_its_recorded_divergence():
    pytest.importorskip("torch")
    for dims in (2, 3):
        r = check("torch", op="fractional_max_pool", dims=dims, dtype="float32", max_examples=3, seed=0,
                  allow_known=True)
        assert r.verdict == "PASS", str(r)


def test_torch_fractional_starts_in_the_input_type_are_pinned():
    torch = pytest.importorskip("torch")
    x = np.arange(27.0).reshape(1, 1, 1, 27)
    exact = oracle.fractional_max_pool(x, (1, 1), (1, 12), [[[0.0, 0.5]]], return_indices=True)[1]
    assert exact[0, 0, 0, 5] == 12
    got = {}
    for dt in (torch.float32, torch.float64):
        _, i = torch.nn.functional.fractional_max_pool2d(
            torch.tensor(x, dtype=dt), (1, 1), output_size=(1, 12), return_indices=True,
            _random_samples=torch.tensor([[[0.5, 0.0]]], dtype=dt))  # (u_W, u_H)
        got[dt] = i.numpy()
    assert got[torch.float32][0, 0, 0, 5] == 11 and np.array_equal(got[torch.float64], exact)
    case = Case("fractional_max_pool", spatial=(1, 27), kernel=(1, 1), output_size=(1, 12), samples=(0.0, 0.5))
    ids = {e.id for e in load() if e.explains("torch", case, "float32")}
    assert ids == {"torch-fractional-float32-starts"}
    assert not [e for e in load() if e.explains("torch", case, "float64")]


def test_torch_deform_conv_is_refused_by_name_when_torchvision_does_not_load():
    pytest.importorskip("torch")
    from refconv.conformance.targets import TargetError

    try:
        import torchvision.ops  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or built for another torch
        with pytest.raises(TargetError, match="torchvision"):
            adapters.get("torch").function("deform_conv")
        return
    r = check("torch", op="deform_conv", dims=2, dtype="float32", max_examples=3, seed=0)
    assert r.verdict == "PASS", str(r)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnxruntime_deform_conv_passes(dtype):
    pytest.importorskip("onnxruntime")
    r = check("onnxruntime", op="deform_conv", dims=2, dtype=dtype, max_examples=5, seed=0)
    assert r.verdict == "PASS", str(r)


def test_a_whole_library_run_names_an_op_whose_library_does_not_load():
    """`refconv check torch` never stops on deform_conv when torchvision is missing: it says the op is not checked."""
    from refconv.commands.check import _not_offered_here
    from refconv.conformance.adapters.torch_adapter import _torchvision_missing
    from refconv.conformance.targets import resolve, supported_ops

    tgt = resolve("torch")
    lines = _not_offered_here(tgt, "float32")
    if _torchvision_missing():
        assert "deform_conv" not in supported_ops(tgt, 2, "float32")
        assert [ln for ln in lines if ln.startswith("not checked: deform_conv: torchvision")] and len(lines) == 1
    else:
        assert "deform_conv" in supported_ops(tgt, 2, "float32") and lines == []
