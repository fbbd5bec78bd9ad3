"""`python -m printnet` runs the CLI."""

from printnet.cli import main

main()
