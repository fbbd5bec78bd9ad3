"""`python -m printnet` runs the CLI (as the console script does)."""

from printnet.launch import main

main()
