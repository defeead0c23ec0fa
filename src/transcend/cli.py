"""The ``transcend`` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from transcend.config import CorpusConfig, RunConfig, TrainingConfig, TwoHopConfig
from transcend.errors import TranscendError, strict_json

DEMO_OUT = Path("runs/demo")


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_run_options(p: argparse.ArgumentParser, coverage: bool = True) -> None:
    p.add_argument("--experts", type=_whole_number, default=10,
                   help="number of experts (default 10)" if coverage else
                   "number of experts, one per area of expertise (default 10)")
    if coverage:
        p.add_argument("--coverage", type=_number, default=0.4, help="coverage c in [0, 1] (default 0.4)")
    p.add_argument("--preset", default="small", help="world size preset: tiny, small (default), paper")
    p.add_argument("--entities", type=_whole_number, help="number of entities (overrides the preset)")
    p.add_argument("--triples", help="load a graph from a TSV of head, relation, tail")
    p.add_argument("--types", help="TSV of entity, type for --triples")
    p.add_argument("--paragraphs", type=_whole_number, default=CorpusConfig.paragraphs,
                   help=f"paragraphs written in total (default {CorpusConfig.paragraphs})")
    p.add_argument("--steps", type=_whole_number, default=TrainingConfig.steps,
                   help=f"training steps (default {TrainingConfig.steps})")
    p.add_argument("--seed", type=_whole_number, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--config", help="a config.toml to start from (flags given explicitly override it)")
    p.add_argument("--out", help="run folder (default runs/<mode>-<config hash>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--model", help="learner: gpt (the lab's, default), hf:DIR (a local transformers causal LM, "
                                   "fine-tuned) or hf-config:ARCH (e.g. hf-config:gpt2, trained from scratch)")
    p.add_argument("--tokenizer", help="with hf-config:ARCH: a local tokenizer folder (default: the lab's)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to <out>/tensorboard (needs the tensorboard extra)")


def config_from_args(args: argparse.Namespace, mode: str) -> RunConfig:
    base = RunConfig.load(Path(args.config)) if args.config else RunConfig(mode=mode)
    d = base.to_dict()
    d["mode"] = mode
    explicit = getattr(args, "_explicit", set())  # flags typed on the command line override --config
    if not args.config or "seed" in explicit:
        d["seed"] = args.seed
    if not args.config or "device" in explicit:
        d["device"] = args.device
    world = d.setdefault("world", {})
    if not args.config or "preset" in explicit:
        world["preset"] = args.preset
    for key in ("entities", "triples", "types"):
        if getattr(args, key) is not None:
            world[key] = getattr(args, key)
    model = d.setdefault("model", {})
    for key in ("model", "tokenizer"):
        if getattr(args, key, None) is not None:
            model[key] = getattr(args, key)
    experts = d.setdefault("experts", {})
    corpus = d.setdefault("corpus", {})
    training = d.setdefault("training", {})
    for section, key, attr in ((experts, "experts", "experts"), (experts, "coverage", "coverage"),
                               (corpus, "paragraphs", "paragraphs"), (training, "steps", "steps")):
        if hasattr(args, attr) and (not args.config or attr in explicit):
            section[key] = getattr(args, attr)
    if mode == "generalization":
        two_hop = d.setdefault("two_hop", {})
        for key, attr in (("train", "two_hop"), ("repeat", "repeat"), ("validation", "validation"),
                          ("phrasing", "phrasing"), ("two_hop_phrasing", "two_hop_phrasing"), ("cot", "cot")):
            if not args.config or attr in explicit:
                two_hop[key] = getattr(args, attr)
    if mode == "selection":
        if not args.config or "alpha" in explicit:
            experts["alpha"] = args.alpha
        if args.clusters is not None:
            experts["clusters"] = args.clusters
    return RunConfig.from_dict(d)


def _explicit_flags(argv: list[str]) -> set[str]:
    return {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}


def format_generalization_table(m: dict) -> str:
    th, sets = m["two_hop_config"], m["two_hop"]
    cot = "chain of thought" if th["cot"] else "latent (no chain of thought)"
    lines = [f"generalization: {m['experts']} experts (one area each), {m['world']['entities']} entities, "
             f"{th['train']} within-expertise two-hop facts ×{th['repeat']}, phrasing {th['phrasing']} (one-hop) / "
             f"{th['two_hop_phrasing']} (two-hop), {cot}",
             f"one-hop accuracy (greedy)   {m['one_hop_accuracy']:.3f}   (best expert {m['one_hop_best_expert_accuracy']:.3f})",
             f"{'':28}{'model':>9}{'best exp':>9}{'majority':>9}{'r1,r2':>9}{'direct':>9}{'questions':>10}"]
    for key, label in (("train", "two-hop, trained on"), ("within", "within-expertise (held out)"),
                       ("across", "across-expertise (test)")):
        e = sets[key]
        cells = [e.get("model_accuracy"), e.get("best_expert_accuracy"), e.get("majority_relation_baseline"),
                 e.get("relation_pair_baseline"), e.get("direct_connection_baseline")]
        lines.append(f"{label:28}" + "".join(f"{v:9.3f}" if v is not None else f"{'–':>9}" for v in cells)
                     + f"{e['questions']:10d}")
    if "bridge_accuracy" in sets["across"]:
        lines.append(f"bridge named correctly (across): {sets['across']['bridge_accuracy']:.3f}")
    a = sets["across"]
    if a.get("model_accuracy_beyond_priors") is not None:
        lines.append(f"across, questions neither prior answers ({a['beyond_priors_questions']}): "
                     f"model {a['model_accuracy_beyond_priors']:.3f}  (composition, not a prior)")
    if "transcendence_gap" in a:
        lines.append(f"across-expertise gap (model − best expert): {a['transcendence_gap']:+.3f}  "
                     f"95% CI [{a['gap_ci95'][0]:+.3f}, {a['gap_ci95'][1]:+.3f}]")
    a2 = m["appendix_a2"]
    lines.append(f"Appendix A.2: two-hop training facts {a2['train_two_hop_facts']} vs |F1| + κ = "
                 f"{a2['one_hop_facts']} + {a2['kappa_comp']} (composition favoured: {a2['composition_favoured']}); "
                 f"Σ d_in = {a2['sum_in_degree']} vs Σ_i Σ_v d_in·d_out = {a2['sum_within_expert_in_out']}")
    lines.append(f"run folder: {m['run_dir']}  (plot: two_hop_accuracy.png)")
    return "\n".join(lines)


def format_table(m: dict) -> str:
    if m["mode"] == "generalization":
        return format_generalization_table(m)
    taus = list(m["model_accuracy"])
    head = "".join(f"{('greedy' if t == '0' else 'τ=' + t):>9}" for t in taus)
    selection = f"alpha {m['alpha']}, {m['clusters']} clusters, " if "alpha" in m else ""
    lines = [f"{m['mode']}: {m['experts']} experts, coverage {m['coverage']}, {selection}"
             f"{m['world']['entities']} entities, {m['world']['queries']} queries, "
             f"{m['mean_writes_per_query']:.1f} writes per query",
             f"{'':28}{head}",
             f"{'model':28}" + "".join(f"{m['model_accuracy'][t]:9.3f}" for t in taus),
             f"{'ideal learner (corpus)':28}" + "".join(f"{m['ideal_learner_by_temperature'][t]:9.3f}" for t in taus),
             f"{'best expert':28}{m['best_expert_accuracy']:9.3f}",
             f"{'experts, mean':28}{m['expert_mean_accuracy']:9.3f}",
             f"{'theory: ' + ('weighted vote' if 'ceiling' in m else 'majority vote'):28}{m['theory_accuracy']:9.3f}",
             f"{'model / ideal (greedy)':28}{m['model_fraction_of_ideal']:9.3f}",
             f"transcendence gap (model greedy − best expert): {m['transcendence_gap']:+.3f}  "
             f"95% CI [{m['gap_ci95'][0]:+.3f}, {m['gap_ci95'][1]:+.3f}]",
             f"run folder: {m['run_dir']}  (plot: accuracy_vs_temperature.png)"]
    if "ceiling" in m:
        lines[-1:-1] = [
            f"{'ceiling 1-(1-c)^n':28}{m['ceiling']:9.3f}",
            f"{'known by any expert':28}{m['known_by_any']:9.3f}",
            f"{'model / ceiling (greedy)':28}{m['model_fraction_of_ceiling']:9.3f}",
            f"selection covariance Σ_i Cov_x(g(i|x), r_x(f_i)): {m['selection_covariance']:+.3f}"]
    return "\n".join(lines)


def _run(cfg: RunConfig, out: Path, args: argparse.Namespace) -> int:
    from transcend.pipeline import run

    tty = sys.stderr.isatty()
    metrics = run(cfg, out, resume=args.resume, progress=not args.quiet and tty,
                  progress_lines=not args.quiet and not tty, tensorboard=getattr(args, "tensorboard", False))
    if args.json:
        print(strict_json(metrics))
    else:
        print(format_table(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transcend", description="A lab for studying transcendence.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the default denoising experiment (minutes on a laptop)")
    demo.add_argument("--out", default=str(DEMO_OUT), help=f"run folder (default {DEMO_OUT})")
    demo.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    run = sub.add_parser("run", help="run one experiment")
    modes = run.add_subparsers(dest="mode", required=True)
    den = modes.add_parser("denoising", help="skill denoising: experts with independent errors")
    _add_run_options(den)
    sel = modes.add_parser("selection", help="skill selection: specialists who write more about what they know")
    _add_run_options(sel)
    sel.add_argument("--alpha", type=_number, default=1.0,
                     help="alpha in [0, 1]: a fact is written with probability alpha*s + 1 - alpha (default 1)")
    sel.add_argument("--clusters", type=_whole_number,
                     help="areas of expertise (edge clusters); default one per ~10.9 edges, as in the paper")
    gen = modes.add_parser("generalization", help="skill generalization: compose facts that no single expert holds")
    _add_run_options(gen, coverage=False)
    gen.add_argument("--two-hop", dest="two_hop", type=_whole_number, default=TwoHopConfig.train,
                     help=f"within-expertise two-hop facts in the training data (default {TwoHopConfig.train})")
    gen.add_argument("--repeat", type=_whole_number, default=TwoHopConfig.repeat,
                     help="times each two-hop training fact is written (default 1)")
    gen.add_argument("--validation", type=_whole_number, default=TwoHopConfig.validation,
                     help=f"within-expertise two-hop facts held out (default {TwoHopConfig.validation})")
    gen.add_argument("--phrasing", type=_whole_number, default=1,
                     help="one-hop phrasing diversity 1-4: one template, several, rewrites of 1, rewrites of 2")
    gen.add_argument("--two-hop-phrasing", dest="two_hop_phrasing", type=_whole_number, default=1,
                     help="two-hop phrasing diversity 1-4 (same levels)")
    gen.add_argument("--cot", action="store_true",
                     help="chain of thought: two-hop facts as 'What is the r2 of the r1 of a? b ; c'")
    _add_experiment_commands(sub)
    exp = sub.add_parser("export", help="write a lab-trained run as a transformers model folder "
                                        "(safetensors, config.json, tokenizer)")
    exp.add_argument("run_dir", metavar="RUN", help="a finished run folder")
    exp.add_argument("--to", required=True, metavar="DIR", help="the folder to write (must not exist or be empty)")
    from transcend.chess.cli import add_chess_parser  # the chess experiment: `transcend chess ...`

    add_chess_parser(sub)
    _no_abbreviations(parser)
    return parser


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """Turn off argparse's prefix matching on ``parser`` and every subparser: an abbreviated flag such as
    ``--cov`` is an error, not a silent alias (the --config override logic matches full names only)."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _no_abbreviations(child)


