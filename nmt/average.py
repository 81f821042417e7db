"""``python -m nmt.average``: the command lives in :mod:`nmt.cli.average`."""

from nmt.cli.average import main

if __name__ == "__main__":
    raise SystemExit(main())
