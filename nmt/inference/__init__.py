"""Trained models in use: the checkpoint format, one loader, Translator, TextGenerator, Classifier."""
