"""Conformance engine, bounds, report, targets, commands and plugin (the self-test is in test_conformance_selftest.py)."""

import argparse
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv import oracle
from refconv.conformance import bounds, check
from refconv.conformance.cases import ALL, catalogue
from refconv.conformance.targets import TargetError, resolve
from refconv.params import ConvParamError


def good_conv(x, w, b, *, stride, padding, dilation, groups):
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)


# ----------------------------------------------------------------------------- bounds: both sides


def _exact_dot(x, w):
    return sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(x, w)), Fraction(0))


def _sum32(terms, order, rng):
    terms = list(terms)
    if order == "reverse":
        terms = terms[::-1]
    if order == "shuffle":
        terms = [terms[i] for i in rng.permutation(len(terms))]
    if order == "pairwise":
        while len(terms) > 1:
            terms = [np.float32(terms[i] + terms[i + 1]) for i in range(0, len(terms) - 1, 2)] + (
                [terms[-1]] if len(terms) % 2 else [])
        return terms[0]
    if order == "fma":  # exact product, one rounding per multiply-add
        s = np.float32(0)
        for t in terms:
            s = np.float32(np.float64(s) + t)
        return s
    s = np.float32(0)
    for t in terms:
        s = np.float32(s + np.float32(t))
    return s


@settings(max_examples=60)
@given(st.integers(1, 64), st.integers(0, 2**32 - 1), st.sampled_from(["forward", "reverse", "shuffle", "pairwise", "fma"]))
def test_bound_holds_for_any_summation_order(n, seed, order):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 2.0 ** rng.integers(-4, 4, n)).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32)
    prods = [np.float64(a) * np.float64(b) for a, b in zip(x, w)]  # exact: 48-bit products
    terms = prods if order == "fma" else [np.float32(a * b) for a, b in zip(x, w)]
    got = _sum32(terms, order, rng)
    exact = _exact_dot(x, w)
    S = float(sum(abs(Fraction(float(a)) * Fraction(float(b))) for a, b in zip(x, w)))
    bnd = bounds.elementwise_bound(np.array([S]), np.array([float(exact)]), n, bounds.profile("float32"))[0]
    assert abs(Fraction(float(got)) - exact) <= Fraction(float(bnd))


def test_narrow_formats_claimed_as_float32_are_caught():
    """bfloat16 or TF32 input rounding exceeds the float32 bound on typical data (and fits its own profile)."""
    rng = np.random.default_rng(0)
    for fmt, p in (("bfloat16", 8), ("tf32", 11)):
        exceeded = 0
        for _ in range(50):
            x, w = rng.standard_normal(9).astype(np.float32), rng.standard_normal(9).astype(np.float32)
            xr, wr = bounds.round_significand(x, p), bounds.round_significand(w, p)
            got = np.float64(np.dot(xr.astype(np.float64), wr.astype(np.float64)))
            exact = float(_exact_dot(x, w))
            S = float(np.abs(x.astype(np.float64) * w).sum())
            b32 = bounds.elementwise_bound(np.array([S]), np.array([exact]), 9, bounds.profile("float32"))[0]
            bfmt = bounds.elementwise_bound(np.array([S]), np.array([exact]), 9, bounds.profile(fmt))[0]
            assert abs(got - exact) <= bfmt
            exceeded += abs(got - exact) > b32
        assert exceeded >= 40, (fmt, exceeded)


def test_profiles_and_rounding():
    assert bounds.profile("float32", "float64").u_in == 2.0**-24
    assert bounds.profile("float16", "float16").u_in == 0.0
    assert bounds.gamma(2**24, 2.0**-24) == math.inf
    x = np.array([1 + 2.0**-9, 1 + 3 * 2.0**-9], np.float32)
    assert bounds.round_to(x, "bfloat16").tolist() == [1.0, 1.0078125]
    with pytest.raises(ValueError, match="precision='fp8'"):
        bounds.profile("fp8")


# ----------------------------------------------------------------------------- engine, report


