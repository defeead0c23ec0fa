"""The chess experiment: corpus encoding, move model, illegal-move rule, ladder, ideal learner,
analyses, the cached pipeline and its command line.

Sizes are tiny (the ``tiny`` scale: a handful of 40-ply games, a one-layer model, two
rated games per temperature); these tests check behaviour, not chess strength. Tests
that need Stockfish skip when it is absent, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import math

import chess
import chess.pgn
import numpy as np
import pytest
import torch

from transcend.chess.config import ChessConfig
from transcend.cli import main
from transcend.errors import TranscendError
from transcend.chess.analyses import (action_entropy, bootstrap_mean_ci, common_states, favor,
                                      opening_states, visited_state_entropy)
from transcend.chess.ideal import IdealPlayer, Mixture, sharpen
from transcend.chess.rating import Game, Ladder, fit_elo, play_pair, rating_from_games
from transcend.chess.policy import (MAX_RESAMPLES, Forfeit, PolicyPlayer, load_policy, policy_model,
                                            predict_logits, train_policy)
from transcend.config import TrainingConfig
from transcend.chess.corpus import (N_INPUT_TOKENS, N_MOVES, SEQ_LEN, MoveCorpus, build_corpus, encode_board,
                                          legal_tokens, mirror_uci, move_token, move_vocabulary, token_move)
from transcend.chess.engine import Engine, SearchLimit
from transcend.chess.games import Opening, play_game
from transcend.chess.players import MoveScorer, PlayerStyle, RandomMover, SimulatedPlayer


@pytest.fixture(scope="module")
def engine(stockfish_path):
    with Engine(stockfish_path) as eng:
        yield eng


@pytest.fixture(scope="module")
def scorer(engine):
    return MoveScorer(engine, SearchLimit(depth=1))


@pytest.fixture(scope="module")
def random_games():
    rng = np.random.default_rng(0)
    return [play_game(RandomMover("a"), RandomMover("b"), rng, opening=Opening("x", ("e2e4", "e7e5")), max_plies=30)
            for _ in range(4)]


# ------------------------------------------------------------------ corpus
def test_move_vocabulary_and_mirroring():
    vocab = move_vocabulary()
    assert len(vocab) == N_MOVES == 1968 and len(set(vocab)) == 1968
    assert "e2e4" in vocab and "g1f3" in vocab and "a7a8q" in vocab and "b2a1n" in vocab
    assert mirror_uci("e2e4") == "e7e5" and mirror_uci(mirror_uci("g7h8q")) == "g7h8q"


def test_encoding_is_side_to_move_view():
    start = chess.Board()
    after = chess.Board()
    after.push_uci("g1f3")
    mirrored = chess.Board("rnbqkbnr/pppppppp/8/8/8/5N2/PPPPPPPP/RNBQKB1R b KQkq - 1 1").mirror()
    x = encode_board(start)
    assert x.shape == (SEQ_LEN,) and x.max() < N_INPUT_TOKENS
    # Black to move after 1. Nf3 sees the same as White to move after 1... Nf6 (mirrored board)
    assert np.array_equal(encode_board(after), encode_board(mirrored))
    # a Black move round-trips through its (mirrored) token
    for move in after.legal_moves:
        assert token_move(after, move_token(after, move)) == move
    assert len(legal_tokens(after)) == after.legal_moves.count()


def test_build_corpus_leaves_out_opening_and_keeps_legal_targets(random_games, tmp_path):
    corpus = build_corpus(random_games)
    expected = sum(len(g.moves) - g.opening_plies for g in random_games)
    assert len(corpus) == expected
    mask = corpus.legal_mask(np.arange(len(corpus)))
    assert mask[np.arange(len(corpus)), corpus.targets - N_INPUT_TOKENS].all()
    only_a = build_corpus(random_games, players=["a"])
    assert set(only_a.players.tolist()) == {"a"} and 0 < len(only_a) < len(corpus)
    corpus.save(tmp_path / "c.npz")
    again = MoveCorpus.load(tmp_path / "c.npz")
    assert np.array_equal(again.inputs, corpus.inputs) and np.array_equal(again.legal_ids, corpus.legal_ids)
    sub = corpus.subset(np.array([2, 0]))
    assert sub.targets.tolist() == [corpus.targets[2], corpus.targets[0]]
    with pytest.raises(TranscendError, match="does not exist"):
        MoveCorpus.load(tmp_path / "missing.npz")


# ------------------------------------------------------------------ model and the illegal-move rule
class _FixedLogits(torch.nn.Module):
    """A 'model' whose move logits put all mass on a few given move indices."""

    def __init__(self, favourite: list[int]):
        super().__init__()
        self.favourite = favourite

    def forward(self, inputs, draws=None):
        logits = torch.full((inputs.shape[0], N_MOVES), -30.0)
        logits[:, self.favourite] = 10.0
        return logits


def test_full_vocabulary_sampling_resamples_then_forfeits():
    board = chess.Board()
    illegal = move_vocabulary().index("e2e5")  # never legal from the start
    player = PolicyPlayer(_FixedLogits([illegal]), 1.0, name="bad", legal_only=False)
    with pytest.raises(Forfeit, match="forfeits"):
        player.choose_move(board, np.random.default_rng(0))
    assert player.illegal_draws == 1 + MAX_RESAMPLES and player.forfeits == 1
    # a forfeit loses the game, whichever colour the model has
    games = play_pair(PolicyPlayer(_FixedLogits([illegal]), 1.0, name="bad", legal_only=False), RandomMover(), 2, 0,
                      random_plies=0, max_plies=10)
    assert [g.termination for g in games] == ["forfeit", "forfeit"]
    assert all(g.score_for("bad") == 0.0 for g in games)


def test_full_vocabulary_sampling_recovers_after_an_illegal_draw():
    board = chess.Board()
    illegal, legal = move_vocabulary().index("e2e5"), move_vocabulary().index("e2e4")
    player = PolicyPlayer(_FixedLogits([illegal, legal]), 1.0, legal_only=False)
    moves = {player.choose_move(board, np.random.default_rng(s)).uci() for s in range(20)}
    assert moves == {"e2e4"}
    assert 0 < player.illegal_draws < 20 * (1 + MAX_RESAMPLES) and player.forfeits == 0


def test_legal_masking_never_plays_an_illegal_move():
    board = chess.Board()
    player = PolicyPlayer(_FixedLogits([move_vocabulary().index("e2e5")]), 1.0)
    for s in range(10):
        assert player.choose_move(board, np.random.default_rng(s)) in board.legal_moves
    assert player.illegal_draws == 0


@pytest.mark.parametrize("causal", [False, True])
def test_every_move_score_depends_on_every_square(causal):
    """Bidirectional board encoder: changing any one square changes the score of every move (random weights).

    The causal encoder (the earlier model) fails it: a move's score there ignores the squares after both of
    its squares.
    """
    torch.manual_seed(0)
    model = policy_model(1, 2, 32, causal=causal).eval().double()  # float64: tiny changes stay visible
    x = torch.from_numpy(encode_board(chess.Board()).astype(np.int64))[None]
    with torch.no_grad():
        base = model(x)[0]
        unchanged_somewhere = []
        for square in range(64):
            y = x.clone()
            y[0, 2 + square] = (y[0, 2 + square] + 1) % 117  # another square token
            changed = (model(y)[0] - base).abs() > 1e-12
            unchanged_somewhere.append(not bool(changed.all()))
    assert any(unchanged_somewhere) == causal


def test_training_learns_and_resumes_exactly(random_games, tmp_path):
    corpus = build_corpus(random_games)
    cfg = TrainingConfig(steps=12, batch_size=8, lr=3e-3, warmup_steps=2, checkpoint_every=100)
    torch.manual_seed(0)
    full = policy_model(1, 2, 32)
    info = train_policy(full, corpus, cfg, tmp_path / "a", progress=False)
    assert info["steps"] == 12 and np.isfinite(info["losses"]).all()
    torch.manual_seed(0)
    part = policy_model(1, 2, 32)
    train_policy(part, corpus, cfg, tmp_path / "b", progress=False, stop_after=5)
    torch.manual_seed(0)
    resumed = policy_model(1, 2, 32)
    train_policy(resumed, corpus, cfg, tmp_path / "b", progress=False, resume=True)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    loaded = load_policy(tmp_path / "a" / "latest.pt")
    assert np.allclose(predict_logits(loaded, corpus.inputs[:4]), predict_logits(full, corpus.inputs[:4]), atol=1e-5)


def test_training_memorises_a_repeated_choice(tmp_path):
    """Loss on the move token only, over legal moves: one position seen often is learnt."""
    board = chess.Board()
    x = np.stack([encode_board(board)] * 4)
    target = move_token(board, "d2d4")
    legal = legal_tokens(board)
    corpus = MoveCorpus(x, np.full(4, target, dtype=np.int32), np.arange(5, dtype=np.int64) * len(legal),
                        np.array(legal * 4, dtype=np.int16), np.array(["p"] * 4), np.array([board.epd()] * 4),
                        np.zeros(4, dtype=np.int32))
    torch.manual_seed(0)
    model = policy_model(1, 2, 32)
    train_policy(model, corpus, TrainingConfig(steps=60, batch_size=4, lr=1e-2, warmup_steps=1,
                                               checkpoint_every=1000), tmp_path, progress=False)
    player = PolicyPlayer(model, 0.01)
    assert player.choose_move(board, np.random.default_rng(0)).uci() == "d2d4"
    assert player.distribution(board)["d2d4"] > 0.9


# ------------------------------------------------------------------ rating
def test_elo_fit_recovers_known_strengths():
    rng = np.random.default_rng(1)
    truth = {"weak": 1000.0, "mid": 1400.0, "strong": 1900.0, "top": 2200.0}
    names = list(truth)
    games = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            p = 1 / (1 + 10 ** ((truth[b] - truth[a]) / 400))
            for k in range(60):
                s = float(rng.random() < p)
                games.append(Game(a, b, s, 10, "x") if k % 2 else Game(b, a, 1 - s, 10, "x"))
    ratings = fit_elo(names, games)
    assert np.mean([r.rating for r in ratings.values()]) == pytest.approx(1500.0, abs=1e-6)
    est = [ratings[n].rating for n in names]
    assert est == sorted(est)
    centred = np.array(list(truth.values())) - np.mean(list(truth.values()))
    assert np.allclose(np.array(est) - 1500, centred, atol=120)
    assert all(30 < r.rd < 150 for r in ratings.values())
    # a newcomer who beats 'mid' half the time is rated near 'mid'
    newcomer = [Game("new", "mid", float(k % 2), 10, "x") for k in range(80)]
    r = rating_from_games("new", newcomer, Ladder(ratings))
    assert abs(r.rating - ratings["mid"].rating) < 2 * r.rd


def test_ladder_calibration_orders_clearly_different_players(engine, scorer):
    from transcend.chess.rating import calibrate_ladder
    from transcend.chess.players import EnginePlayer

    sharp = SimulatedPlayer("sharp", 3, PlayerStyle(0.005, 0.0), scorer)
    entrants = [RandomMover("random"), sharp, EnginePlayer(engine, 20, 400, name="sf20")]
    ladder = calibrate_ladder(entrants, 4, seed=0, random_plies=0, max_plies=80)
    r = {k: v.rating for k, v in ladder.ratings.items()}
    assert r["random"] < r["sharp"] and r["random"] < r["sf20"]
    assert len(ladder.games) == 12
    assert Ladder.from_dict(json.loads(json.dumps(ladder.to_dict()))).ratings == ladder.ratings


# ------------------------------------------------------------------ ideal learner and analyses
def test_ideal_learner_plays_the_plurality_at_low_temperature(scorer):
    board = chess.Board()
    players = [SimulatedPlayer(f"p{i}", 100 + i, PlayerStyle(0.01, 0.03), scorer) for i in range(5)]
    mix = Mixture(players)
    ucis, f = mix.distribution(board)
    assert f.sum() == pytest.approx(1.0) and len(ucis) == 20
    ideal = IdealPlayer(mix, 0.001)
    assert ideal.choose_move(board, np.random.default_rng(0)).uci() == ucis[int(np.argmax(f))]
    assert sharpen(np.array([0.5, 0.3, 0.2]), 1.0) == pytest.approx([0.5, 0.3, 0.2])
    assert sharpen(np.array([0.5, 0.3, 0.2]), 0.01)[0] > 0.999
    with pytest.raises(TranscendError):
        Mixture([])


def test_favor_and_entropy(scorer, random_games):
    model = _FixedLogits([move_vocabulary().index("e2e4")])
    fens = [chess.Board().fen()] * 3 + [chess.Board("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1").fen()]
    out = favor(model, fens, scorer, 0.001)
    assert out["positions"] == 4 and len(out["values"]) == 4
    assert out["ci95"][0] <= out["mean"] <= out["ci95"][1]
    lo, hi = bootstrap_mean_ci(np.array([1.0, 2.0, 3.0]), 0)
    assert 1.0 <= lo <= 2.0 <= hi <= 3.0
    corpus = build_corpus(random_games)
    states = common_states([corpus], 1)
    assert len(states) > 0
    sharp = Mixture([SimulatedPlayer("s", 1, PlayerStyle(0.001, 0.0), scorer)])
    loose = Mixture([SimulatedPlayer("l", 1, PlayerStyle(5.0, 0.0), scorer)])
    e_sharp, e_loose = action_entropy(sharp, states[:5]), action_entropy(loose, states[:5])
    assert 0 <= e_sharp["normalised_entropy"] < e_loose["normalised_entropy"] <= 1.0 + 1e-9


def test_visited_state_entropy_counts_moves_at_frequent_states():
    board = chess.Board()
    legal = legal_tokens(board)
    moves = [move_token(board, "e2e4"), move_token(board, "d2d4")] * 3  # 50/50 at one state visited 6 times
    corpus = MoveCorpus(np.stack([encode_board(board)] * 6), np.asarray(moves, dtype=np.int32),
                        np.arange(7, dtype=np.int64) * len(legal), np.array(legal * 6, dtype=np.int16),
                        np.array(["p"] * 6), np.array([board.epd()] * 6), np.zeros(6, dtype=np.int32))
    e = visited_state_entropy(corpus, 6)
    assert e["states"] == 1 and e["visits"] == 6
    assert e["normalised_entropy"] == pytest.approx(np.log(2) / np.log(20))
    assert visited_state_entropy(corpus, 7)["states"] == 0


def test_opening_states_are_early_positions_every_corpus_holds(random_games):
    whole, first_two = build_corpus(random_games), build_corpus(random_games[:2])
    early = {f for g in range(2) for f in whole.fens[whole.games == g][:3].tolist()}
    states = opening_states([whole, first_two], plies=3, max_states=100)
    assert set(states) == early and states == sorted(states)  # in both corpora, first 3 chosen plies only
    assert opening_states([whole, first_two], plies=3, max_states=100) == states
    few = opening_states([whole, first_two], plies=3, max_states=2, seed=1)
    assert len(few) == 2 and set(few) <= early
    assert opening_states([whole, build_corpus([])], plies=3, max_states=10) == []


def test_blind_positions_are_player_specific(scorer):
    style = PlayerStyle(0.001, 0.0, blunder_rate=0.5)
    a, b = SimulatedPlayer("a", 1, style, scorer), SimulatedPlayer("b", 2, style, scorer)
    boards = []
    board = chess.Board()
    for uci in ["e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6", "b5a4", "g8f6"]:
        board.push_uci(uci)
        boards.append(board.copy())
    blind_a = [a.is_blind(x) for x in boards]
    assert blind_a == [a.is_blind(x) for x in boards]  # deterministic
    assert blind_a != [b.is_blind(x) for x in boards] or not any(blind_a)
    assert not SimulatedPlayer("c", 1, PlayerStyle(0.001, 0.0), scorer).is_blind(boards[0])
    with pytest.raises(TranscendError):
        PlayerStyle(0.01, 0.0, blunder_rate=1.5)


# ------------------------------------------------------------------ pipeline and command line
def test_pipeline_caches_stages_and_resumes(tmp_path, stockfish_path, capsys):
    from transcend.chess.pipeline import run

    cfg = ChessConfig.for_scale("tiny")
    out = tmp_path / "run"
    assert run(cfg, out, progress=False, stop_after="games") == {}
    ladder_mtime = (out / "ladder.json").stat().st_mtime_ns
    pgn = (out / "games" / "novice.pgn").read_text()
    assert "[Event" in pgn
    metrics = run(cfg, out, progress=False)
    assert (out / "ladder.json").stat().st_mtime_ns == ladder_mtime  # reused, not redone
    assert (out / "games" / "novice.pgn").read_text() == pgn
    for name in ("metrics.json", "results.parquet", "chess_rating_vs_temperature.png", "chess_favor.png",
                 "entropy.json"):
        assert (out / name).is_file(), name
    # default cutoffs: the strongest measured player of each band
    measured = {n: p["measured"] for n, p in metrics["population"]["players"].items()}
    band_best = {b: max(r for n, r in measured.items() if n.startswith(b)) for b in cfg.bands}
    assert [e["cutoff"] for e in metrics["cutoffs"].values()] == sorted({math.ceil(10 * r) / 10
                                                                         for r in band_best.values()})
    first = next(iter(metrics["cutoffs"].values()))
    assert set(first["by_temperature"]) == {"0.01", "1.0"}
    assert first["best_player_rating"] > 0 and first["favor"]["positions"] > 0
    ent = metrics["entropy"]
    assert set(ent["by_band"]) == set(cfg.bands) and set(ent["by_cutoff"]) == set(metrics["cutoffs"])
    # every player is re-rated like the model (fresh games against the ladder, as many as the model's verdict
    # games); the comparator is the maximum of those ratings, the round-robin fit kept beside it
    n_games = max(cfg.rated_games, cfg.verdict_games)
    assert len(list((out / "ratings" / "players").glob("*.json"))) == 2 * cfg.players_per_band
    # the ladder is engines only; the players come from the population rule, measured against that ladder
    ladder = json.loads((out / "ladder.json").read_text())["ratings"]
    assert set(ladder) == {"random", "stockfish-s0-n50-r0.5", "stockfish-s0-n50"}
    population = json.loads((out / "population.json").read_text())
    assert len(population["probes"]) == cfg.calibration_points
    assert all(p["games"] == cfg.calibration_games for p in population["probes"])
    assert [p["band"] for p in population["players"]] == [b for b in cfg.bands for _ in range(cfg.players_per_band)]
    for label, e in metrics["cutoffs"].items():
        members = {n for n, r in measured.items() if r <= e["cutoff"] + 1e-9}
        assert set(e["players_rerated"]) == members == set(e["players"])
        assert all(r["games"] == n_games and r["rd"] > 0 for r in e["players_rerated"].values())
        assert e["best_player_rating"] == max(r["rating"] for r in e["players_rerated"].values())
        assert e["players_rerated"][e["best_player"]]["rating"] == e["best_player_rating"]
        assert e["best_player_rd"] == e["players_rerated"][e["best_player"]]["rd"]
        assert e["best_player_games"] == n_games
        # held out by position: no held-out position occurs in the cutoff's training corpus
        train = MoveCorpus.load(out / "corpus" / f"{label}.npz")
        held = MoveCorpus.load(out / "corpus" / f"{label}.heldout.npz")
        assert len(held) > 0 and not np.isin(held.fens, train.fens).any()
        mp = e["move_prediction"]
        assert 0 <= mp["illegal_mass_full_vocab"] <= 1 and mp["kl_mixture_model"] > -1e-9
        v = metrics["transcends"][label]
        ideal, best = e["ideal"]["0.01"]["rating"], e["best_player_rating"]
        gain_se = np.hypot(e["ideal"]["0.01"]["rd"], e["best_player_rd"])
        if ideal - best > 1.96 * gain_se:
            assert v["gain_recovered"] == pytest.approx((v["model_low"] - best) / (ideal - best))
            assert v["gain_recovered_ci95"][0] < v["gain_recovered_ci95"][1]
        else:
            assert v["gain_recovered"] is None and v["gain_recovered_ci95"] is None
            assert v["gain_recovered_note"].startswith("undefined")
    assert first["best_player_target"] == next(p["target"] for p in population["players"]
                                               if p["name"] == first["best_player"])
    assert set(ent["visited_by_cutoff"]) == set(metrics["cutoffs"]) and set(ent["visited_by_band"]) == set(cfg.bands)
    assert 0 <= first["move_prediction"]["top1_vs_plurality"] <= 1
    # a finished run is returned from its metrics; a different config in the same folder is refused
    assert run(cfg, out, progress=False)["seconds"] == metrics["seconds"]
    capsys.readouterr()
    assert main(["chess", "reproduce", "--scale", "tiny", "--out", str(out), "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for label, e in printed["cutoffs"].items():
        assert set(e["players_rerated"]) == set(e["players"])
        assert e["best_player_rating"] == max(r["rating"] for r in e["players_rerated"].values())
    with pytest.raises(TranscendError, match=r"holds a finished run made with seed = 0 \(now 5\)"):
        run(ChessConfig.for_scale("tiny", seed=5), out, progress=False)
    # an interrupted rating stage (its file missing) is redone from the cached model
    rating_file = next((out / "ratings").glob("*.ideal.json"))
    rating_file.unlink()
    (out / "metrics.json").unlink()
    again = run(cfg, out, progress=False)
    assert rating_file.is_file()
    assert again["cutoffs"].keys() == metrics["cutoffs"].keys()
    from transcend.results.store import read_results

    rows = read_results(out)
    assert {"model_rating", "best_player_rating", "favor_mean", "action_entropy"} <= {r["metric"] for r in rows}
    # the HTML page: every cutoff, its best player, both plots embedded; `chess report` rewrites it
    page = (out / "report.html").read_text()
    assert "Verdict by cutoff" in page and page.count("data:image/png;base64,") == 2
    assert "Population (fixed by the rule" in page and all(name in page for name in measured)
    for label, e in again["cutoffs"].items():
        assert f"cutoff {label}" in page and e["best_player"] in page
    (out / "report.html").unlink()
    assert main(["chess", "report", "--out", str(out)]) == 0
    assert (out / "report.html").read_text() == page


def test_games_do_not_depend_on_the_number_of_workers(tmp_path, stockfish_path, monkeypatch):
    from transcend.chess import pipeline

    monkeypatch.setattr(pipeline, "MATCHES_PER_TASK", 1)  # several tasks even at the tiny scale
    cfg = ChessConfig.for_scale("tiny")
    pgn = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        out.mkdir()
        with pipeline.World(cfg, out) as world:
            ladder = pipeline.stage_ladder(world, out, False, 1)
            pipeline.stage_population(world, ladder, out, False, workers)
            pipeline.stage_games(world, out, False, workers)
        pgn[workers, "population"] = (out / "population.json").read_bytes()
        pgn[workers] = [(out / "games" / f"{b}.pgn").read_bytes() for b in cfg.bands]
        assert json.loads((out / "games" / f"{cfg.bands[0]}.timing.json").read_text())["workers"] == workers
    assert pgn[1] == pgn[2] and json.loads(pgn[1, "population"])["players"] == json.loads(pgn[2, "population"])["players"]
    # the workers' engine scores came back to the run's cache
    assert len(json.loads((tmp_path / "w2" / "scores.json").read_text())["entries"]) > 0


def test_paper_scale_on_cuda_is_a_valid_configuration_and_a_clear_error_without_cuda(tmp_path, capsys):
    cfg = ChessConfig.for_scale("paper", device="cuda")
    assert cfg.device == "cuda" and not cfg.causal and ChessConfig.from_dict(cfg.to_dict()) == cfg
    # the paper model's shape trains through the same code path (on the CPU here)
    torch.manual_seed(0)
    model = policy_model(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.causal)
    board = chess.Board()
    legal = legal_tokens(board)
    corpus = MoveCorpus(np.stack([encode_board(board)] * 2), np.full(2, move_token(board, "e2e4"), dtype=np.int32),
                        np.arange(3, dtype=np.int64) * len(legal), np.array(legal * 2, dtype=np.int16),
                        np.array(["p"] * 2), np.array([board.epd()] * 2), np.zeros(2, dtype=np.int32))
    tcfg = TrainingConfig(steps=2, batch_size=2, lr=cfg.training.lr, warmup_steps=1, checkpoint_every=10)
    info = train_policy(model, corpus, tcfg, tmp_path / "m", device=torch.device("cpu"), progress=False)
    assert info["steps"] == 2 and np.isfinite(info["losses"]).all()
    if not torch.cuda.is_available():
        assert main(["chess", "reproduce", "--scale", "paper", "--device", "cuda", "--out", str(tmp_path / "r"),
                     "--quiet"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_chess_report_of_an_unfinished_run_is_a_clear_error(tmp_path, capsys):
    assert main(["chess", "report", "--out", str(tmp_path)]) == 2
    assert "no finished chess run" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_a_bad_cutoff_is_refused_before_the_games_and_leaves_nothing_to_block_the_corrected_run(
        tmp_path, stockfish_path, capsys, monkeypatch):
    from types import SimpleNamespace as NS

    from transcend.chess.pipeline import resolve_cutoffs, run

    small = dict(games_per_band=2, games_per_pair=1, max_plies=16)  # seconds: what is tested is the folder
    out = tmp_path / "run"
    with pytest.raises(TranscendError, match="cutoff 10 has no players"):
        run(ChessConfig.for_scale("tiny", cutoffs=(10.0,), **small), out, progress=False, workers=1)
    assert not out.exists()  # refused once the players are measured, before any game, leaving nothing
    # above the weakest player but below the second player of every band: no band has a game
    players = [NS(name=n, band=b) for n, b in (("a", "novice"), ("b", "novice"), ("c", "club"), ("d", "club"))]
    ratings = dict(zip("abcd", (1000.0, 1200.0, 1100.0, 1300.0)))
    with pytest.raises(TranscendError, match=r"cutoff 1100 has no games: .* choose cutoffs of at least 1200"):
        resolve_cutoffs(ChessConfig.for_scale("tiny", cutoffs=(1100.0,)), ratings, players)
    assert resolve_cutoffs(ChessConfig.for_scale("tiny", cutoffs=(1200.0,)), ratings, players) == [1200.0]
    # the corrected command runs in the same folder; a failure after the games (here: a new training schedule
    # after the games were played) is corrected there without playing the games again
    cfg = ChessConfig.for_scale("tiny", **small)
    assert run(cfg, out, progress=False, workers=1, stop_after="games") == {}
    pgn = {p.name: p.stat().st_mtime_ns for p in [*(out / "games").glob("*.pgn"), out / "population.json",
                                                   *(out / "ratings" / "players").glob("*.json")]}
    capsys.readouterr()
    later = ChessConfig.for_scale("tiny", cutoffs=(1e4,), training={**cfg.training.__dict__, "lr": 1e-3}, **small)
    assert run(later, out, progress=False, workers=1, stop_after="games") == {}
    assert "keeping its ladder, players and games; cutoffs, training changed" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in [*(out / "games").glob("*.pgn"), out / "population.json",
                                                   *(out / "ratings" / "players").glob("*.json")]} == pgn
    assert ChessConfig.load(out / "config.toml") == later
    # a change the games depend on is refused, naming it
    with pytest.raises(TranscendError, match=r"unfinished run made with games_per_band = 2 \(now 6\)"):
        run(ChessConfig.for_scale("tiny", cutoffs=(1e4,), training=later.training, **{**small, "games_per_band": 6}),
            out, progress=False, workers=1)
    # the same config run by other code (a model or optimizer change): refused, naming it, before any work
    from transcend import config

    real = config.code_digest
    monkeypatch.setattr(config, "code_digest", lambda g: "0" * 12 if g == "chess" else real(g))
    with pytest.raises(TranscendError, match=r"holds a chess run made by other transcend code \(code.chess = "
                                             r"'[0-9a-f]{12}' \(now '000000000000'\)\)"):
        run(later, out, progress=False, workers=1)


def test_bad_engine_path_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["chess", "generate", "--scale", "tiny", "--engine", str(tmp_path / "nope"), "--out", str(out),
                 "--quiet"])
    assert code == 2 and not out.exists()
    assert "No chess engine executable" in capsys.readouterr().err


def test_play_rejects_illegal_fen_and_pgn(tmp_path, capsys):
    assert main(["chess", "play", "--fen", "8/8/8/8/8/8/8/8 w - - 0 1"]) == 2
    assert "not a legal chess position" in capsys.readouterr().err
    bad = tmp_path / "bad.pgn"
    bad.write_text('[Event "x"]\n[Result "*"]\n\n1. e4 e5 2. Ke3 Ke6 3. Qh5 Nf3 *\n')
    assert main(["chess", "play", "--pgn", str(bad)]) == 2
    assert "malformed" in capsys.readouterr().err
    assert main(["chess", "play", "--white", "nobody"]) == 2
    assert "unknown player" in capsys.readouterr().err


def test_play_from_a_fen_prints_a_game(capsys, stockfish_path):
    code = main(["chess", "play", "--fen", "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1", "--white", "stockfish:20:200",
                 "--black", "random", "--json"])
    assert code == 0
    game = json.loads(capsys.readouterr().out)
    assert game["result"] == "1-0" and game["moves"][0] == "a1a8"


def test_config_validation():
    with pytest.raises(TranscendError, match="bands"):
        ChessConfig(bands=("grandmaster",))
    with pytest.raises(TranscendError, match="players_per_band"):
        ChessConfig(players_per_band=1)
    with pytest.raises(TranscendError, match="scale"):
        ChessConfig.for_scale("huge")
    with pytest.raises(TranscendError, match="unknown chess config"):
        ChessConfig.from_dict({"nonsense": 1})
    cfg = ChessConfig.for_scale("small")
    assert ChessConfig.from_dict(cfg.to_dict()) == cfg


def test_verdict_uses_the_fixed_low_temperature_not_the_best_one():
    from transcend.chess.pipeline import transcendence_verdict

    def r(rating, rd=40.0):
        return {"rating": rating, "rd": rd, "low": rating - 2 * rd, "high": rating + 2 * rd}

    entry = {"best_player_rating": 1100.0, "best_player_rd": 40.0,
             "by_temperature": {"0.001": r(1300.0), "0.3": r(1600.0), "1.0": r(900.0)},
             "ideal": {"0.001": r(1500.0)}}
    v = transcendence_verdict(entry, 0.001)
    # the model recovers (1300 - 1100) / (1500 - 1100) of the ideal learner's gain; the interval holds it
    assert v["gain_recovered"] == pytest.approx(0.5) and v["ideal_transcends_low_tau"]
    lo, hi = v["gain_recovered_ci95"]
    assert 0.2 < lo < 0.5 < hi < 0.9
    assert v["low_temperature"] == 0.001 and v["model_low"] == 1300.0 and v["model_tau1"] == 900.0
    assert v["model_low_lower_bound"] == 1220.0 and v["best_player_upper_bound"] == 1180.0
    assert v["transcends_low_tau"] and not v["transcends_tau1"]
    # an ideal learner no better than the best player leaves the fraction undefined, not a wild ratio
    tied = dict(entry, ideal={"0.001": r(1150.0)})
    u = transcendence_verdict(tied, 0.001)
    assert u["gain_recovered"] is None and u["gain_recovered_ci95"] is None
    assert "not above 1.96 standard errors" in u["gain_recovered_note"]
    # τ = 0.3 clears the bar but is not the temperature the verdict was fixed to
    entry["by_temperature"]["0.001"] = r(1250.0)
    v = transcendence_verdict(entry, 0.001)
    assert not v["transcends_low_tau"] and v["rating_above_best_player_low_tau"]
    assert transcendence_verdict(entry, 0.05)["low_temperature"] is None


_SHUFFLE = ["g1f3", "g8f6", "f3g1", "f6g8", "g1f3", "g8f6"]


def test_moves_that_let_a_draw_be_claimed_are_found_valued_as_draws_and_flagged_to_the_model(tmp_path):
    from transcend.chess.games import GameRecord
    from transcend.chess.players import DRAW_VALUE, PlayerStyle, SimulatedPlayer, drawing_moves

    board = chess.Board()
    for uci in _SHUFFLE:
        assert not drawing_moves(board)  # nothing repeats three times before
        board.push_uci(uci)
    # Nf3-g1 now: Black can claim by announcing ...Ng8, the start position a third time
    assert drawing_moves(board) == {"f3g1"}
    assert all((board.push(m), board.can_claim_draw(), board.pop())[1] == (m.uci() == "f3g1")
               for m in list(board.legal_moves))

    class Winning:  # every move keeps a won position, by the engine's (history-blind) judgement
        def winprobs(self, b):
            return {m.uci(): 0.9 for m in b.legal_moves}

    player = SimulatedPlayer("p", 1, PlayerStyle(temperature=0.01, blind_spot_scale=0.0), Winning())
    ucis, values = player.perceived_values(board)
    assert values[ucis.index("f3g1")] == DRAW_VALUE and np.all(np.delete(values, ucis.index("f3g1")) == 0.9)
    assert player.move_distribution(board)["f3g1"] < 1e-6  # a winning player does not repeat

    record = GameRecord(white="a", black="b", result="1/2-1/2", termination="threefold_repetition",
                        moves=_SHUFFLE + ["f3g1"], opening="none", opening_plies=0, start_fen=chess.STARTING_FEN,
                        game=chess.pgn.Game())
    corpus = build_corpus([record])
    draws = corpus.draw_mask(np.arange(len(corpus)))
    assert draws.sum() == 1 and draws[6, move_token(board, "f3g1") - N_INPUT_TOKENS]
    assert np.array_equal(MoveCorpus.load(corpus.save(tmp_path / "c.npz")).legal_draws, corpus.legal_draws)

    torch.manual_seed(0)
    model = policy_model(n_layer=1, n_head=2, n_embd=16)
    with torch.no_grad():
        model.draw_key.normal_()
        model.draw_bias.fill_(-1.0)
    x = torch.from_numpy(corpus.inputs[6:7].astype(np.int64))
    flag = torch.from_numpy(draws[6:7])
    plain, flagged = model(x), model(x, flag)
    assert torch.equal(plain[~flag], flagged[~flag]) and not torch.allclose(plain[flag], flagged[flag])
