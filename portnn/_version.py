"""The package version, in one place (imported by the public API and by reports that record it)."""

__version__ = "0.1.0"
