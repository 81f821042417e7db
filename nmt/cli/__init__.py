"""Commands: each parses its arguments and calls the library; `python -m nmt.X` and the console scripts point here."""
