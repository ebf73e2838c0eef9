"""``python -m refconv`` runs the ``refconv`` command."""

from .cli import main

raise SystemExit(main())