def _add_experiment_commands(sub) -> None:
    """reproduce, results, report: named sweeps, the results store, the HTML report."""
    rep = sub.add_parser("reproduce", help="run a named experiment (a sweep): temperature, coverage, selection, "
                                           "generalization, correlation, vote")
    rep.add_argument("name", help="experiment name")
    rep.add_argument("--scale", default="small", help="small (2-core CPU, default), paper (GPU) or tiny (seconds)")
    rep.add_argument("--seeds", type=_whole_number, default=1, help="seeds per grid point (default 1)")
    rep.add_argument("--workers", type=_whole_number, default=1, help="local worker processes (default 1)")
    rep.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster at ADDRESS ('local' starts one)")
    rep.add_argument("--root", default="runs/experiments", help="experiments folder (default runs/experiments)")
    rep.add_argument("--report", action="store_true", help="write the HTML report when done")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    res = sub.add_parser("results", help="query every run's results with SQL (DuckDB; the view is 'results')")
    res.add_argument("--sql", default=None, help="SQL over the view 'results' (default: a summary per experiment)")
    res.add_argument("--root", default="runs", help="folder searched for results.parquet files (default runs)")
    res.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    rpt = sub.add_parser("report", help="write an experiment's self-contained HTML report")
    rpt.add_argument("name", help="experiment name (a folder under --root)")
    rpt.add_argument("--root", default="runs/experiments", help="experiments folder (default runs/experiments)")
    rpt.add_argument("--out", help="HTML file (default <root>/<name>/report.html)")


