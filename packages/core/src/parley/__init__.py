"""Parley: real-time voice and video AI agents."""

__version__ = "0.1.0"
