"""``python -m nmt.evaluate``: the command lives in :mod:`nmt.cli.evaluate`."""

from nmt.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