def _experiment_command(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        from transcend.experiments.registry import get_experiment
        from transcend.experiments.runner import run_experiment

        exp = get_experiment(args.name, args.scale, args.seeds)
        summary = run_experiment(exp, Path(args.root), workers=args.workers, ray_address=args.ray,
                                 progress=not args.quiet and sys.stderr.isatty())
        print(f"{summary['experiment']}: {summary['runs']} runs ({summary['ran']} ran, {summary['skipped']} "
              f"already finished, {len(summary['failed'])} failed) in {summary['dir']}")
        for f in summary["failed"]:
            print(f"  failed: {f}", file=sys.stderr)
        if args.report and not summary["failed"]:
            from transcend.report.html import write_report
            print(f"report: {write_report(args.name, Path(args.root))}")
        return 1 if summary["failed"] else 0
    if args.command == "results":
        from transcend.results.store import format_rows, query

        sql = args.sql or ("SELECT experiment, count(DISTINCT run_id) AS runs, count(*) AS rows "
                           "FROM results GROUP BY experiment ORDER BY experiment")
        cols, rows = query(sql, Path(args.root))
        if args.csv:
            import csv
            w = csv.writer(sys.stdout)
            w.writerow(cols)
            w.writerows(rows)
        else:
            print(format_rows(cols, rows))
        return 0
    from transcend.report.html import write_report

    print(write_report(args.name, Path(args.root), Path(args.out) if args.out else None))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            args.resume = False
            cfg = RunConfig()
            out = Path(args.out)
            if out.exists() and (out / "config.toml").is_file() and not (out / "metrics.json").is_file():
                args.resume = True  # a demo that was interrupted simply continues
            return _run(cfg, out, args)
        if args.command == "export":
            from transcend.learner.hf import export_run

            print(f"exported {args.run_dir} to {export_run(Path(args.run_dir), Path(args.to))}")
            return 0
        if args.command in ("reproduce", "results", "report"):
            return _experiment_command(args)
        if args.command == "chess":
            from transcend.chess.cli import main_chess

            return main_chess(args)
        args._explicit = _explicit_flags(argv)
        cfg = config_from_args(args, args.mode)
        out = Path(args.out) if args.out else Path("runs") / f"{cfg.mode}-{cfg.hash()}"
        return _run(cfg, out, args)
    except TranscendError as e:
        print(f"transcend: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # an unwritable --out, a full disk, an unreadable file
        where = f" {e.filename}" if e.filename else ""
        print(f"transcend: error: cannot read or write{where}: {e.strerror or e}.", file=sys.stderr)
        return 2
    except MemoryError:
        print("transcend: error: ran out of memory; lower the sizes (--paragraphs, --experts, --entities).",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transcend: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
