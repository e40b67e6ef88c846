"""openbai: a self-hosted rebuild of Microsoft's Batch AI."""

__version__ = "0.1.0"

__all__ = ["__version__"]