def test_catalogue_is_valid_and_covers_the_edge_cases():
    for op in ("conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight"):
        for dims in (1, 2, 3):
            cat = catalogue(op, dims)
            # valid cases, and the configurations a target must refuse (expect_refusal)
            assert cat and all(c.is_valid() != getattr(c, "expect_refusal", False) for c in cat)
    labels = {c.label for c in catalogue("conv", 2)}
    for needed in ("empty batch", "asymmetric padding", "depthwise", "kernel as large as the padded input",
                   "stride larger than the kernel", "dilation making the kernel span the input"):
        assert needed in labels
    # projection onto a target without dilation keeps every case valid and dilation-free
    caps = ALL.replace(dilation=False, padding=frozenset({"symmetric"}))
    assert all(c.dilation == (1, 1) and caps.supports(c) for c in catalogue("conv", 2, caps))


def test_report_text_json_and_repro(tmp_path):
    def flipped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)

    r = check(flipped, dims=1, max_examples=5, seed=0)
    assert not r.ok and r.failure.kind == "value"
    text = str(r)
    assert text.startswith("FAIL") and "reproduce:" in text and "kernel flipped" in text
    path = tmp_path / "r.json"
    r.save_json(path)
    d = json.loads(path.read_text())
    assert d["ok"] is False and d["failure"]["case"]["op"] == "conv"
    # the reproduction runs and shows the difference
    ns = {}
    exec(r.failure.repro.replace("target = ...  # the checked callable", "target = flipped"), {"flipped": flipped, "print": lambda *a: ns.setdefault("out", a)})
    assert float(ns["out"][0]) > 0


def test_good_target_passes_every_op_and_dim():
    for op in ("conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight"):
        for dims in (1, 2):
            r = check("refconv.oracle", op=op, dims=dims, max_examples=10, seed=1)
            assert r.ok, str(r)


def test_timeout_and_exception_are_reported_not_raised():
    import time

    def hangs(x, w, b, *, stride, padding, dilation, groups):
        time.sleep(5)

    r = check(hangs, dims=1, timeout=0.2, max_examples=0)
    assert r.failure.kind == "timeout" and r.failure.case.is_valid()

    def raises(x, w, b, *, stride, padding, dilation, groups):
        raise MemoryError("boom")

    r = check(raises, dims=1, max_examples=0)
    assert r.failure.kind == "exception" and "MemoryError" in r.failure.message


def test_shape_mismatch_names_the_formulas():
    def no_hi(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=[(lo, 0) for lo, _ in padding], dilation=dilation, groups=groups)

    r = check(no_hi, dims=1, max_examples=0)
    assert r.failure.kind == "shape"
    assert any("expected: floor(" in f for f in r.failure.shape_formulas)
    assert any("hi padding ignored" in d for d in r.failure.diagnosis)


def test_bad_arguments_name_themselves():
    with pytest.raises(ConvParamError, match="op='convolution'"):
        check(good_conv, op="convolution")
    with pytest.raises(ConvParamError, match="dims=4"):
        check(good_conv, dims=4)
    with pytest.raises(ConvParamError, match="precision='fp8'"):
        check(good_conv, precision="fp8")
    with pytest.raises(TargetError, match="target='nope'"):
        resolve("nope")
    with pytest.raises(ConvParamError, match="does not support op='max_pool'"):
        check("scipy", op="max_pool")


def test_signature_declares_capabilities():
    def no_dilation(x, w, b, *, stride, padding, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, groups=groups)

    r = check(no_dilation, dims=2, max_examples=10, seed=0)
    assert r.ok and "dilation" in r.skipped


def test_target_strings(tmp_path):
    f = tmp_path / "impl.py"
    f.write_text("from refconv import oracle\n"
                 "def conv(x, w, b, *, stride, padding, dilation, groups):\n"
                 "    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)\n")
    assert check(f"{f}:conv", dims=1, max_examples=3, seed=0).ok
    with pytest.raises(TargetError, match="has no attribute"):
        resolve(f"{f}:missing")


