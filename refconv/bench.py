"""The benchmark suite of the fast engine, side by side with PyTorch (CPU) and scipy.signal.

One process, one run: every implementation of every configuration is timed
once per round, rounds repeat, and the median of the rounds is reported, so
that the machine's noise hits all implementations alike (interleaved).  Each
row gives time, GFLOP/s, the ratio to PyTorch, and the percentage of the
machine's float GEMM speed (numpy ``matmul`` measured at the start), and the
ratio of each side's fastest round: on a machine shared with other work,
where some rounds of either side are slowed (PyTorch's waiting threads most),
it is the better estimate of a quiet machine's ratio; the targets are judged
on the medians, and the load average is reported.  GFLOP/s
count the direct algorithm's operations (:meth:`Case.flop`): rows that run
Winograd or FFT do fewer, so they may exceed 100% of the GEMM speed.

The suite (NCHW, forward and forward plus both gradients; float32 and float64):

====  ==========================================================================
a     batch 64, 1 -> 6, 28x28, 5x5, pad 2
b     64, 6 -> 16, 14x14, 5x5
c     64, 3 -> 32, 32x32, 3x3, pad 1
d     8, 64 -> 64, 56x56, 3x3, pad 1
e     16, 32 -> 64, 64x64, 3x3, stride 2, dilation 2, pad 2
f     16, depthwise 64, 56x56, 3x3, pad 1
g     1-D: 32, 16 -> 32, length 4096, kernel 9
h     4, 8 -> 8, 128x128, 15x15, same
i     single channel 512x512, 31x31 kernel (scipy.signal.fftconvolve and oaconvolve too)
j     max pool 3x3 stride 2 on 32x64x56x56
====  ==========================================================================

plus one training step of the same network in refconv and PyTorch
(:func:`refconv.nn.benchmark.training_step_case`), for the default network of
``refconv train`` (row ``train``) and for LeNet-5 on Fashion-MNIST (row ``lenet5``).

OpenBLAS reads ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` at start-up; where
they are set for old builds they can halve numpy's GEMM speed.  The suite never
changes them; run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE refconv bench``.

Examples
--------
>>> [c.name for c in suite(quick=True)][:3]
['a', 'b', 'c']
>>> suite()[3].x_shape, suite()[3].kwargs
((8, 64, 56, 56), {'padding': 1})
>>> geomean([1.0, 4.0])
2.0
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .atomic import atomic_write

__all__ = ["Case", "suite", "run_suite", "geomean", "gemm_gflops", "blas_info", "env_warnings", "write_json",
           "peak_memory_check", "TARGETS", "TRAINING", "load_warning"]

#: seconds of pause before each timed call (not timed)
PAUSE = 0.005

#: the classic layers the float32 targets are judged on
CLASSIC = ("a", "b", "c", "d", "e", "f", "g")

#: the training-step rows: (case, network of :func:`refconv.nn.benchmark.training_step_case`); ``train`` is the
#: default network of ``refconv train`` (digits), ``lenet5`` LeNet-5 on Fashion-MNIST padded to 32x32
TRAINING = (("train", "digits"), ("lenet5", "lenet5"))

#: the acceptance targets of the suite (ratios are refconv time / torch time): float32 over the classic
#: layers a-g (geometric mean and worst row, forward and forward plus gradients), float64 over every row,
#: and the training step
TARGETS = {
    "float32_forward_geomean": 1.0,
    "float32_forward_max": 2.0,
    "float32_forward_gradients_geomean": 1.0,
    "float32_forward_gradients_max": 2.0,
    "float64_geomean": 0.5,
    "training_step": 1.5,
}


@dataclass(frozen=True)
class Case:
    """One configuration: ``op`` is ``'conv'`` or ``'max_pool'``; ``kwargs`` as refconv.fast takes them."""

    name: str
    title: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...] | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    op: str = "conv"
    scipy: tuple[str, ...] = ()

    def flop(self) -> int:
        """Forward flop: ``2 * N * C_out * C_in/groups * prod(K) * prod(O)``; pooling: one per window element."""
        from .params import conv_params, pool_params

        if self.op == "max_pool":
            pp = pool_params(self.x_shape, **self.kwargs)
            return int(np.prod(pp.output_shape)) * int(np.prod(pp.kernel_size))
        assert self.w_shape is not None  # a convolution case has a weight
        p = conv_params(self.x_shape, self.w_shape, **self.kwargs)
        return 2 * int(np.prod(p.output_shape)) * int(np.prod(self.w_shape[1:]))


def suite(quick: bool = False) -> list[Case]:
    """The fixed suite a) to j); ``quick`` shrinks batches and images (for tests, not for figures)."""
    q = (lambda full, small: small) if quick else (lambda full, small: full)
    return [
        Case("a", "64, 1->6, 28x28, 5x5, pad 2", (q(64, 2), 1, 28, 28), (6, 1, 5, 5), {"padding": 2}),
        Case("b", "64, 6->16, 14x14, 5x5", (q(64, 2), 6, 14, 14), (16, 6, 5, 5)),
        Case("c", "64, 3->32, 32x32, 3x3, pad 1", (q(64, 2), 3, 32, 32), (32, 3, 3, 3), {"padding": 1}),
        Case("d", "8, 64->64, 56x56, 3x3, pad 1", (q(8, 1), q(64, 8), q(56, 14), q(56, 14)), (q(64, 8), q(64, 8), 3, 3), {"padding": 1}),
        Case("e", "16, 32->64, 64x64, 3x3, s2, d2, pad 2", (q(16, 1), q(32, 4), q(64, 16), q(64, 16)), (q(64, 8), q(32, 4), 3, 3),
             {"stride": 2, "dilation": 2, "padding": 2}),
        Case("f", "16, depthwise 64, 56x56, 3x3, pad 1", (q(16, 1), q(64, 8), q(56, 14), q(56, 14)), (q(64, 8), 1, 3, 3),
             {"padding": 1, "groups": q(64, 8)}),
        Case("g", "1-D 32, 16->32, 4096, k 9", (q(32, 2), 16, q(4096, 256)), (32, 16, 9), {}, scipy=("correlate",)),
        Case("h", "4, 8->8, 128x128, 15x15, same", (q(4, 1), 8, q(128, 32), q(128, 32)), (8, 8, 15, 15), {"padding": "same"},
             scipy=("fftconvolve",)),
        Case("i", "1, 1->1, 512x512, 31x31", (1, 1, q(512, 64), q(512, 64)), (1, 1, 31, 31), {}, scipy=("fftconvolve", "oaconvolve")),
        Case("j", "max pool 3x3 s2, 32x64x56x56", (q(32, 2), q(64, 4), q(56, 14), q(56, 14)), None,
             {"kernel_size": 3, "stride": 2}, op="max_pool"),
    ]


def geomean(values: list[float]) -> float:
    """Geometric mean (``nan`` for an empty list)."""
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else float("nan")


def env_warnings() -> list[str]:
    """Warnings about environment variables that change BLAS speed (never changed here)."""
    out = []
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            out.append(
                f"{var}={os.environ[var]} is set: it can halve numpy's GEMM speed on this machine; for figures run "
                "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE refconv bench`"
            )
    return out


def blas_info() -> list[dict[str, Any]]:
    """numpy's BLAS (and other thread pools): library, kernel (architecture), version, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed (pip install threadpoolctl)"}]
    keep = ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads", "threading_layer")
    out = []
    for d in threadpool_info():
        info = {k: d.get(k) for k in keep}
        # which package ships the library (numpy.libs, scipy.libs, torch/lib ...)
        parts = os.path.normpath(d.get("filepath", "")).split(os.sep)
        info["shipped_with"] = next((q for q in reversed(parts[:-1]) if q not in ("lib", "lib64", ".libs")), None)
        out.append(info)
    return out


