"""Experts: who knows what (a personal, possibly corrupted copy of the world) and who writes what."""
