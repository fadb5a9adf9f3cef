"""``python -m limner`` is the ``limner`` command."""

from limner.cli import app

app()
