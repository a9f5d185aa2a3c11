"""`python -m saikika.tooling.cli`, as the `saikika` console script."""

from saikika.tooling.cli import main

main()
