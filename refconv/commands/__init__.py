"""Subcommands of the ``refconv`` command, one module each (see :mod:`refconv.cli`)."""
