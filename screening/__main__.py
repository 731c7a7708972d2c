"""``python -m screening``: the command line (see :mod:`screening.cli`)."""

from .cli import main

main()
