"""Conformance check of an implementation against the oracle.

Examples::

    refconv check torch --op conv --dims 2
    refconv check mypkg.kernels:conv2d --dims 2 --dtype float32 --precision tf32
    refconv check path/to/impl.py:conv --max-examples 200 --seed 1 --json report.json
    refconv check path/to/impl.py:conv --unsupported dilation,groups --isolate
    refconv check mypkg.tf_ops:conv2d --layout NHWC --weight-layout HWIO

TARGET is a built-in adapter (torch, onnxruntime, jax, scipy, numpy,
refconv.fast) or ``module:function`` / ``path/to/file.py:function`` with the
canonical signature of the op (see ``refconv.conformance.ops``); a function's
op is read from its signature unless ``--op`` says it.  An adapter without
``--op`` is checked on every op and dims it declares (``--dims`` narrows the
dims); ``refconv check --list-adapters`` lists the adapters and their named
variants.  ``--layout`` / ``--weight-layout`` name the layouts a function
takes and returns (``NHWC``, ``HWIO``...: ``specs/layouts.md``); a failing
function's diagnosis names the layouts its results match.  A failure that a recorded known divergence explains is marked
"known divergence: <id>"; ``--allow-known`` accepts those.  Exit status 0 PASS,
1 FAIL (the target is wrong), 2 usage error, 3 ERROR (refconv itself failed)
or INCONCLUSIVE (too few cases could be judged).  With ``--op all``: 1 if any
op fails, else 3 if any is ERROR or INCONCLUSIVE, else 0.

The report is printed even when the target closed standard output (through a
copy of the descriptor taken at the start), and the command exits even when
an in-process target left threads running.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
from typing import Any

from ..conformance.bounds import BOUND_ALIASES, BOUND_MODES
from ..conformance.registry import names as _op_names

#: the --op choices: every registered op
OPS = _op_names()

BOUND_CHOICES = tuple(BOUND_MODES) + tuple(BOUND_ALIASES)

#: exit status of each verdict
STATUS = {"PASS": 0, "FAIL": 1, "ERROR": 3, "INCONCLUSIVE": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..conformance.targets import FEATURES

    parser.add_argument("target", nargs="?", default=None,
                        help="adapter name (--list-adapters), module:function or path/to/file.py:function")
    parser.add_argument("--list-adapters", action="store_true", help="list the built-in adapters and their variants")
    parser.add_argument("--op", default=None, choices=OPS + ("all",),
                        help="operation to check (default: a function's own op, read from its signature; conv for "
                             "an adapter; all: every op the target declares)")
    parser.add_argument("--dims", type=int, default=None, choices=(1, 2, 3),
                        help="spatial axes (default: for an adapter without --op, every dims it supports; else 2)")
    parser.add_argument("--dtype", default="float32", help="input dtype: float64, float32, float16, bfloat16")
    parser.add_argument("--precision", default=None,
                        help="claimed precision profile: float64, float32, tf32, bfloat16, float16 (default: the dtype)")
    parser.add_argument("--max-examples", type=int, default=None, metavar="N",
                        help="hypothesis examples after the catalogue (default 100; 0: catalogue only)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="exploration seed (default: random, printed)")
    parser.add_argument("--bound", default="direct", choices=BOUND_CHOICES,
                        help="the algorithm whose error bound the target claims (specs/tolerance.md): direct "
                             "(default; alias elementwise), fft (alias normwise), winograd, prefix_sum")
    parser.add_argument("--unsupported", default=None, metavar="FEATURES",
                        help="comma-separated features the target does not implement (their cases are not run): "
                             + ", ".join(FEATURES))
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="per-call timeout (default 10, or the adapter's declared one: tinygrad 60, its first call "
                             "of a shape compiles a kernel; inf: no limit). Native code that never returns to Python "
                             "is only stopped with --isolate")
    parser.add_argument("--isolate", action="store_true",
                        help="import and run the target in a worker process (crashes, exits and hangs, also at import, "
                             "cannot take the check down)")
    parser.add_argument("--load-timeout", type=float, default=None, metavar="SECONDS",
                        help="with --isolate: seconds to import the target (default max(timeout, 60))")
    parser.add_argument("--allow-known", action="store_true",
                        help="accept failures explained by a recorded known divergence (listed, not held against "
                             "the target); without it they fail, marked 'known divergence: <id>'")
    parser.add_argument("--divergences", default=None, metavar="FILE",
                        help="JSON file of further known divergences (refconv.conformance.divergences)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON (atomically)")
    parser.add_argument("--specials", action="store_true",
                        help="also report NaN / infinity / signed-zero handling (separately; never changes the exit status)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # the function's own layouts (refconv.layouts; specs/layouts.md): it gets and returns arrays in them
    parser.add_argument("--layout", default=None, metavar="NAME",
                        help="activation layout the function takes and returns: NCW/NCHW/NCDHW (default) or "
                             "NWC/NHWC/NDHWC; sets --dims")
    parser.add_argument("--weight-layout", default=None, metavar="NAME",
                        help="weight layout of the function: OIHW (default), HWIO, OHWI, depthwise HWIM "
                             "(groups = C_in); transposed convolution: IOHW (default) or HWOI (TensorFlow)")
    # a real network, every distinct convolution and pooling layer at its real size (specs/networks.md)
    net = parser.add_argument_group("networks")
    net.add_argument("--network", default=None, metavar="NAME|FILE",
                     help="check every distinct convolution and pooling layer of a zoo network or a .toml/.json "
                          "network file at its real size (--op narrows the layers)")
    net.add_argument("--input", default=None, metavar="CxHxW", help="with --network: input shape per image "
                     "(default: the network's own)")
    net.add_argument("--batch", type=int, default=1, metavar="N", help="with --network: images per call (default 1)")
    net.add_argument("--random-positions", type=int, default=None, metavar="N",
                     help="with --network: random interior positions judged exactly per convolution, besides "
                          "corners, borders and tile remainders (default 64)")


def _seconds(option: str, value: float | None) -> float | None:
    """A positive number of seconds, None for no limit (inf); UsageError naming the option otherwise."""
    from ..cli import UsageError

    if value is None:
        return None
    if math.isnan(value) or value <= 0:
        raise UsageError(f"{option}={value}: must be a number of seconds > 0 (inf: no limit)")
    return None if math.isinf(value) else value


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..conformance.engine import DEFAULT_MAX_EXAMPLES
    from ..conformance.targets import TargetError, check, features
    from ..params import ConvParamError
    from ._paths import output_file

    if args.list_adapters:
        from ..conformance.adapters import ADAPTERS, plugins

        # the built-in adapters, then those other packages register (entry points of refconv.adapters)
        print("\n".join([*ADAPTERS, *(f"{n}  (registered by {ep.value})" for n, ep in plugins().items())]))
        return 0
    if args.target is None:
        raise UsageError("TARGET: missing (an adapter name, module:function or path/to/file.py:function)")
    if args.network is not None or args.input is not None or args.random_positions is not None or args.batch != 1:
        return run_network(args)
    # every argument is checked before any work starts
    n = DEFAULT_MAX_EXAMPLES if args.max_examples is None else args.max_examples
    limit, why = None, ""
    if n < 0:
        raise UsageError(f"--max-examples={n}: must be >= 0")
    timeout = _seconds("--timeout", declared_timeout(args.target) if args.timeout is None else args.timeout)
    load_timeout = _seconds("--load-timeout", args.load_timeout)
    try:
        unsupported = features(args.unsupported)
    except ConvParamError as exc:
        raise UsageError(f"--unsupported={args.unsupported!r}: {str(exc).partition(': ')[2]}") from None
    _layouts(args)
    json_path = os.path.abspath(output_file("--json", args.json)) if args.json else None
    out = _Stdout()
    try:
        try:
            plan, skipped = _plan(args, timeout, load_timeout)
            if args.max_examples is None and args.op in (None, "all"):  # a whole library: its declared cost
                limit, n, why = declared_budget(args.target)
            reports = [check(args.target, op=op, dims=dims, dtype=args.dtype, precision=args.precision,
                             max_examples=n, seed=args.seed, bound=args.bound, timeout=timeout, isolate=args.isolate,
                             load_timeout=load_timeout, unsupported=unsupported, progress=not args.quiet,
                             allow_known=args.allow_known, divergences=args.divergences,
                             layout=args.layout, weight_layout=args.weight_layout, catalogue_limit=limit,
                             budget=why)
                       for op, dims in plan]
        except TargetError as exc:
            raise UsageError(str(exc)) from None
        if json_path:
            _save(json_path, reports)
        stream = out.stream()
        for report in reports:
            print(report, file=stream)
        for line in skipped:
            print(line, file=stream)
        stream.flush()
        if args.specials:
            from ..conformance.specials import check_specials

            for report in reports:
                print(check_specials(_target_in_layouts(args), op=report.op, dims=report.dims, dtype=args.dtype),
                      file=stream)
    finally:
        out.close()
    return status(reports)


def _declared(target: str) -> dict:
    """The ``BUDGET`` an adapter module declares ({} for a function target or an adapter without one)."""
    import importlib

    from ..conformance.adapters import module_of

    module = module_of(target)
    if module is None or ":" in module:  # a function, or an adapter another package registers
        return {}
    return getattr(importlib.import_module(f"refconv.conformance.adapters.{module}"), "BUDGET", None) or {}


def declared_timeout(target: str) -> float:
    """The default ``--timeout``: the adapter's declared ``BUDGET['timeout']``, else 10 seconds.

    >>> declared_timeout('torch'), declared_timeout('tinygrad')
    (10.0, 60.0)
    """
    return float(_declared(target).get("timeout", 10.0))


def declared_budget(target: str) -> tuple[int | None, int, str]:
    """``(catalogue shapes, explored cases, why)`` per op of a whole-library run of the adapter ``target``.

    An adapter module may declare ``BUDGET = {'catalogue_shapes': K, 'max_examples': M, 'why': ...}``: what one
    ``(op, dims)`` of ``refconv check ADAPTER`` (no ``--op``, no ``--max-examples``) runs when every case costs
    the library a compilation.  Without one (or for a function target): the whole catalogue, 100 explored.

    >>> declared_budget('torch')
    (None, 100, '')
    >>> declared_budget('tinygrad')[2]
    "tinygrad's compile cost: a new C kernel per shape"
    """
    from ..conformance.engine import DEFAULT_MAX_EXAMPLES

    declared = _declared(target)
    if "why" not in declared:
        return None, DEFAULT_MAX_EXAMPLES, ""
    return declared.get("catalogue_shapes"), declared.get("max_examples", DEFAULT_MAX_EXAMPLES), declared["why"]


def _layouts(args: argparse.Namespace) -> None:
    """--layout and --weight-layout checked before any work; --dims defaults to their rank."""
    from ..cli import UsageError
    from ..conformance.targets import is_adapter, split_layout_spec
    from ..layouts import layout
    from ..params import ConvParamError

    if args.layout is None and args.weight_layout is None:
        return
    if is_adapter(split_layout_spec(args.target)[0]):
        raise UsageError(f"--layout/--weight-layout: {args.target!r} is a built-in adapter, which takes canonical "
                         "arrays; layouts apply to a function target (module:function)")
    try:
        act = None if args.layout is None else layout(args.layout, kind="activation", argument="--layout")
        wl = None if args.weight_layout is None else layout(args.weight_layout, argument="--weight-layout")
        if wl is not None and wl.kind == "activation":
            layout(args.weight_layout, kind="weight", argument="--weight-layout")
    except ConvParamError as exc:
        raise UsageError(str(exc)) from None
    first = act or wl
    assert first is not None  # called with at least one of --layout / --weight-layout
    rank = first.dims
    for name, lay in (("--layout", act), ("--weight-layout", wl)):
        if lay is not None and lay.dims != (args.dims or rank):
            raise UsageError(f"{name}={lay.name}: {lay.dims} spatial axes, but --dims={args.dims or rank}")
    args.dims = args.dims or rank


def _target_in_layouts(args: argparse.Namespace) -> str:
    """The target string that carries --layout / --weight-layout (refconv.conformance.targets.layout_spec)."""
    from ..conformance.targets import layout_spec

    if args.layout is None and args.weight_layout is None:
        return args.target
    return layout_spec(args.target, args.layout, args.weight_layout)


def status(reports: list) -> int:
    """1 if any report is a FAIL (the target is wrong), else 3 if any is ERROR or INCONCLUSIVE, else 0."""
    verdicts = {r.verdict for r in reports}
    if "FAIL" in verdicts:
        return 1
    return max((STATUS[v] for v in verdicts), default=0)


def _plan(args: argparse.Namespace, timeout: float | None, load_timeout: float | None) -> tuple[list, list]:
    """The (op, dims) checks to run, and a line for each op the family leaves out.

    ``--op OP``: that op (``--dims``, default 2).  A function without ``--op``: the op its signature names.
    ``--op all``, or an adapter without ``--op``: every op the target declares, in every dims it declares
    (or the one ``--dims`` names) and the dtype asked for.
    """
    from ..conformance.targets import is_adapter

    if args.op not in (None, "all") or (args.op is None and not is_adapter(args.target)):
        return [(args.op, args.dims or 2)], []
    from ..conformance.engine import open_target
    from ..conformance.targets import supported_ops

    tgt, worker = open_target(args.target, isolate=args.isolate, timeout=timeout, load_timeout=load_timeout)
    try:
        if tgt.is_function:
            return [(op, args.dims or 2) for op in supported_ops(tgt, args.dims or 2, args.dtype)], []
        plan, left_out = [], _not_offered_here(tgt, args.dtype)
        for op in supported_ops(tgt, 2, args.dtype):
            for dims in ([args.dims] if args.dims else [1, 2, 3]):
                caps = tgt.capabilities(op, dims, args.dtype)
                if dims in caps.dims and args.dtype in caps.dtypes:
                    plan.append((op, dims))
                elif args.dtype not in caps.dtypes:
                    left_out.append(f"not checked: {op} {dims}-D {args.dtype} (declared dtypes: {', '.join(caps.dtypes)})")
        return plan, list(dict.fromkeys(left_out))
    finally:
        if worker is not None:
            worker.close()


def _not_offered_here(tgt: Any, dtype: str) -> list[str]:
    """A line for each op the adapter offers elsewhere but not here, with its reason (a library that does not load)."""
    from ..conformance.targets import OPS, not_offered_reason

    out = []
    for op in OPS:
        try:
            why = not_offered_reason(tgt.capabilities(op, 2, dtype), op)
        except Exception:  # noqa: BLE001 - an op whose declaration fails is checked, and its report says why
            continue
        if why:
            out.append(f"not checked: {why}")
    return out


class _Stdout:
    """Where the report goes: standard output, or a copy of its descriptor if the target closed or replaced it."""

    def __init__(self) -> None:
        self.original = sys.stdout
        self.fd: int | None = None
        self._opened: io.TextIOBase | None = None
        try:
            self.fileno = sys.stdout.fileno()
            self.stat = os.fstat(self.fileno)
            self.fd = os.dup(self.fileno)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # captured (pytest), or no descriptor
            pass

    def _intact(self) -> bool:
        s = sys.stdout
        if s is not self.original or s is None or s.closed:
            return False
        if self.fd is None:
            return True
        try:
            st = os.fstat(self.fileno)
        except OSError:  # os.close(1)
            return False
        return (st.st_dev, st.st_ino) == (self.stat.st_dev, self.stat.st_ino)

    def stream(self):
        """A writable text stream on the original standard output (also made ``sys.stdout`` again)."""
        if self._intact() or self.fd is None:
            return sys.stdout if sys.stdout is not None and not sys.stdout.closed else sys.__stderr__
        enc = getattr(self.original, "encoding", None) or "utf-8"
        self._opened = os.fdopen(os.dup(self.fd), "w", encoding=enc, errors="replace")
        sys.stdout = self._opened
        return self._opened

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _save(path: str, reports: list) -> None:
    """One report as its JSON object; several (``--op all``) as a list; written atomically."""
    if len(reports) == 1:
        reports[0].save_json(path)
        return
    from ..atomic import atomic_write

    atomic_write(path, "[" + ",\n".join(r.to_json(indent=2) for r in reports) + "]")


def run_network(args: argparse.Namespace) -> int:
    """``--network``: :func:`refconv.conformance.network.check_network`, its table, and the verdict's exit status."""
    from ..cli import UsageError
    from ..conformance.network import DEFAULT_RANDOM, check_network
    from ..conformance.targets import TargetError
    from ._paths import output_file
    from .summary import parse_input

    if args.network is None:
        raise UsageError("--input, --batch and --random-positions apply with --network only")
    for flag, value, default in (("--max-examples", args.max_examples, None), ("--dims", args.dims, None),
                                 ("--unsupported", args.unsupported, None), ("--allow-known", args.allow_known, False),
                                 ("--specials", args.specials, False), ("--bound", args.bound, "direct"),
                                 ("--divergences", args.divergences, None)):
        if value != default:
            raise UsageError(f"{flag}={value!r}: does not apply with --network (each layer is one case at its real "
                             "size, judged with the direct bound)")
    shape = parse_input(args.input) if args.input is not None else None
    if shape is not None and not all(isinstance(v, int) for v in shape):
        raise UsageError(f"--input={args.input!r}: a network is checked at numeric sizes")
    if args.batch < 1:
        raise UsageError(f"--batch={args.batch}: must be an integer >= 1")
    random = DEFAULT_RANDOM if args.random_positions is None else args.random_positions
    if random < 0:
        raise UsageError(f"--random-positions={random}: must be >= 0")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed={args.seed}: must be >= 0")
    json_path = os.path.abspath(output_file("--json", args.json)) if args.json else None
    ops = None if args.op in (None, "all") else [args.op]
    try:
        report = check_network(args.target, args.network, input_shape=shape, batch=args.batch, dtype=args.dtype,
                               precision=args.precision, random=random, seed=args.seed or 0, ops=ops,
                               timeout=_seconds("--timeout", declared_timeout(args.target) if args.timeout is None
                                                else args.timeout), isolate=args.isolate,
                               load_timeout=_seconds("--load-timeout", args.load_timeout), progress=not args.quiet)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    if json_path:
        report.save_json(json_path)
    out = _Stdout()
    try:
        stream = out.stream()
        print(report, file=stream)
        stream.flush()
    finally:
        out.close()
    return STATUS[report.verdict]
