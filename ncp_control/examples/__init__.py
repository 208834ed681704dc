"""Small self-contained examples that use the cells (each has a thin command line in ``scripts/``)."""