# ----------------------------------------------------------------------------- adapters (real libraries)


@pytest.mark.parametrize("op", ["conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight"])
def test_torch_conforms(op):
    r = check("torch", op=op, dims=2, max_examples=20, seed=0)
    assert r.ok, str(r)


# ONNX Runtime's own SAME arithmetic diverges (tests/test_adapter_variants.py): explicit pads conform
@pytest.mark.parametrize("target,op,dims", [("onnxruntime.explicit", "conv", 2), ("onnxruntime", "conv_transpose", 1),
                                            ("scipy", "conv", 2), ("numpy", "conv", 1), ("refconv.fast", "conv", 2),
                                            ("refconv.fast", "avg_pool", 2)])
def test_adapters_conform(target, op, dims):
    r = check(target, op=op, dims=dims, max_examples=20, seed=0)
    assert r.ok, str(r)


def test_known_divergences_fail_marked_and_are_accepted_only_when_asked():
    # ONNX Runtime's pooling returns an empty axis for a window longer than the padded input (the catalogue sends one)
    r = check("onnxruntime.explicit", op="avg_pool", dims=2, max_examples=20, seed=0)
    assert r.verdict == "FAIL" and r.failure.kind == "accepted-invalid"
    assert [k.split(":")[0] for k in r.failure.known] == ["ort-pool-window-beyond-input"]
    assert "(known divergence: ort-pool-window-beyond-input)" in r.headline()
    ok = check("onnxruntime.explicit", op="avg_pool", dims=2, max_examples=20, seed=0, allow_known=True)
    assert ok.verdict == "PASS" and ok.accepted_known["ort-pool-window-beyond-input"]["cases"] >= 1
    assert "accepted known divergence ort-pool-window-beyond-input" in str(ok)
    # a divergence file of the user's: an entry without a predicate explains every failing case of its op
    from refconv.conformance.divergences import Divergence

    mine = [Divergence(id="mine", target="onnxruntime", reason="r", ops=("avg_pool",), when="window_in_padding")]
    assert check("onnxruntime.explicit", op="avg_pool", dims=2, max_examples=20, seed=0, allow_known=True,
                 divergences=mine).verdict == "FAIL"  # its predicate does not explain the refused window


def test_divergence_onnxruntime_max_pool_window_in_padding():
    """specs/conventions.md: a max-pool window entirely in the padding gives -FLT_MAX in ONNX Runtime, -inf by definition."""
    from refconv.conformance import adapters

    max_pool = adapters.get("onnxruntime").function("max_pool")
    x = np.array([[[[1.0, -1.0]]]], dtype=np.float32)
    kw = dict(stride=(1, 1), padding=((0, 0), (1, 1)), dilation=(1, 3), ceil_mode=False)
    y = max_pool(x, (1, 2), **kw)
    assert oracle.max_pool(x, (1, 2), **kw)[0, 0, 0, 0] == -np.inf
    assert y[0, 0, 0, 0] == -np.finfo(np.float32).max
    # explicit pads: the -inf case comes first (through auto_pad a SAME case with a negative ONNX total comes earlier)
    r = check("onnxruntime.explicit", op="max_pool", dims=2, max_examples=0)
    assert r.failure.kind == "nonfinite" and r.failure.worst["expected"] == -np.inf


def test_jax_conforms():
    # a generous per-call limit: the first call of each shape compiles (seconds, more on a loaded machine)
    # XLA on the CPU flushes subnormals (a recorded known divergence): claimed, everything else is checked strictly
    r = check("jax", op="conv", dims=1, max_examples=3, seed=0, timeout=120, precision="float32-ftz", allow_known=True)
    assert r.ok and set(r.accepted_known) <= {"jax-window-beyond-input"}, str(r)
    strict = check("jax", op="conv", dims=1, max_examples=0, seed=0, timeout=120)
    assert strict.verdict == "FAIL" and any("FTZ" in d for d in strict.failure.diagnosis)
    assert [k.split(":")[0] for k in strict.failure.known] in (["jax-cpu-flushes-subnormals"], ["jax-window-beyond-input"])


