"""``python -m app.cli``: the same commands as the ``bertscope`` script."""

from app.cli import main

main()
