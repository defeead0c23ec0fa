"""The chess world: engine wrapper, simulated players, games and PGN.

Tests that need Stockfish skip when it is absent, except under CI=true, where they
fail (CI installs the engine, so a missing binary there is a real error). Budgets are
tiny (depth 1 or a few hundred nodes) and games short, to stay fast on two cores.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import chess
import chess.engine
import numpy as np
import pytest

from transcend.errors import TranscendError
from transcend.chess.engine import (
    ENGINE_ENV_VAR,
    Engine,
    SearchLimit,
    analysis_fen,
    default_engine_path,
    open_engine,
    win_probability,
)
from transcend.chess.games import (
    EngineAdjudicator,
    MaterialAdjudicator,
    Opening,
    board_from_fen,
    book_openings,
    draw_opening,
    match_score,
    parse_pgn,
    play_game,
    play_match,
    read_pgn,
    record_from_pgn,
    write_pgn,
)
from transcend.chess.players import (
    EnginePlayer,
    MoveChooser,
    MoveScorer,
    PlayerStyle,
    RandomMover,
    ScoreCache,
    SimulatedPlayer,
    hashed_normal,
    material_gain,
    position_key,
)

FAST = SearchLimit(depth=1)
MIDDLEGAME = "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N2N2/PP2BPPP/R2QKB1R w KQ - 0 9"
# After 1. f3 e5: 2. g4?? allows 2... Qh4# (fool's mate).
FOOLS_MATE_SETUP = "rnbqkbnr/pppp1ppp/8/4p3/8/5P2/PPPPP1PP/RNBQKBNR w KQkq - 0 2"
MATE_IN_ONE = "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"  # Ra8#


# ------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(stockfish_path: str) -> Iterator[Engine]:
    with Engine(stockfish_path) as eng:
        yield eng


@pytest.fixture(scope="module")
def scorer(engine: Engine) -> MoveScorer:
    return MoveScorer(engine, FAST)


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


# ------------------------------------------------------------------------------------
# Win probabilities and limits (no engine)
# ------------------------------------------------------------------------------------
def test_win_probability_formula() -> None:
    assert win_probability(chess.engine.Cp(0)) == 0.5
    assert win_probability(chess.engine.Cp(100)) == pytest.approx(0.59104, abs=1e-4)  # Lichess: 59.1%
    for cp in (-900, -120, -5, 30, 400, 2500):
        p = win_probability(chess.engine.Cp(cp))
        assert 0.0 < p < 1.0
        assert p + win_probability(chess.engine.Cp(-cp)) == pytest.approx(1.0)
    values = [win_probability(chess.engine.Cp(cp)) for cp in range(-1000, 1001, 50)]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert win_probability(chess.engine.Mate(3)) == 1.0
    assert win_probability(chess.engine.Mate(-2)) == 0.0
    assert win_probability(chess.engine.Mate(0)) == 0.0  # "mate 0": the side to move is mated
    assert win_probability(chess.engine.MateGiven) == 1.0


def test_search_limit_rejects_time_free_or_bad_budgets() -> None:
    with pytest.raises(TranscendError):
        SearchLimit()
    with pytest.raises(TranscendError):
        SearchLimit(depth=0)
    with pytest.raises(TranscendError):
        SearchLimit(nodes=-5)
    assert SearchLimit(depth=2, nodes=300).key == "d2n300"


def test_analysis_fen_drops_move_number_only() -> None:
    board = board_from_fen(MIDDLEGAME)
    assert analysis_fen(board).endswith(" 0 1")
    assert analysis_fen(board).split()[:5] == MIDDLEGAME.split()[:5]


# ------------------------------------------------------------------------------------
# Engine
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fen", [chess.STARTING_FEN, MIDDLEGAME, "8/P6k/8/8/8/8/6K1/8 w - - 0 1"])
def test_score_moves_covers_all_legal_moves(engine: Engine, fen: str) -> None:
    board = board_from_fen(fen)
    scores = engine.score_moves(board, FAST)
    assert sorted(s.uci for s in scores) == sorted(m.uci() for m in board.legal_moves)
    assert all(0.0 <= s.winprob <= 1.0 for s in scores)
    probs = [s.winprob for s in scores]
    assert probs == sorted(probs, reverse=True)


def test_tiny_node_budget_still_scores_every_move(engine: Engine) -> None:
    # At 50 nodes one multi-PV search reaches only a few of the 20 moves; the rest are filled in.
    scores = engine.score_moves(chess.Board(), SearchLimit(nodes=50))
    assert len(scores) == 20 and len({s.uci for s in scores}) == 20


def test_mate_scores(engine: Engine) -> None:
    scores = engine.score_moves(board_from_fen(MATE_IN_ONE), SearchLimit(depth=2))
    assert scores[0].uci == "a1a8" and scores[0].mate == 1 and scores[0].winprob == 1.0
    assert all(s.winprob < 1.0 for s in scores[1:])
    blunder = {s.uci: s for s in engine.score_moves(board_from_fen(FOOLS_MATE_SETUP), SearchLimit(depth=2))}["g2g4"]
    assert blunder.mate is not None and blunder.mate < 0 and blunder.winprob == 0.0
    assert engine.score_moves(board_from_fen("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"), FAST) == []  # stalemate


def test_engine_results_are_reproducible(engine: Engine, stockfish_path: str) -> None:
    positions = [chess.Board(), board_from_fen(MIDDLEGAME), board_from_fen(FOOLS_MATE_SETUP)]
    limit = SearchLimit(nodes=300)
    first = [engine.score_moves(b, limit) for b in positions]
    # Other searches in between must not change the answers (the engine is cleared per search) ...
    engine.score_moves(board_from_fen(MATE_IN_ONE), SearchLimit(depth=4))
    assert [engine.score_moves(b, limit) for b in reversed(positions)] == first[::-1]
    # ... and a second engine process gives the same answers.
    with Engine(stockfish_path) as other:
        assert [other.score_moves(b, limit) for b in positions] == first
        assert other.best_move(positions[1], limit) == engine.best_move(positions[1], limit)


def test_engine_move_ladder(engine: Engine) -> None:
    board = board_from_fen(MIDDLEGAME)
    best = engine.engine_move(board, 20, 300)
    assert best == engine.engine_move(board, 20, 300) and best in board.legal_moves
    # Emulated skill rule: reproducible with the same generator state, varied across seeds.
    weak = [engine.engine_move(board, 0, 300, np.random.default_rng(seed)) for seed in range(12)]
    assert weak == [engine.engine_move(board, 0, 300, np.random.default_rng(seed)) for seed in range(12)]
    assert all(m in board.legal_moves for m in weak) and len(set(weak)) > 1
    native = engine.engine_move(board, 3, 300)  # Stockfish's own (clock-seeded) skill option
    assert native in board.legal_moves
    with pytest.raises(TranscendError):
        engine.engine_move(board, 21, 300)


def test_unknown_engine_path_is_a_transcend_error(tmp_path, monkeypatch) -> None:
    missing = str(tmp_path / "no-such-stockfish")
    with pytest.raises(TranscendError, match="No chess engine executable"):
        Engine(missing)
    monkeypatch.setenv(ENGINE_ENV_VAR, missing)
    assert default_engine_path() == missing
    with pytest.raises(TranscendError, match=ENGINE_ENV_VAR):
        Engine()
    not_an_engine = tmp_path / "fake-engine"
    not_an_engine.write_text("#!/bin/sh\nexit 0\n")
    not_an_engine.chmod(0o755)
    with pytest.raises(TranscendError, match="did not start as a UCI chess engine"):
        Engine(str(not_an_engine))


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_engine_is_shut_down_after_an_exception(stockfish_path: str, exc_type: type[BaseException]) -> None:
    pid = None
    with pytest.raises(exc_type), Engine(stockfish_path) as eng:
        pid = eng.pid
        assert _alive(pid)
        eng.score_moves(chess.Board(), FAST)
        raise exc_type("boom")
    assert pid is not None and _wait_dead(pid)
    assert eng.closed
    with pytest.raises(TranscendError):
        eng.score_moves(chess.Board(), FAST)
    with pytest.raises(ValueError), open_engine(stockfish_path) as eng2:
        pid2 = eng2.pid
        raise ValueError("boom")
    assert _wait_dead(pid2)


def test_ctrl_c_during_a_search_shuts_the_engine_down(stockfish_path: str) -> None:
    # A real SIGINT (as from Ctrl-C) while the main thread is blocked in a long search
    # (~20 M nodes: bounded, in case the interrupt is lost, but far longer than 0.3 s).
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    pid = None
    # A process started in the background by a non-interactive shell inherits SIGINT as ignored;
    # give it Python's own handler for this test, as an interactive Ctrl-C would find it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), Engine(stockfish_path) as eng:
            pid = eng.pid
            timer.start()
            eng.score_moves(chess.Board(), SearchLimit(nodes=20_000_000))
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert pid is not None and _wait_dead(pid)


# ------------------------------------------------------------------------------------
# Blind spots (no engine)
# ------------------------------------------------------------------------------------
def test_hashed_normal_is_deterministic_and_standard_normal() -> None:
    board = board_from_fen(MIDDLEGAME)
    key = position_key(board)
    assert hashed_normal(7, key, "e2e4") == hashed_normal(7, key, "e2e4")
    samples = np.array([hashed_normal(7, key, f"m{i}") for i in range(4000)])
    assert abs(samples.mean()) < 0.06 and abs(samples.std() - 1.0) < 0.05


def test_blind_spots_are_per_player(scorer: MoveScorer) -> None:
    style = PlayerStyle(0.05, 0.05)
    a, a_again, b = (SimulatedPlayer(n, s, style, scorer) for n, s in (("a", 1), ("a2", 1), ("b", 2)))
    boards = [chess.Board(), board_from_fen(MIDDLEGAME)]
    spots_a = [a.blind_spot(bd, m.uci()) for bd in boards for m in bd.legal_moves]
    spots_a2 = [a_again.blind_spot(bd, m.uci()) for bd in boards for m in bd.legal_moves]
    spots_b = [b.blind_spot(bd, m.uci()) for bd in boards for m in bd.legal_moves]
    assert spots_a == spots_a2  # same seed: the same misjudgements, every time
    assert abs(np.corrcoef(spots_a, spots_b)[0, 1]) < 0.4  # different seeds: different blind spots
    assert a.move_distribution(boards[1]) != b.move_distribution(boards[1])


def test_move_distribution_and_temperature(scorer: MoveScorer) -> None:
    board = board_from_fen(FOOLS_MATE_SETUP)
    sharp = SimulatedPlayer("sharp", 3, PlayerStyle(0.01, 0.0), scorer).move_distribution(board)
    loose = SimulatedPlayer("loose", 3, PlayerStyle(0.3, 0.0), scorer).move_distribution(board)
    assert sum(sharp.values()) == pytest.approx(1.0) and set(sharp) == {m.uci() for m in board.legal_moves}
    best = max(scorer.winprobs(board).items(), key=lambda kv: kv[1])[0]
    assert sharp[best] > loose[best]
    assert sharp["g2g4"] < 1e-6 < loose["g2g4"]  # the mating blunder: only a loose player plays it
    greedy = SimulatedPlayer("greedy", 3, PlayerStyle(0.0, 0.0), scorer)
    assert greedy.choose_move(board, np.random.default_rng(0)).uci() == best
    with pytest.raises(TranscendError):
        PlayerStyle(-1.0, 0.1)


def test_population_rule_places_players_in_their_bands() -> None:
    from transcend.chess.population import (T_LOOSE, T_SHARP, RatingBand, draw_population, fit_curve, probe_specs,
                                            style_for, weakness_for)

    probes = probe_specs(5, seed=3)
    weakness = [p.weakness for p in probes]
    assert weakness == [0.0, 0.25, 0.5, 0.75, 1.0] and len({p.seed for p in probes}) == 5
    # a noisy, non-monotone measurement is made decreasing (the weighted isotonic fit)
    curve = fit_curve(weakness, [2000.0, 1700.0, 1750.0, 1200.0, 600.0], [50.0, 50.0, 50.0, 50.0, 50.0])
    assert curve == pytest.approx([2000.0, 1725.0, 1725.0, 1200.0, 600.0])
    w, clamped = weakness_for(1462.5, weakness, curve)
    assert w == pytest.approx(0.625) and not clamped
    assert weakness_for(3000.0, weakness, curve) == (0.0, True) and weakness_for(100.0, weakness, curve) == (1.0, True)
    bands = [RatingBand("low", (200.0, 400.0)), RatingBand("high", (1000.0, 1200.0))]  # above the floor, 600
    pop = draw_population(bands, 4, weakness, curve, seed=7)
    assert [p.name for p in pop[:2]] == ["low-00", "low-01"] and len({p.seed for p in pop}) == 8
    for band in bands:
        members = [p for p in pop if p.band == band.name]
        targets = [p.target for p in members]
        # stratified: one target in each quarter of the band's range, weaker players blunder more
        assert [int((t - 600.0 - band.target[0]) // 50) for t in targets] == [0, 1, 2, 3]
        assert [p.weakness for p in members] == sorted((p.weakness for p in members), reverse=True)
        assert all(0.01 <= p.blind_spot_scale <= 0.02 and not p.clamped for p in members)
    assert draw_population(bands, 4, weakness, curve, seed=7) == pop
    assert draw_population(bands, 4, weakness, curve, seed=8) != pop
    sharp, loose = style_for(0.0, 0.01), style_for(1.0, 0.01)
    assert (sharp.temperature, loose.temperature) == (T_SHARP, T_LOOSE)
    assert (sharp.blunder_rate, loose.blunder_rate) == (0.0, 1.0) and loose.blunder_kind == "greedy"
    with pytest.raises(TranscendError):
        style_for(1.5, 0.01)
    with pytest.raises(TranscendError):
        PlayerStyle(0.01, 0.01, blunder_kind="wild")


def test_greedy_blind_player_grabs_material_and_ignores_the_reply(scorer: MoveScorer) -> None:
    # White's queen can take a rook defended by a pawn (losing the queen) or retreat
    board = board_from_fen("4k3/8/2p5/3r4/8/8/3Q4/4K3 w - - 0 1")
    assert material_gain(board, chess.Move.from_uci("d2d5")) == 5
    assert material_gain(board_from_fen("4k3/P7/8/8/8/8/8/4K3 w - - 0 1"), chess.Move.from_uci("a7a8q")) == 8
    blind = SimulatedPlayer("b", 1, PlayerStyle(0.005, 0.0, 1.0, 0.05, "greedy"), scorer)
    seeing = SimulatedPlayer("s", 1, PlayerStyle(0.005, 0.0), scorer)
    assert blind.move_distribution(board)["d2d5"] > 0.99
    assert seeing.move_distribution(board)["d2d5"] < 0.01


# ------------------------------------------------------------------------------------
# Games
# ------------------------------------------------------------------------------------
def test_same_seed_same_games(engine: Engine, stockfish_path: str) -> None:
    def games(eng: Engine) -> list[list[str]]:
        scorer = MoveScorer(eng, FAST, ScoreCache())
        white = SimulatedPlayer("w", 11, PlayerStyle(0.05, 0.04), scorer)
        black = SimulatedPlayer("b", 12, PlayerStyle(0.08, 0.06), scorer)
        return [r.moves for r in play_match(white, black, 2, seed=3, max_plies=40)]

    first = games(engine)
    with Engine(stockfish_path) as other:  # a fresh process and a fresh cache
        assert games(other) == first
    assert all(len(moves) > 10 for moves in first)
    scorer = MoveScorer(engine, FAST)
    w = SimulatedPlayer("w", 11, PlayerStyle(0.05, 0.04), scorer)
    b = SimulatedPlayer("b", 12, PlayerStyle(0.08, 0.06), scorer)
    assert [r.moves for r in play_match(w, b, 2, seed=4, max_plies=40)] != first


def test_stronger_player_beats_much_weaker(engine: Engine) -> None:
    scorer = MoveScorer(engine, FAST)
    strong = SimulatedPlayer("strong", 21, PlayerStyle(0.01, 0.01), scorer)
    weak = SimulatedPlayer("weak", 22, PlayerStyle(0.3, 0.15), scorer)
    records = play_match(strong, weak, 6, seed=0, max_plies=80, adjudicate=EngineAdjudicator(engine, FAST))
    assert [r.white for r in records] == ["strong", "weak"] * 3
    assert match_score(records, "strong") >= 4.5, [(r.white, r.result, r.termination) for r in records]
    assert scorer.cache.hits > 0  # shared openings were scored once


def test_engine_player_beats_random_mover(engine: Engine) -> None:
    sf = EnginePlayer(engine, skill_level=20, nodes=200)
    records = play_match(sf, RandomMover(), 2, seed=1, max_plies=120)
    assert match_score(records, sf.name) == 2.0


def test_random_games_openings_colours_and_adjudication() -> None:
    a, b = RandomMover("a"), RandomMover("b")
    records = play_match(a, b, 4, seed=9, max_plies=30)
    again = play_match(a, b, 6, seed=9, max_plies=30)
    assert [r.moves for r in records] == [r.moves for r in again[:4]]  # game i depends on (seed, i) only
    assert [r.white for r in records] == ["a", "b", "a", "b"]
    for first, second in ((records[0], records[1]), (records[2], records[3])):
        n = first.opening_plies
        assert n > 0 and first.opening == second.opening and first.moves[:n] == second.moves[:n]
    for r in records:
        assert r.plies <= 30
        if r.plies == 30 and r.termination == "adjudication":
            assert r.result == MaterialAdjudicator()(r.game.end().board())
    assert all(o.moves for o in book_openings())
    custom = draw_opening(np.random.default_rng(0), book=False, random_plies=3)
    assert len(custom.moves) == 3


def test_material_adjudicator() -> None:
    adjudicate = MaterialAdjudicator(threshold=3)
    assert adjudicate(chess.Board()) == "1/2-1/2"
    assert adjudicate(board_from_fen("4k3/8/8/8/8/8/8/3QK3 w - - 0 1")) == "1-0"
    assert adjudicate(board_from_fen("3rk3/8/8/8/8/8/8/4K3 w - - 0 1")) == "0-1"


def test_pgn_round_trip(tmp_path) -> None:
    records = play_match(RandomMover("x"), RandomMover("y"), 3, seed=2, max_plies=50)
    path = write_pgn(records, tmp_path / "games" / "x.pgn")
    games = read_pgn(path)
    assert len(games) == 3
    for record, game in zip(records, games, strict=True):
        back = record_from_pgn(game)
        assert back.moves == record.moves
        assert (back.white, back.black, back.result) == (record.white, record.black, record.result)
        assert (back.termination, back.opening, back.opening_plies) == (
            record.termination,
            record.opening,
            record.opening_plies,
        )
    assert write_pgn(games, tmp_path / "again.pgn").read_text() == path.read_text()


def test_game_from_fen_is_recorded_in_pgn() -> None:
    fen = "4k3/8/8/8/8/8/4P3/4K3 w - - 0 40"
    record = play_game(RandomMover("x"), RandomMover("y"), np.random.default_rng(0), start_fen=fen, max_plies=6)
    (game,) = parse_pgn(str(record.game))
    assert game.headers["FEN"] == fen and record_from_pgn(game).moves == record.moves


@pytest.mark.parametrize(
    "fen",
    [
        "not a fen",
        "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR x KQkq - 0 1",  # bad side to move
        "rnbq1bnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",  # no black king
        "4k3/4R3/8/8/8/8/8/4K3 w - - 0 1",  # Black in check with White to move
    ],
)
def test_illegal_fen_is_a_transcend_error(fen: str) -> None:
    with pytest.raises(TranscendError):
        board_from_fen(fen)
    with pytest.raises(TranscendError):
        play_game(RandomMover(), RandomMover(), np.random.default_rng(0), start_fen=fen)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "this is not pgn",
        "1. e4 e5 2. Qxh7 *",
        '[FEN "bad fen"]\n\n1. e4 *',
        '[Event "a"]\n\n1. e4 e5 1-0\n\n[Event "b"]\n\n1. e4 Ke7 2. Kd3 *',
    ],
)
def test_malformed_pgn_is_a_transcend_error(tmp_path, text: str) -> None:
    path = tmp_path / "bad.pgn"
    path.write_text(text)
    with pytest.raises(TranscendError):
        read_pgn(path)
    with pytest.raises(TranscendError):
        read_pgn(tmp_path / "missing.pgn")


def test_illegal_opening_is_a_transcend_error() -> None:
    with pytest.raises(TranscendError):
        play_game(RandomMover(), RandomMover(), np.random.default_rng(0), opening=Opening("bad", ("e2e5",)))


def test_score_cache_persists_and_guards_engine(engine: Engine, tmp_path) -> None:
    scorer = MoveScorer(engine, FAST, ScoreCache())
    board = board_from_fen(MIDDLEGAME)
    fresh = scorer.move_scores(board)
    path = tmp_path / "cache.json"
    scorer.cache.save(path)
    loaded = ScoreCache.load(path)
    assert len(loaded) == 1 and loaded.fingerprint == engine.fingerprint
    again = MoveScorer(engine, FAST, loaded)
    assert again.move_scores(board) == fresh and loaded.hits == 1
    foreign = ScoreCache("Some Other Engine 1.0|Threads=1|Hash=1")
    with pytest.raises(TranscendError):
        MoveScorer(engine, FAST, foreign)
    path.write_text("{not json")
    with pytest.raises(TranscendError):
        ScoreCache.load(path)
