"""``python -m sweeper``: the command line."""

from .cli import main

main()
