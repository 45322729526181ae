"""``python -m cli`` runs the ``mechanism`` console script."""
from cli.main import main

main()
