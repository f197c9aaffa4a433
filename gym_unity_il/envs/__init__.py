"""Gymnasium and SB3 environments over the link."""
