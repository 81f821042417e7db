"""Non-neural baselines on the same corpora and splits as the neural models (scikit-learn)."""
