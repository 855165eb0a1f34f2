"""Run the CLI as ``python -m textlstm``."""

from textlstm.cli import main

main()
