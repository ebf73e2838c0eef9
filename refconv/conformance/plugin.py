"""pytest plugin: ``pytest --refconv-target=module:function`` runs the conformance suite.

Registered through the ``pytest11`` entry point; it adds options and, only
when ``--refconv-target`` is given, one test item per (op, dims, dtype) with
an id that reads as the call, e.g.
``check(mypkg:conv2d, op='conv', dims=2, dtype='float32')``.  Known, explained
divergences (``refconv/conformance/known_divergences.json`` and any file given
with ``--refconv-divergences``; :mod:`refconv.conformance.divergences`) are
accepted: an entry with a predicate (``when``) accepts exactly the failing
cases it explains (the check goes on past them, and any other failure still
fails the item); an entry without one turns the whole matching item into an
expected failure with its reason.  The runner options are those of ``refconv check``:
``--refconv-isolate`` (import and run the target in a worker process),
``--refconv-timeout`` (seconds per call; ``inf``: no limit), and
``--refconv-unsupported`` (features the target does not implement), and
``--refconv-layout`` / ``--refconv-weight-layout`` (the layouts a function
target takes and returns: ``NHWC``, ``HWIO``...; ``specs/layouts.md``).  An item
passes on a PASS verdict only: FAIL, ERROR (refconv itself failed) and
INCONCLUSIVE fail it with the report.  Without ``--refconv-target`` the
plugin does nothing.  Under pytest-xdist (``pytest -n auto``) every worker
builds the same items, each item's seed comes from ``--refconv-seed`` and
its name alone (:func:`item_seed`), and items share no state: the verdicts
are those of a serial run.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("refconv", "refconv conformance suite")
    group.addoption("--refconv-target", action="append", default=[], metavar="TARGET",
                    help="adapter name, module:function or path/to/file.py:function to check (repeatable)")
    group.addoption("--refconv-op", default=None, metavar="OPS",
                    help="comma-separated ops, or all (default: a function's own op, read from its signature; conv for "
                         "an adapter)")
    group.addoption("--refconv-dims", default="2", metavar="DIMS", help="comma-separated spatial dims (default 2)")
    group.addoption("--refconv-dtype", default="float32", metavar="DTYPES", help="comma-separated dtypes (default float32)")
    group.addoption("--refconv-precision", default=None, help="claimed precision profile (default: the dtype)")
    group.addoption("--refconv-max-examples", type=int, default=None, metavar="N", help="hypothesis examples per item")
    group.addoption("--refconv-seed", type=int, default=0, metavar="S",
                    help="base of the exploration seeds (default 0: reproducible CI); each item's seed is derived "
                         "from it and the item's name, the same in every process (pytest-xdist workers included)")
    group.addoption("--refconv-divergences", default=None, metavar="FILE", help="JSON list of known divergences")
    group.addoption("--refconv-isolate", action="store_true", default=False,
                    help="import and run the target in a worker process (crashes and hangs cannot stop pytest)")
    group.addoption("--refconv-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="per-call timeout (default 10; inf: no limit)")
    group.addoption("--refconv-unsupported", default=None, metavar="FEATURES",
                    help="comma-separated features the target does not implement (as refconv check --unsupported)")
    group.addoption("--refconv-layout", default=None, metavar="NAME",
                    help="activation layout a function target takes and returns (NHWC...; as refconv check --layout); "
                         "the default dims become its rank")
    group.addoption("--refconv-weight-layout", default=None, metavar="NAME",
                    help="weight layout of a function target (HWIO, OHWI, HWIM; HWOI for conv_transpose)")


def _split(v: str) -> list[str]:
    return [p.strip() for p in str(v).split(",") if p.strip()]


def load_divergences(path: str | None = None) -> list:
    """Known divergences: the packaged entries plus those of ``path`` (pytest.UsageError if it is unreadable)."""
    from ..params import ConvParamError
    from .divergences import load

    try:
        return load(path)
    except ConvParamError as exc:
        raise pytest.UsageError(f"--refconv-divergences: {exc}") from None


def _default_op(target: str, opts: dict[str, Any]) -> str:
    """The op a function target's signature names; ``conv`` for adapters (and when it cannot be read here:
    the item then reports why)."""
    from ..params import ConvParamError
    from .engine import _choose_op, open_target
    from .targets import TargetError

    try:
        tgt, worker = open_target(target, isolate=opts["isolate"], timeout=opts["timeout"])
    except TargetError:
        return "conv"
    try:
        return _choose_op(tgt, None)
    except ConvParamError as exc:
        raise pytest.UsageError(f"--refconv-target={target}: {exc}") from None
    finally:
        if worker is not None:
            worker.close()


def _all_ops(target: str, opts: dict[str, Any]) -> list[str]:
    """The ops ``--refconv-op=all`` means for ``target`` (a usage error when its signature names none)."""
    from ..params import ConvParamError
    from .engine import open_target
    from .targets import TargetError, supported_ops

    try:
        tgt, worker = open_target(target, isolate=opts["isolate"], timeout=opts["timeout"])
        try:
            return supported_ops(tgt)
        finally:
            if worker is not None:
                worker.close()
    except (TargetError, ConvParamError) as exc:
        raise pytest.UsageError(f"--refconv-op=all: {exc}") from None


def item_seed(base: int, name: str) -> int:
    """The seed of one item: a function of ``base`` and the item's name only, so that an item draws the same
    cases whichever process runs it and whatever ran before (``pytest -n auto``: no shared state).

    >>> item_seed(0, "check(torch, op='conv', dims=2, dtype='float32')") == item_seed(0, "check(torch, op='conv', dims=2, dtype='float32')")
    True
    >>> item_seed(0, 'a') != item_seed(0, 'b') and item_seed(0, 'a') != item_seed(1, 'a')
    True
    """
    import zlib

    return zlib.crc32(f"{base}:{name}".encode()) & 0x7FFFFFFF


def _layout_options(config: Any) -> dict[str, Any]:
    """``--refconv-layout`` / ``--refconv-weight-layout`` (pytest.UsageError naming a bad one); with them, the dims
    default to their rank."""
    from ..layouts import layout
    from ..params import ConvParamError

    act, wl = config.getoption("--refconv-layout"), config.getoption("--refconv-weight-layout")
    if act is None and wl is None:
        return {}
    try:
        lays = [layout(act, kind="activation", argument="--refconv-layout")] if act else []
        if wl:
            lays.append(layout(wl, argument="--refconv-weight-layout"))
    except ConvParamError as exc:
        raise pytest.UsageError(str(exc)) from None
    given = config.getoption("--refconv-dims")
    dims = str(lays[0].dims) if given == "2" and lays[0].dims != 2 else given  # "2" is the option's default
    return {"layout": act, "weight_layout": wl, "dims": dims}


class RefconvFailure(Exception):
    """Carries the conformance report of a failed item."""


class RefconvItem(pytest.Item):
    def __init__(self, *, target: str, op: str, dims: int, dtype: str, opts: dict[str, Any], divergences: list,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.target, self.op, self.dims, self.dtype, self.opts = target, op, dims, dtype, opts
        self.divergences = divergences

    def runtest(self) -> None:
        from .engine import DEFAULT_MAX_EXAMPLES
        from .targets import check  # the engine's check with the target's layouts

        n = self.opts["max_examples"]
        report = check(self.target, op=self.op, dims=self.dims, dtype=self.dtype, precision=self.opts["precision"],
                       max_examples=DEFAULT_MAX_EXAMPLES if n is None else n, seed=item_seed(self.opts["seed"], self.name),
                       timeout=self.opts["timeout"], isolate=self.opts["isolate"],
                       unsupported=self.opts["unsupported"], allow_known=True, divergences=self.divergences,
                       layout=self.opts.get("layout"), weight_layout=self.opts.get("weight_layout"))
        self.user_properties.append(("refconv_report", report.to_json()))
        if not report.ok:
            raise RefconvFailure(str(report))

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:  # str, or pytest's TerminalRepr
        if isinstance(excinfo.value, RefconvFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


def pytest_collection_modifyitems(session: Any, config: Any, items: list) -> None:
    targets = config.getoption("--refconv-target")
    if not targets:
        return
    divergences = load_divergences(config.getoption("--refconv-divergences"))
    opts = {"precision": config.getoption("--refconv-precision"), "max_examples": config.getoption("--refconv-max-examples"),
            "seed": config.getoption("--refconv-seed"), "isolate": config.getoption("--refconv-isolate"),
            "timeout": config.getoption("--refconv-timeout"), "unsupported": config.getoption("--refconv-unsupported")}
    opts.update(_layout_options(config))
    timeout = opts["timeout"]
    if timeout != timeout or timeout <= 0:  # NaN or not positive
        raise pytest.UsageError(f"--refconv-timeout={timeout}: must be a number of seconds > 0 (inf: no limit)")
    try:
        dims_list = [int(d) for d in _split(opts.get("dims") or config.getoption("--refconv-dims"))]
    except ValueError:
        raise pytest.UsageError(f"--refconv-dims={config.getoption('--refconv-dims')!r}: expected integers like 1,2") from None
    for target in targets:
        given = config.getoption("--refconv-op")
        ops = _split(given) if given else [_default_op(target, opts)]
        if ops == ["all"]:
            ops = _all_ops(target, opts)
        for op in ops:
            for dims in dims_list:
                for dtype in _split(config.getoption("--refconv-dtype")):
                    name = f"check({target}, op={op!r}, dims={dims}, dtype={dtype!r})"
                    item = RefconvItem.from_parent(session, name=name, target=target, op=op, dims=dims, dtype=dtype,
                                                   opts=opts, divergences=divergences)
                    for entry in divergences:
                        if entry.when is None and entry.applies(target, op, dims, dtype):
                            item.add_marker(pytest.mark.xfail(reason=entry.reason, strict=False))
                    items.append(item)
