"""``python -m airfleet``: the same as the ``airfleet`` command."""

from airfleet.cli import main

if __name__ == "__main__":
    main()
