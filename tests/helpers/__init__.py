"""Builders the test modules share (rooms, products, catalogs, tiny models)."""
