"""Parley edge on Stream's video network."""
