"""The machinery around a Lightning training run: building the Trainer, checkpoints that
survive a kill, exact resume, divergence handling, progress lines. Tasks (what is trained)
live in :mod:`nmt.tasks`; this package is how they are trained."""