#: a 1-minute load average at the start at least this large means other work shares the CPUs
BUSY_LOAD = 1.0


def _load() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the platform has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not on Unix
        return None


def load_warning(load: dict[str, Any] | None) -> str | None:
    """A warning when the machine was busy at the start of the run (1-minute load average >= :data:`BUSY_LOAD`).

    >>> load_warning({"start": [0.2, 0.5, 0.4], "end": [1.1, 0.6, 0.4]}) is None
    True
    >>> load_warning({"start": [3.5, 2.0, 1.0], "end": [4.0, 2.5, 1.2]})[:40]
    'load average 3.50 at the start: other wo'
    """
    start = (load or {}).get("start")
    if not start or start[0] < BUSY_LOAD:
        return None
    return (f"load average {start[0]:.2f} at the start: other work shares the CPUs; thread pools that wait on "
            "each other (PyTorch's intra-op threads, the engine's workers) slow down unevenly, by up to tenfold, "
            "so ratios from this run are not figures (compare --threads 1 runs, or run on a quiet machine)")


def _torch_info() -> dict[str, Any]:
    import torch

    return {"version": torch.__version__, "threads": torch.get_num_threads()}


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gemm_gflops(dtype: Any, n: int = 1024, repeats: int = 5) -> float:
    """Measured numpy ``matmul`` speed (GFLOP/s) on ``n x n`` matrices of ``dtype``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    return 2.0 * n**3 / _median_time(lambda: a @ b, repeats) / 1e9


# ----------------------------------------------------------------------------- implementations


def _fast_impls(case: Case, dtype: Any, mode: str, rng: np.random.Generator) -> Callable[[], Any]:
    from . import fast

    x = rng.standard_normal(case.x_shape).astype(dtype)
    if case.op == "max_pool":
        y = fast.max_pool(x, **case.kwargs)
        dy = rng.standard_normal(y.shape).astype(dtype)
        if mode == "forward":
            return lambda: fast.max_pool(x, **case.kwargs)
        return lambda: (fast.max_pool(x, **case.kwargs), fast.max_pool_grad(dy, x, **case.kwargs))
    w = rng.standard_normal(case.w_shape).astype(dtype)
    y = fast.conv(x, w, **case.kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    if mode == "forward":
        return lambda: fast.conv(x, w, **case.kwargs)

    def step():
        # the forward pass, then both gradients from one call, as torch's backward computes them
        fast.conv(x, w, **case.kwargs)
        fast.conv_backward(dy, x, w, bias=False, **case.kwargs)

    return step


def _torch_impl(case: Case, dtype: Any, mode: str, rng: np.random.Generator) -> Callable[[], Any] | None:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    tdt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    x = torch.tensor(rng.standard_normal(case.x_shape), dtype=tdt)
    nd = len(case.x_shape) - 2
    fn: Callable[..., Any]
    if case.op == "max_pool":
        fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
        if mode == "forward":
            return lambda: fn(x, **case.kwargs)
        xg = x.clone().requires_grad_(True)
        dy = torch.randn_like(fn(x, **case.kwargs))

        def pool_step():
            xg.grad = None
            fn(xg, **case.kwargs).backward(dy)

        return pool_step
    w = torch.tensor(rng.standard_normal(case.w_shape), dtype=tdt)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    kw = dict(case.kwargs)
    if mode == "forward":
        return lambda: fn(x, w, **kw)
    xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    dy = torch.randn_like(fn(x, w, **kw))

    def step():
        xg.grad = wg.grad = None
        fn(xg, wg, **kw).backward(dy)

    return step


def _channel_sum(f: Callable, xb: np.ndarray, wb: np.ndarray, mode: str, axes: tuple[int, ...]) -> Callable[[], Any]:
    """``f(xb, wb, mode=mode, axes=axes)`` summed over the channels (axis 2), as a call with no arguments."""
    return lambda: f(xb, wb, mode=mode, axes=axes).sum(axis=2)


def _scipy_impls(case: Case, dtype: Any, rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
    """scipy.signal equivalents of the forward pass (cross-correlation summed over input channels)."""
    if not case.scipy:
        return {}
    import scipy.signal as ss

    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    nd = len(case.x_shape) - 2
    axes = tuple(range(-nd, 0))
    mode = "same" if case.kwargs.get("padding") == "same" else "valid"
    flipped: tuple[Any, ...] = (Ellipsis, *([slice(None, None, -1)] * nd))
    wr = np.ascontiguousarray(w[flipped])  # correlation = convolution with the flipped kernel
    out: dict[str, Callable[[], Any]] = {}
    for name in case.scipy:
        if name == "correlate":
            # y[n, o] = sum_c correlate(x[n, c], w[o, c]), one N-D correlation over (c, *S)
            def corr(x=x, w=w):
                return np.stack([np.stack([ss.correlate(x[n], w[o], mode="valid")[0] for o in range(w.shape[0])])
                                 for n in range(x.shape[0])])

            out["scipy.signal.correlate"] = corr
        else:
            f = getattr(ss, name)
            # broadcast (N, 1, C, *S) against (1, M, C, *K), then sum the channels
            xb, wb = x[:, None], wr[None]
            out[f"scipy.signal.{name}"] = _channel_sum(f, xb, wb, mode, axes)
    return out


# ----------------------------------------------------------------------------- running


def run_suite(
    *,
    quick: bool = False,
    repeats: int = 7,
    dtypes: tuple[str, ...] = ("float32", "float64"),
    modes: tuple[str, ...] = ("forward", "forward+gradients"),
    cases: tuple[str, ...] | None = None,
    torch: bool = True,
    training: bool = True,
    memory: bool = True,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the suite; returns a JSON-ready dict with ``rows``, ``summary``, ``machine`` and ``memory``.

    ``threads``: run on that many of the CPUs this process may use (the fast
    engine's workers follow the CPU affinity) with as many PyTorch intra-op
    threads; both are restored afterwards.  On a machine shared with other
    work, ``threads=1`` compares single cores and spares PyTorch's threads
    from waiting on each other.
    """
    if threads is None:
        return _run_suite(quick, repeats, dtypes, modes, cases, torch, training, memory, progress)
    cpus = sorted(os.sched_getaffinity(0))
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= len(cpus):
        raise ValueError(f"threads={threads!r}: must be an integer from 1 to {len(cpus)} (the CPUs this process may use)")
    torch_threads = None
    try:
        import torch as _torch

        torch_threads = _torch.get_num_threads()
        _torch.set_num_threads(threads)
    except ImportError:
        pass
    os.sched_setaffinity(0, cpus[:threads])
    try:
        result = _run_suite(quick, repeats, dtypes, modes, cases, torch, training, memory, progress)
        result["machine"]["threads"] = threads
        return result
    finally:
        os.sched_setaffinity(0, cpus)
        if torch_threads is not None:
            _torch.set_num_threads(torch_threads)


