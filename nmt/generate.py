"""``python -m nmt.generate``: the command lives in :mod:`nmt.cli.generate`."""

from nmt.cli.generate import main

if __name__ == "__main__":
    raise SystemExit(main())
