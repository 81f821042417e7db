"""Whole networks (nn.Module): seq2seq, classifiers, language models, the biLM."""
