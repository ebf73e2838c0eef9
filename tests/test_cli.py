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
