"""gdmpo's version, in one place (the package, checkpoints and the CLI read it from here)."""

__version__ = "0.1.0"