# ----------------------------------------------------------------------------- commands and plugin


def _cmd(module, argv):
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    return module.run(p.parse_args(argv))


def test_check_command_exit_status(tmp_path, capsys):
    from refconv.cli import UsageError
    from refconv.commands import check as cmd

    out = tmp_path / "r.json"
    assert _cmd(cmd, ["refconv.oracle", "--op", "conv", "--dims", "1", "--max-examples", "3", "--seed", "0", "--quiet",
                      "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True
    assert _cmd(cmd, ["broken:conv_first_batch_only", "--dims", "1", "--max-examples", "0", "--quiet"]) == 1
    assert "FAIL" in capsys.readouterr().out
    with pytest.raises(UsageError, match="target='nope'"):
        _cmd(cmd, ["nope", "--quiet"])
    out = tmp_path / "all.json"
    assert _cmd(cmd, ["refconv.oracle", "--op", "all", "--dims", "1", "--max-examples", "0", "--quiet", "--json", str(out)]) == 0
    from refconv.conformance.cases import OPS

    assert [r["op"] for r in json.loads(out.read_text())] == list(OPS)  # every checked op of the registry, in order
    assert {"conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight"} <= set(OPS)


def test_identify_command_prints_a_table(capsys):
    from refconv.commands import identify as cmd

    assert _cmd(cmd, ["refconv.oracle"]) == 0
    assert "cross-correlation (no flip)" in capsys.readouterr().out


def _pytest_in(path, *args):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(path))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rxX", *args], cwd=path,
                       capture_output=True, text=True, env=env, timeout=300)
    return r.stdout


def test_plugin_runs_only_with_the_option(tmp_path):
    (tmp_path / "impl.py").write_text(
        "from refconv import oracle\n"
        "def good(x, w, b, *, stride, padding, dilation, groups):\n"
        "    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)\n"
        "def bad(x, w, b, *, stride, padding, dilation, groups):\n"
        "    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)\n")
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert True\n")
    out = _pytest_in(tmp_path)
    assert "1 passed" in out and "refconv" not in out
    out = _pytest_in(tmp_path, "--refconv-target=impl:good", "--refconv-target=impl:bad", "--refconv-max-examples=3",
                     "--refconv-dims=1")
    assert "1 failed, 2 passed" in out
    assert "check(impl:bad, op='conv', dims=1, dtype='float32')" in out and "kernel flipped" in out
    (tmp_path / "known.json").write_text('{"divergences": [{"target": "impl:bad", "op": "conv", "reason": "flips the kernel"}]}')
    out = _pytest_in(tmp_path, "--refconv-target=impl:bad", "--refconv-max-examples=0", "--refconv-dims=1",
                     "--refconv-divergences=known.json")
    assert "1 passed, 1 xfailed" in out and "flips the kernel" in out


def test_isolation_reports_a_crash_and_kills_a_hang(tmp_path):
    f = tmp_path / "native.py"
    f.write_text("import ctypes\nfrom refconv import oracle\n"
                 "def conv(x, w, b, *, stride, padding, dilation, groups):\n"
                 "    if groups > 1:\n        ctypes.string_at(0)  # a segmentation fault in native code\n"
                 "    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)\n"
                 "def spin(x, w, b, *, stride, padding, dilation, groups):\n    while True:\n        pass\n")
    r = check(f"{f}:conv", dims=1, isolate=True, max_examples=0)
    assert r.failure.kind == "crash" and r.failure.case.groups > 1 and "exit code" in r.failure.message
    r = check(f"{f}:spin", dims=1, isolate=True, max_examples=0, timeout=0.5)
    assert r.failure.kind == "timeout"
    with pytest.raises(TargetError, match="isolate=True"):
        check(lambda x, w, b, *, stride, padding, dilation, groups: x, isolate=True)


