"""``python -m nmt.rerank``: the command lives in :mod:`nmt.cli.rerank`."""

from nmt.cli.rerank import main

if __name__ == "__main__":
    raise SystemExit(main())
