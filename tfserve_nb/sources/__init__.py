"""Sources: what watches storage and emits aspired versions."""