def test_specials_are_reported_separately():
    from refconv.conformance.specials import check_specials

    r = check_specials("torch", op="conv", dims=1)
    nan = [f for f in r.findings if f[0] == "NaN in x"][0]
    assert nan[1] is True  # PyTorch propagates a NaN through every window that holds it
    r = check_specials("onnxruntime", op="max_pool", dims=2)
    nan = [f for f in r.findings if f[0] == "NaN in x"][0]
    assert nan[1] is False and "expected nan" in nan[2]  # ONNX Runtime's MaxPool drops the NaN
    assert "not part of the verdict" in str(r)
    assert check("onnxruntime.explicit", op="max_pool", dims=2, max_examples=0).failure.kind == "nonfinite"  # -FLT_MAX


def test_dyadic_values_are_exact_in_any_float32_summation_order():
    """The exact-by-construction case: every float32 order gives the oracle's value, TF32 inputs do not."""
    from refconv.conformance import ops
    from refconv.conformance.cases import catalogue

    c = [k for k in catalogue("conv", 1) if k.values == "dyadic"][0]
    a = c.arrays("float32")
    exp = ops.expected(c, a)
    xp = np.pad(a["x"], [(0, 0), (0, 0), c.padding[0]])
    terms = [xp[:, ci, k:k + exp.shape[2]][:, None] * a["w"][None, :, ci, k, None]
             for ci in range(c.cin) for k in range(c.kernel[0])]
    rng = np.random.default_rng(0)
    for _ in range(3):
        s = np.zeros(exp.shape, np.float32)
        for i in rng.permutation(len(terms)):
            s = s + terms[i]
        s = s + a["b"][None, :, None]
        assert s.dtype == np.float32 and np.array_equal(s.astype(np.float64), exp)
    tf32 = {k: bounds.round_significand(v, 11) for k, v in a.items()}
    assert not np.array_equal(ops.expected(c, tf32), exp)


# ----------------------------------------------------------------------------- verdicts: ERROR, INCONCLUSIVE


def test_an_exception_inside_refconv_is_an_error_verdict_not_a_pass(monkeypatch):
    from refconv.conformance.engine import Runner

    def broken_bound(self, case, arrays, exp, prof=None):
        raise RuntimeError("injected fault in the bound")

    monkeypatch.setattr(Runner, "bound", broken_bound)
    r = check(good_conv, dims=1, max_examples=5, seed=3)
    assert r.verdict == "ERROR" and not r.ok and r.failure is None
    head = str(r).splitlines()[0]
    assert head.startswith("ERROR  ") and "refconv failed while judging catalogue case 1" in head
    assert "injected fault in the bound" in head and "a bug in refconv, not in the target" in head
    assert "Traceback" in r.error and r.to_dict()["verdict"] == "ERROR"


def test_an_exception_during_exploration_is_an_error(monkeypatch):
    from hypothesis import strategies as st

    from refconv.conformance import engine

    real = engine.Runner.evaluate

    def fails_on_explored(self, case):
        if case.label == "explored":
            raise ZeroDivisionError("injected fault in exploration")
        return real(self, case)

    monkeypatch.setattr(engine.Runner, "evaluate", fails_on_explored)
    r = check(good_conv, dims=1, max_examples=5, seed=0)
    assert r.verdict == "ERROR" and "while judging an explored case" in r.error_stage and r.explored_cases == 0
    monkeypatch.setattr(engine.Runner, "evaluate", real)
    # hypothesis giving up (no case can be drawn) is refconv's failure too, never a silent pass
    monkeypatch.setattr(engine, "cases", lambda op, dims, caps: st.integers().filter(lambda i: False))
    r = check(good_conv, dims=1, max_examples=5, seed=0)
    assert r.verdict == "ERROR" and r.error_stage == "while exploring (hypothesis)" and "Unsatisfiable" in r.error