def _run_suite(quick, repeats, dtypes, modes, cases, torch, training, memory, progress) -> dict[str, Any]:
    say = progress or (lambda s: None)
    load_start = _load()
    rng = np.random.default_rng(0)
    chosen = [c for c in suite(quick) if cases is None or c.name in cases]
    say("measuring GEMM speed")
    gemm = {dt: gemm_gflops(dt, 256 if quick else 1024, 2 if quick else 5) for dt in dtypes}
    if torch:
        try:
            import torch as _torch  # noqa: F401
        except ImportError:
            torch = False
    entries = []  # (row, {impl: fn})
    for case in chosen:
        for dt in dtypes:
            for mode in modes:
                impls: dict[str, Callable[[], Any]] = {"refconv": _fast_impls(case, dt, mode, rng)}
                if torch:
                    t = _torch_impl(case, dt, mode, rng)
                    if t is not None:
                        impls["torch"] = t
                if mode == "forward":
                    impls.update(_scipy_impls(case, dt, rng))
                flop = case.flop() * (1 if mode == "forward" or case.op == "max_pool" else 3)
                row = {"case": case.name, "title": case.title, "dtype": dt, "mode": mode, "flop": flop, "times": {}}
                entries.append((row, impls))
    if training:
        training_step_case: Callable[..., dict[str, Any]] | None
        try:
            from .nn.benchmark import training_step_case
        except ImportError:
            training_step_case = None
        if training_step_case is not None:
            for case_name, network in TRAINING:
                say(f"building the training-step case {network}")
                tc = training_step_case(batch=8 if quick else 64, seed=0, network=network)
                impls = {"refconv": tc["refconv"]}
                if torch and tc.get("torch") is not None:
                    impls["torch"] = tc["torch"]
                entries.append(({"case": case_name, "title": tc["name"], "dtype": "float32", "mode": "training step",
                                 "flop": int(tc["flop"]), "times": {}}, impls))
    # warm-up: one call of everything (plans, caches, lazy imports)
    for _, impls in entries:
        for fn in impls.values():
            fn()
    samples: list[dict[str, list[float]]] = [{k: [] for k in impls} for _, impls in entries]
    for r in range(repeats):
        say(f"round {r + 1}/{repeats}")
        for (_row, impls), samp in zip(entries, samples):
            names = list(impls)
            # rotate the order each round: no implementation always runs first
            names = names[r % len(names):] + names[: r % len(names)]
            for name in names:
                # a short pause first: thread pools that spin after a call (OpenMP, OpenBLAS) go idle
                # and do not steal cycles from the next implementation
                time.sleep(PAUSE)
                t0 = time.perf_counter()
                impls[name]()
                samp[name].append(time.perf_counter() - t0)
    rows = []
    for (row, _), samp in zip(entries, samples):
        row["times"] = {k: statistics.median(v) for k, v in samp.items()}
        row["times_min"] = {k: min(v) for k, v in samp.items()}
        ref = row["times"]["refconv"]
        row["gflops"] = row["flop"] / ref / 1e9
        g = gemm.get(row["dtype"])
        row["pct_gemm"] = 100.0 * row["gflops"] / g if g else None
        row["ratio_torch"] = ref / row["times"]["torch"] if "torch" in row["times"] else None
        # the fastest round of each side: what a quiet machine gives, when other work slows some rounds
        row["ratio_torch_min"] = (row["times_min"]["refconv"] / row["times_min"]["torch"]
                                  if "torch" in row["times_min"] else None)
        others = {k: v for k, v in row["times"].items() if k.startswith("scipy")}
        row["ratio_scipy"] = {k: ref / v for k, v in others.items()}
        rows.append(row)
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "blas": blas_info(),
            "gemm_gflops": gemm,
            "torch": _torch_info() if torch else None,
            "env_warnings": env_warnings(),
            "load_average": {"start": load_start, "end": _load()},
        },
        "quick": quick,
        "repeats": repeats,
        "rows": rows,
        "summary": summarize(rows),
    }
    if memory:
        say("peak memory of case d at batch 64")
        result["memory"] = peak_memory_check(quick=quick)
    return result


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometric-mean ratios to torch per dtype and mode, the worst ratio, and the targets met."""
    out: dict[str, Any] = {}
    for dt in ("float32", "float64"):
        for mode in ("forward", "forward+gradients"):
            r = [row["ratio_torch"] for row in rows if row["dtype"] == dt and row["mode"] == mode and row["ratio_torch"]]
            if r:
                out[f"{dt} {mode}"] = {"geomean": geomean(r), "max": max(r), "n": len(r)}
    f64 = [row["ratio_torch"] for row in rows if row["dtype"] == "float64" and row["ratio_torch"]]
    checks = {}
    for mode, key in (("forward", "float32_forward"), ("forward+gradients", "float32_forward_gradients")):
        r = [row["ratio_torch"] for row in rows
             if row["dtype"] == "float32" and row["mode"] == mode and row["case"] in CLASSIC and row["ratio_torch"]]
        if r:
            name = f"float32 {mode} a-g"
            out[name] = {"geomean": geomean(r), "max": max(r), "n": len(r)}
            checks[f"{name} geomean <= {TARGETS[key + '_geomean']}"] = out[name]["geomean"] <= TARGETS[key + "_geomean"]
            checks[f"{name} max <= {TARGETS[key + '_max']}"] = out[name]["max"] <= TARGETS[key + "_max"]
    if f64:
        out["float64 all"] = {"geomean": geomean(f64), "max": max(f64), "n": len(f64)}
        checks[f"float64 geomean <= {TARGETS['float64_geomean']}"] = out["float64 all"]["geomean"] <= TARGETS["float64_geomean"]
    for case_name, network in TRAINING:
        train = [row["ratio_torch"] for row in rows if row["case"] == case_name and row["ratio_torch"]]
        if train:
            label = "training step" if case_name == "train" else f"training step {network}"
            checks[f"{label} <= {TARGETS['training_step']}"] = train[0] <= TARGETS["training_step"]
    for name in ("h", "i"):
        rs = [row for row in rows if row["case"] == name and row["mode"] == "forward"]
        if rs:
            checks[f"{name} faster than torch and scipy.signal"] = all(
                (row["ratio_torch"] is None or row["ratio_torch"] < 1) and all(v < 1 for v in row["ratio_scipy"].values())
                for row in rs
            )
    for dt, mode in (("float32", "forward"), ("float32", "forward+gradients"), ("float32", "training step")):
        r = [row["ratio_torch_min"] for row in rows if row["dtype"] == dt and row["mode"] == mode
             and (row["case"] in CLASSIC or mode == "training step") and row.get("ratio_torch_min")]
        if r:
            label = "a-g" if mode != "training step" else "(train, lenet5)"
            out[f"fastest rounds: {dt} {mode} {label}"] = {"geomean": geomean(r), "max": max(r), "n": len(r)}
    out["targets"] = checks
    return out


def peak_memory_check(quick: bool = False) -> dict[str, Any]:
    """Peak traced memory of ``fast.conv`` on case d at batch 64 (float32), against cap + inputs + outputs.

    numpy reports its allocations to :mod:`tracemalloc`, so the peak covers the
    output and every temporary of the call.
    """
    import tracemalloc

    from . import fast

    shape = (4, 8, 14, 14) if quick else (64, 64, 56, 56)
    wshape = (8, 8, 3, 3) if quick else (64, 64, 3, 3)
    cap = fast.get_memory_cap()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32)
    tracemalloc.start()
    try:
        y = fast.conv(x, w, padding=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    limit = cap + y.nbytes  # x and w were allocated before tracing started
    return {
        "x_shape": shape, "w_shape": wshape, "cap": cap, "input_bytes": x.nbytes + w.nbytes, "output_bytes": y.nbytes,
        "peak_traced_bytes": peak, "limit_bytes": limit + x.nbytes + w.nbytes, "within": bool(peak <= limit),
    }


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as JSON atomically: a temporary file in the same folder, then a rename."""
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def format_report(result: dict[str, Any]) -> str:
    """The human-readable table."""
    lines = []
    m = result["machine"]
    for w in m["env_warnings"]:
        lines.append(f"WARNING: {w}")
    busy = load_warning(m.get("load_average"))
    if busy:
        lines.append(f"WARNING: {busy}")
    if m.get("load_average"):
        la = m["load_average"]
        lines.append(f"load average (1, 5, 15 min): {la['start']} at the start, {la['end']} at the end; {m['cpus']} CPUs")
    for b in m["blas"]:
        if b.get("user_api") == "blas" or "error" in b:
            lines.append("BLAS: " + ", ".join(f"{k}={v}" for k, v in b.items() if v is not None))
    lines.append("GEMM: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in m["gemm_gflops"].items()))
    if m.get("torch"):
        lines.append(f"torch {m['torch']['version']}, {m['torch']['threads']} threads")
    if m.get("threads") is not None:
        lines.append(f"--threads {m['threads']}: refconv and torch on {m['threads']} CPU(s)")
    lines.append(f"median of {result['repeats']} interleaved rounds" + (" (quick sizes: not for figures)" if result["quick"] else ""))
    hdr = f"{'case':6} {'dtype':8} {'mode':18} {'refconv ms':>10} {'GFLOP/s':>8} {'%GEMM':>6} {'torch ms':>9} {'ratio':>6} {'fastest':>7}  others"
    lines.append(hdr)
    for r in result["rows"]:
        t = r["times"]
        others = "  ".join(f"{k} {v * 1e3:.2f}ms (x{r['ratio_scipy'][k]:.2f})" for k, v in t.items() if k.startswith("scipy"))
        torch_ms = f"{t['torch'] * 1e3:9.3f}" if "torch" in t else f"{'-':>9}"
        ratio = f"{r['ratio_torch']:6.2f}" if r["ratio_torch"] else f"{'-':>6}"
        pct = f"{r['pct_gemm']:6.1f}" if r["pct_gemm"] is not None else f"{'-':>6}"
        fastest = f"{r['ratio_torch_min']:7.2f}" if r.get("ratio_torch_min") else f"{'-':>7}"
        lines.append(f"{r['case']:6} {r['dtype']:8} {r['mode']:18} {t['refconv'] * 1e3:10.3f} {r['gflops']:8.2f} {pct} "
                     f"{torch_ms} {ratio} {fastest}  {others}")
    lines.append("ratios are refconv time / other time (below 1: refconv faster); 'fastest': the ratio of the two "
                 "fastest rounds (medians judge the targets)")
    for k, v in result["summary"].items():
        if k != "targets":
            lines.append(f"{k}: geomean ratio to torch {v['geomean']:.2f}, max {v['max']:.2f} over {v['n']} rows")
    if result["quick"]:
        lines.append("quick sizes: the targets are judged on the full suite only")
    else:
        for k, ok in result["summary"].get("targets", {}).items():
            lines.append(f"target {k}: {'met' if ok else 'NOT met'}")
    if "memory" in result:
        mm = result["memory"]
        lines.append(
            f"peak memory of conv {mm['x_shape']} x {mm['w_shape']}: {mm['peak_traced_bytes'] / 2**20:.1f} MiB traced "
            f"(output {mm['output_bytes'] / 2**20:.1f} MiB, cap {mm['cap'] / 2**20:.0f} MiB): "
            f"{'within' if mm['within'] else 'OVER'} cap + output"
        )
    return "\n".join(lines)
