"""The chess world: a UCI engine (Stockfish), simulated players with blind spots, and games.

The original transcendence experiment (docs/design.md §2, "Chess"): simulated experts of
several strengths generate games; everything is driven by fixed engine budgets
(depth or nodes, never wall-clock time) and explicit seeded generators, so that the
same seed gives the same games.

Modules:
    engine   Stockfish over python-chess's synchronous UCI API, move scoring, win probabilities.
    players  move-choosers: simulated players (the experts), engine ladder players, a random mover.
    games    playing games and matches, adjudication, PGN input/output.
"""