def test_a_failure_found_stays_a_failure_when_refconv_fails_after_it(monkeypatch):
    from refconv.conformance import diagnose, engine

    def flipped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)

    calls = []
    real = engine.Runner.bound

    def bound_fails_after_first(self, case, arrays, exp, prof=None):
        calls.append(case)
        if len(calls) > 1:
            raise RuntimeError("injected fault after the counterexample")
        return real(self, case, arrays, exp, prof)

    monkeypatch.setattr(engine.Runner, "bound", bound_fails_after_first)
    monkeypatch.setattr(diagnose, "diagnose", lambda *a: 1 / 0)
    r = check(flipped, dims=1, max_examples=0)
    assert r.verdict == "FAIL" and r.failure.kind == "value" and r.failure.shrink_steps == 0
    assert any("refconv's shrinker failed" in n and "injected fault" in n for n in r.notes)
    assert r.failure.diagnosis[0].startswith("refconv's diagnosis failed (ZeroDivisionError")


def test_an_adapter_whose_declaration_fails_is_checked_and_reported_not_dropped():
    from refconv.conformance.targets import Target, supported_ops

    def caps(op, dims, dtype):
        if op == "avg_pool":
            raise KeyError("broken declaration")
        return ALL

    t = Target("fake", lambda op: good_conv, caps, "target = ...")
    assert "avg_pool" in supported_ops(t)
    r = check(t, op="avg_pool", dims=1, max_examples=0)
    assert r.verdict == "ERROR" and "declared capabilities" in r.error_stage


def _long_only(case):
    """only reductions of more than 256 terms"""
    return case.terms() > 256


def test_cases_without_a_bound_are_counted_and_too_many_are_inconclusive():
    r = check(good_conv, dims=1, precision="bfloat16", max_examples=0)
    assert r.verdict == "PASS" and 0 < r.unjudged_cases < r.cases / 2
    assert f"{r.cases} cases, {r.unjudged_cases} not judged (no bfloat16 bound for reductions this long)" in r.headline()
    r = check(good_conv, dims=1, precision="bfloat16", max_examples=0, capabilities={"rule": _long_only})
    assert r.verdict == "INCONCLUSIVE" and not r.ok and r.unjudged_cases == r.cases > 0
    assert "claim the precision the implementation accumulates in" in r.headline()
    r = check(good_conv, dims=1, max_examples=0, capabilities={"rule": lambda c: False})
    assert r.verdict == "INCONCLUSIVE" and r.cases == 0 and "no case was run" in r.headline()


# ----------------------------------------------------------------------------- declared and refused features


def test_a_refused_feature_is_named_with_its_declaration():
    import os

    target = os.path.join(os.path.dirname(__file__), "faults", "refuses.py")
    r = check(target + ":conv_without_dilation", dims=1, max_examples=0)
    assert r.verdict == "FAIL" and r.failure.kind == "unsupported" and r.failure.case.dilation != (1,)
    assert "declare it: --unsupported dilation (Python: capabilities={'dilation': False})" in r.failure.message
    r = check(target + ":conv_without_dilation", dims=1, max_examples=10, seed=0, unsupported=["dilation"])
    assert r.ok and "dilation" in r.skipped
    r = check(target + ":conv_without_groups", dims=1, max_examples=0)
    assert r.failure.kind == "unsupported" and "--unsupported groups" in r.failure.message
    with pytest.raises(ConvParamError, match="unsupported='wings'"):
        check(good_conv, unsupported="wings")


def test_a_pass_lists_everything_it_excluded():
    def small(case):
        """at most two samples"""
        return case.n <= 2

    r = check(good_conv, dims=1, max_examples=0, capabilities={"rule": small, "empty_batch": False},
              unsupported="padding-asymmetric,stride")
    assert r.ok
    assert "cases excluded by the target's own rule: small (at most two samples)" in r.skipped
    assert "empty batches (N = 0)" in r.skipped and "stride" in r.skipped
    assert "padding other than symmetric" in r.skipped


