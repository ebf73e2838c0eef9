"""``python -m refconv`` runs the ``refconv`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
