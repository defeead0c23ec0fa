"""The chess experiment in one package: Stockfish, simulated players, games, the move model, ratings.

The original transcendence experiment (docs/design.md §2, "Chess"): simulated experts of
several strengths generate games; a move model is trained on the games of players up to a
rating cutoff and rated against a calibrated ladder. Everything is driven by fixed engine
budgets (depth or nodes, never wall-clock time) and explicit seeded generators, so that the
same seed gives the same games. It shares the graph world's training loop
(``learner/train.optimize``), interval statistics (``evaluate/stats``), page style
(``report/html``) and results store (``results/store``).

Modules, in pipeline order:
    engine    Stockfish over python-chess's synchronous UCI API, move scoring, win probabilities.
    players   move-choosers: simulated players (the experts), engine ladder players, a random mover.
    config    the typed ChessConfig, the strength bands and the named scales.
    games     playing games and matches, adjudication, PGN input/output.
    corpus    board encoding (66 tokens) and a cutoff's move corpus.
    policy    the move model (the lab's transformer blocks + a square-pair move head), training, sampling.
    ideal     the ideal learner: the exact mixture of a cutoff's players.
    rating    the ladder (round-robin Elo) and rating a player with one Glicko-2 period.
    glicko2   Glickman's Glicko-2.
    analyses  action entropy, the favor of low temperature, move prediction on held-out positions.
    pipeline  the cached stages of ``transcend chess``.
    cli       ``transcend chess ...``.
    report    the run's HTML page; plot: its figures.
"""
