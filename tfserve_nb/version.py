"""The package's version: the one place it is written (``pyproject.toml`` reads it, as does
``tfserve_nb.__version__`` and the model server's ``--version``)."""

__version__ = "0.1.0"
