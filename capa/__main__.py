"""Run the command-line interface as ``python -m capa``."""

from capa.cli.main import main

main()
