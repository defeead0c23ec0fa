"""Worlds the experts know about: a typed knowledge graph (and, later, chess)."""
