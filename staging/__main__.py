"""``python -m staging`` runs the CLI."""

from staging.cli import main

main()
