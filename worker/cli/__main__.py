"""``python -m worker.cli``: the same as the ``revintel`` command."""

from worker.cli import app

app()
