"""The command line: every subcommand exists, has help, and usage errors exit 2 naming the argument."""

import subprocess
import sys

import pytest

from refconv.cli import COMMANDS, main


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert command in capsys.readouterr().out


def test_unknown_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "frobnicate" in capsys.readouterr().err


def test_python_dash_m_runs_the_command():
    out = subprocess.run([sys.executable, "-m", "refconv", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("refconv ")


# ----------------------------------------------------------------------------- check: exit statuses and arguments


def _check(argv, capsys):
    code = main(["check", "refconv.oracle", "--dims", "1", "--max-examples", "0", "--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_timeout_inf_is_no_limit_and_nan_is_refused(capsys):
    code, out, err = _check(["--timeout", "inf"], capsys)
    assert code == 0 and out.startswith("PASS"), err
    code, out, err = _check(["--timeout", "nan"], capsys)
    assert code == 2 and err == "refconv check: error: --timeout=nan: must be a number of seconds > 0 (inf: no limit)\n"


def test_check_refuses_an_unwritable_json_path_before_any_work(tmp_path, capsys, monkeypatch):
    from refconv.conformance import engine

    monkeypatch.setattr(engine, "check", lambda *a, **k: pytest.fail("the check ran"))
    code, out, err = _check(["--json", str(tmp_path / "missing" / "r.json")], capsys)
    assert code == 2 and "--json=" in err and "does not exist" in err and len(err.splitlines()) == 1


def test_check_exit_3_when_refconv_fails(capsys, monkeypatch):
    from refconv.commands import check as cmd
    from refconv.conformance.engine import Runner

    monkeypatch.setattr(Runner, "bound", lambda *a, **k: 1 / 0)
    code, out, err = _check([], capsys)
    assert code == 3 and out.startswith("ERROR  refconv.oracle") and "a bug in refconv, not in the target" in out
    monkeypatch.setattr(cmd, "run", lambda args: {}["no such key"])
    code, out, err = _check([], capsys)
    lines = err.splitlines()
    assert code == 3 and lines[0] == ("refconv check: internal error: KeyError: 'no such key' (a bug in refconv; "
                                      "please report it)")
    assert lines[1].startswith("Traceback")


def test_check_status_of_several_verdicts():
    from types import SimpleNamespace

    from refconv.commands.check import status

    def r(v):
        return SimpleNamespace(verdict=v)

    assert status([r("PASS"), r("PASS")]) == 0
    assert status([r("PASS"), r("INCONCLUSIVE")]) == 3 and status([r("ERROR")]) == 3
    assert status([r("ERROR"), r("FAIL")]) == 1  # a proven bug in the target comes first
