"""``python -m parley``: the ``parley`` console script."""

from parley.cli import main

if __name__ == "__main__":
    main(prog_name="parley")
