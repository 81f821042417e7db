"""nmt: recurrent encoder-decoder translation and classification with attention."""

__version__ = "0.1.0"
