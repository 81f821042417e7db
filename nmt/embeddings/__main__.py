"""``python -m nmt.embeddings``: the command lives in :mod:`nmt.cli.embeddings`."""

from nmt.cli.embeddings import main

if __name__ == "__main__":
    main()
