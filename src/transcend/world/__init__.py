"""Worlds the experts know about: a typed knowledge graph (chess is its own package, `transcend.chess`)."""