def test_the_op_of_a_function_is_read_from_its_signature():
    from refconv.conformance.targets import fit, supported_ops

    def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        return oracle.max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)

    def grad(dy, w, input_shape, *, stride, padding, dilation, groups):
        raise NotImplementedError

    def anything(*args, **kwargs):
        raise NotImplementedError

    assert supported_ops(resolve(max_pool)) == ["max_pool"]
    assert supported_ops(resolve(grad)) == ["conv_grad_input"] and supported_ops(resolve(good_conv)) == ["conv"]
    r = check(max_pool, dims=1, max_examples=0)
    assert r.ok and r.op == "max_pool"
    with pytest.raises(ConvParamError, match="op='avg_pool'.*takes 'dilation', which avg_pool does not have"):
        check(max_pool, op="avg_pool", dims=1)
    with pytest.raises(ConvParamError, match="does not say which op"):
        supported_ops(resolve(anything))
    assert "named 'dy'" in fit(resolve(grad).signature, "conv")


def test_a_missing_library_is_named_with_its_install_command(monkeypatch):
    import sys

    from refconv.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(TargetError, match=r"^torch is not installed: pip install 'refconv\[torch\]'$"):
        resolve("torch")
    assert main(["check", "torch", "--quiet"]) == 2


# ----------------------------------------------------------------------------- reproduction, refusals, isolation


def test_the_reproduction_rebuilds_empty_arrays():
    def wrong_on_empty(x, w, b, *, stride, padding, dilation, groups):
        y = oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        return y if x.shape[0] else np.zeros((0, w.shape[0], y.shape[2] + 1))

    r = check(wrong_on_empty, dims=1, max_examples=0)
    assert r.failure.kind == "shape" and r.failure.case.n == 0
    printed = []
    src = r.failure.repro.replace("target = ...  # the checked callable", "target = wrong_on_empty")
    assert "np.zeros((0," in src
    # the snippet runs up to its shape assertion, which fails as the check did
    with pytest.raises(AssertionError, match="shape"):
        exec(src, {"wrong_on_empty": wrong_on_empty, "print": printed.append})


def test_a_configuration_the_definition_rejects_must_be_refused(monkeypatch):
    from refconv.conformance import engine
    from refconv.conformance.cases import Case

    case = Case("conv", spatial=(2,), kernel=(5,), values="small")  # kernel wider than the input
    object.__setattr__(case, "expect_refusal", True)
    assert not case.is_valid()
    monkeypatch.setattr(engine.ops, "expected", lambda *a: 1 / 0)  # the oracle is never asked

    def refuses(x, w, b, *, stride, padding, dilation, groups):
        raise ValueError("kernel larger than input")

    def accepts(x, w, b, *, stride, padding, dilation, groups):
        return np.zeros((1, 1, 1), np.float32)

    prof = bounds.profile("float32")
    assert engine.Runner(resolve(refuses), "conv", "float32", prof).evaluate(case).ok
    out = engine.Runner(resolve(accepts), "conv", "float32", prof).evaluate(case)
    assert out.kind == "accepted-invalid" and "shape (1, 1, 1)" in out.message


def test_isolated_inputs_keep_their_memory_layout():
    from refconv.conformance.isolation import _pack, _unpack

    base = np.arange(120, dtype=np.float32)
    readonly = base.reshape(10, 12).copy()
    readonly.flags.writeable = False
    misaligned = np.frombuffer(b"\0" + base.tobytes(), np.float32, offset=1, count=120).reshape(10, 12)
    for a in (base.reshape(10, 12)[::2, ::-3], np.asfortranarray(base.reshape(10, 12)), readonly, misaligned):
        b = _unpack(*_pack(a))
        assert np.array_equal(a, b) and a.strides == b.strides
        assert (a.flags.aligned, a.flags.writeable) == (b.flags.aligned, b.flags.writeable)


