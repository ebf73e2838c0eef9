"""The ``refconv`` command: one front end over the whole library.

Each subcommand lives in ``refconv/commands/<name>.py`` (``check-shape``: ``check_shape.py``) and provides
``add_arguments(parser)`` and ``run(args) -> int``.  Exit status: 0 success or
conformance, 1 a found nonconformance or a failed job, 2 a usage error (one
line naming the bad argument), 3 refconv itself failed (``check``: an ERROR or
INCONCLUSIVE verdict; any command: an unexpected exception, printed as one
line followed by its traceback, for a bug report).

Run as a program (``main()`` without arguments), the command exits once its
work is done even if code it ran (a checked target) left threads running or
was interrupted half-way by a timeout (``os._exit`` after flushing: no
finalizer runs in a library left in an unknown state).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import traceback
from typing import NoReturn, Sequence

from .params import ConvParamError

#: subcommand -> one-line help; the module is refconv.commands.<name> (dashes as underscores)
COMMANDS: dict[str, str] = {
    "shape": "output shape of one layer, with the formula and the numbers substituted",
    "summary": "layer table of a network: shapes, parameters, multiply-adds, memory",
    "derive": "symbolic derivation of outputs, gradients and shape formulas",
    "check": "conformance check of an implementation against the oracle",
    "check-shape": "verify another tool's output-shape function for every size",
    "identify": "fingerprint the conventions of an unknown implementation",
    "train": "train the small CNN on handwritten digits",
    "predict": "classify digit images with a trained checkpoint",
    "bench": "benchmark the fast engine side by side with PyTorch and scipy",
    "golden": "regenerate or verify the golden vectors in specs/cases",
    "sweep": "run a plan's matrix of checks, whole or one shard of it, streaming JSON results",
    "report": "merge sweep shards, validate JSON reports, render one self-contained HTML report",
}


class UsageError(Exception):
    """A bad command-line argument; reported with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 with the message, as we want
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="refconv", description="The convolution reference and test oracle.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"refconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        mod = importlib.import_module(f"refconv.commands.{name.replace('-', '_')}")
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().splitlines()[0])
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    ``argv`` None means the process's own arguments: then the process ends
    here (``os._exit``, after flushing) if threads other than the main one are
    still running, so that nothing a target left behind keeps it alive.
    """
    code = _main(argv)
    if argv is None:
        _exit_hard_if_needed(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except (UsageError, ConvParamError) as exc:
        _err(f"refconv {args.command}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # the reader of our output went away (| head): nothing more to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    except Exception as exc:  # noqa: BLE001 - a bug in refconv: one line, then the traceback for the report
        _err(f"refconv {args.command}: internal error: {type(exc).__name__}: {exc} (a bug in refconv; please report it)")
        _err(traceback.format_exc().rstrip())
        return 3


def _err(text: str) -> None:
    """A line on stderr, if stderr is still there."""
    try:
        print(text, file=sys.stderr)
    except (OSError, ValueError, AttributeError):
        pass


def _exit_hard_if_needed(code: int) -> None:
    """End the process now when threads remain or a checked target was interrupted in this process.

    Finalizers (atexit, library shutdown) would wait for the threads, or run
    in a library left half-way through a call.
    """
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    interrupted = getattr(sys.modules.get("refconv.conformance.isolation"), "interrupted", None)
    if not others and not interrupted:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
