"""Serving backends: what runs the model server. One module each behind :mod:`.base`."""