def test_plugin_takes_the_runner_options(tmp_path):
    (tmp_path / "impl.py").write_text(
        "import ctypes, time\n"
        "def spin(x, w, b, *, stride, padding, dilation, groups):\n    while True:\n        time.sleep(0.05)\n"
        "def segv(x, w, b, *, stride, padding, dilation, groups):\n    ctypes.string_at(0)\n")
    out = _pytest_in(tmp_path, "--refconv-target=impl:spin", "--refconv-target=impl:segv", "--refconv-isolate",
                     "--refconv-timeout=1", "--refconv-max-examples=0", "--refconv-dims=1")
    assert "2 failed" in out and "TIMEOUT: the target hung: no result after 1 s" in out and "CRASH" in out


def test_an_isolated_target_declares_its_capabilities_from_its_worker(tmp_path):
    (tmp_path / "ruled.py").write_text(
        "from refconv import oracle\n"
        "def _small(case):\n    '''two samples at most'''\n    return case.n <= 2\n"
        "def conv(x, w, b, *, stride, padding, dilation, groups):\n"
        "    assert x.shape[0] <= 2 and dilation == (1,)\n"
        "    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)\n"
        "conv.refconv_capabilities = {'rule': _small, 'dilation': False}\n")
    inside = check(f"{tmp_path}/ruled.py:conv", dims=1, max_examples=0)
    isolated = check(f"{tmp_path}/ruled.py:conv", dims=1, max_examples=0, isolate=True)
    assert inside.ok and isolated.ok, str(isolated)
    assert isolated.skipped == inside.skipped and isolated.cases == inside.cases
    assert "cases excluded by the target's own rule: _small (two samples at most)" in isolated.skipped


def test_shrinking_drops_a_memory_layout_the_failure_does_not_need():
    from refconv.conformance.cases import Case
    from refconv.conformance.engine import Runner, shrink

    def flipped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)

    runner = Runner(resolve(flipped), "conv", "float32", bounds.profile("float32"))
    case = Case("conv", n=2, cin=2, cout=2, spatial=(6,), kernel=(3,), layout="fortran")
    out = runner.evaluate(case)
    small, out2, steps = shrink(runner, ALL, case, out)
    assert out2.kind == "value" and steps > 0 and small.layout == "contiguous"


def test_report_says_what_the_cases_covered():
    r = check("refconv.fast", op="conv", dims=1, max_examples=5, seed=0)
    cov = r.coverage
    assert cov["cases"] == r.cases and cov["invalid"] >= 1
    assert cov["sizes"]["C_out"]["past"][-1] >= 64 and cov["features"]["all at once"] >= 1
    assert set(cov["layouts"]) >= {"contiguous", "fortran", "channels_last", "negative", "readonly"}
    assert "covered: sizes N<=" in str(r) and json.loads(r.to_json())["coverage"]["cases"] == r.cases


def test_a_diagnosis_candidate_that_crashes_is_said_not_hidden(monkeypatch):
    from refconv import oracle
    from refconv.conformance import diagnose as dg

    def broken(arrays, approximate):
        raise RuntimeError("candidate exploded")

    real = dg.candidates
    monkeypatch.setattr(dg, "candidates", lambda case: real(case) + [dg.Candidate("boom", "", case, compute=broken)])

    def flipped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)

    r = check(flipped, dims=1, max_examples=0, seed=0)
    assert r.verdict == "FAIL" and any("flip" in d for d in r.failure.diagnosis)
    assert any("refconv's diagnosis is incomplete" in d and "candidate exploded" in d for d in r.failure.diagnosis)


def test_the_reproduction_of_a_shape_failure_fails_on_the_shape():
    from refconv import oracle

    def drops_the_batch(x, w, b, *, stride, padding, dilation, groups):
        y = oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        return y.reshape(-1) if x.shape[0] == 0 else y  # an empty batch comes back flat

    r = check(drops_the_batch, dims=1, max_examples=0, seed=0)
    assert r.verdict == "FAIL" and r.failure.kind == "shape"
    env = {"drops_the_batch": drops_the_batch}
    snippet = r.failure.repro.replace("target = ...  # the checked callable", "target = drops_the_batch")
    with pytest.raises(AssertionError, match="shape"):
        exec(snippet, env)
