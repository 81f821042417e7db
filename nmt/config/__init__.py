"""The run config: schema and cross-key checks."""
