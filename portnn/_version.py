"""The package version, in one place (imported by the public API and by reports that record it)."""

__version__ = "0.2.0"  # checkpoints: format 3 for every model (docs/reference/checkpoint-format.md)
