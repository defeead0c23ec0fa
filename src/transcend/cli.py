"""The ``transcend`` command."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from transcend import __version__
from transcend.config import RunConfig, default_run_dir
from transcend.errors import TranscendError, strict_json
from transcend.experiments.registry import EXPERIMENTS, SCALES, get_experiment
from transcend.experiments.spec import set_dotted
from transcend.flags import FieldInfo, add_config_flags, commented_toml, field_docs, given_flags

DEMO_OUT = Path("runs/demo")


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return value


def _seeds(text: str) -> int | list[int]:
    """``--seeds``: a count N (seeds 0..N-1) or a comma-separated list of seeds."""
    parts = [p.strip() for p in text.split(",")]
    if "," not in text:
        return _whole_number(text)
    try:
        return [int(p) for p in parts if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a comma list of whole numbers, got {text!r}") \
            from None


#: Short spellings of config fields (kept from before every field had its dotted flag): path -> options.
SHORT_FLAGS: dict[str, list[str]] = {
    "experts.experts": ["--experts"], "experts.coverage": ["--coverage"], "experts.alpha": ["--alpha"],
    "experts.clusters": ["--clusters"], "experts.rho": ["--rho"],
    "world.preset": ["--preset"], "world.entities": ["--entities"], "world.triples": ["--triples"],
    "world.types": ["--types"], "corpus.paragraphs": ["--paragraphs"], "training.steps": ["--steps"],
    "two_hop.train": ["--two-hop"], "two_hop.repeat": ["--repeat"], "two_hop.validation": ["--validation"],
    "two_hop.phrasing": ["--phrasing"], "two_hop.two_hop_phrasing": ["--two-hop-phrasing"], "two_hop.cot": ["--cot"],
    "model.model": ["--model"], "model.tokenizer": ["--tokenizer"],
}
SCALE_HELP = ("the size of the whole experiment (world, corpus, model, training), as in `reproduce --scale`: "
              "tiny (seconds, numbers mean nothing), small (a 2-core CPU) or paper (a GPU); default: the config's "
              "defaults. --preset/--entities size the world alone")


def _applies(info: FieldInfo, mode: str) -> bool:
    """Whether a config field belongs on ``mode``'s command line: its doc (or its section's) says
    "Denoising only", "Selection only" or "Generalization only" for fields of one mode."""
    if info.path == "mode":
        return False
    section_doc = field_docs(RunConfig, inherit=False).get(info.path.split(".")[0], "") if "." in info.path else ""
    for doc in (info.doc, section_doc):
        m = re.match(r"(Denoising|Selection|Generalization) only", doc)
        if m and m.group(1).lower() != mode:
            return False
    return True


def _add_config_options(p: argparse.ArgumentParser, mode: str) -> None:
    """Every config field of ``mode`` as a flag, plus --scale and --config (which the flags override)."""
    dests = add_config_flags(p, RunConfig, RunConfig(mode=mode), aliases=SHORT_FLAGS,
                             skip=lambda info: not _applies(info, mode))
    p.set_defaults(config_dests=dests)
    p.add_argument("--scale", choices=SCALES, help=SCALE_HELP)
    p.add_argument("--config", help="a config.toml to start from (flags given explicitly override it)")


def _add_run_options(p: argparse.ArgumentParser, mode: str) -> None:
    _add_config_options(p, mode)
    p.add_argument("--out", help="run folder (default runs/<mode>-<config hash>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to <out>/tensorboard (needs the tensorboard extra)")


def base_config(mode: str, scale: str | None = None, config: str | None = None) -> dict:
    """The config dict a command starts from: a config file, else a scale, else the defaults of ``mode``."""
    if config and scale:
        raise TranscendError("give --config or --scale, not both (a config file already has its sizes).")
    if config:
        d = RunConfig.load(Path(config)).to_dict()
    elif scale:
        from transcend.experiments.registry import scale_base

        d = RunConfig.from_dict(scale_base(scale, mode)).to_dict()
    else:
        d = RunConfig(mode=mode).to_dict()
    d["mode"] = mode
    return d


def config_from_args(args: argparse.Namespace, mode: str) -> RunConfig:
    """The run's config: the base (--config, --scale or defaults), then every flag given on the command line."""
    d = base_config(mode, getattr(args, "scale", None), getattr(args, "config", None))
    for path, value in given_flags(args, getattr(args, "config_dests", [])).items():
        set_dotted(d, path, value)
    try:
        return RunConfig.from_dict(d)
    except TypeError as e:
        raise TranscendError(f"a config field has the wrong kind: {e}.") from None


def _warn(cfg: RunConfig) -> None:
    for w in cfg.warnings():
        print(f"transcend: warning: {w}", file=sys.stderr)


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
    lines.append(f"run folder: {m['run_dir']}  (plot: two_hop_accuracy.png, .pdf, .svg)")
    return "\n".join(lines)


def _unwritten_line(m: dict) -> list[str]:
    """Where the corpus leaves queries unanswered, the model's and the ideal learner's greedy accuracy on
    the written and the unwritten ones (the ideal learner guesses those from the relation's tails)."""
    split = m.get("by_written") or {}
    w, u = split.get("written"), split.get("unwritten")
    if not u or not u["share"]:
        return []
    return [f"{'greedy, written queries':28}{w['model']:9.3f} model, {w['ideal_learner']:.3f} ideal "
            f"({w['share']:.0%} of queries)",
            f"{'greedy, unwritten queries':28}{u['model']:9.3f} model, {u['ideal_learner']:.3f} ideal "
            f"(its guess from the relation's tails)"]


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
             f"{'best expert (each τ)':28}" + "".join(
                 f"{max(m['expert_accuracies_by_temperature'][t]):9.3f}" for t in taus),
             f"{'best expert (its best τ)':28}{m['best_expert_accuracy']:9.3f}"
             f"   (expert {m['best_expert']} at τ = {m['best_expert_temperature']:g})",
             f"{'experts, mean (best τ each)':28}{m['expert_mean_accuracy']:9.3f}",
             f"{'theory (plurality of writes)':28}" + "".join(f"{m['theory_by_temperature'][t]:9.3f}" for t in taus),
             f"{'model / ideal (greedy)':28}{m['model_fraction_of_ideal']:9.3f}",
             *_fit_line(m),
             *_unwritten_line(m),
             f"transcendence gap (model greedy − best expert): {m['transcendence_gap']:+.3f}  "
             f"95% CI [{m['gap_ci95'][0]:+.3f}, {m['gap_ci95'][1]:+.3f}]",
             f"run folder: {m['run_dir']}  (plot: accuracy_vs_temperature.png, .pdf, .svg)"]
    if "ceiling" in m:
        lines[-1:-1] = [
            f"{'ceiling (known, else guess)':28}{m['ceiling']:9.3f}",
            f"{'theory ceiling 1-(1-c)^n':28}{m['theory_ceiling']:9.3f}",
            f"{'known by any expert':28}{m['known_by_any']:9.3f}",
            f"{'model / ceiling (greedy)':28}{m['model_fraction_of_ceiling']:9.3f}",
            f"selection covariance Σ_i Cov_x(g(i|x), r_x(f_i)): {m['selection_covariance']:+.3f}"]
    return "\n".join(lines)


def _fit_line(m: dict) -> list[str]:
    """The model's fit gap (0: it is its data's mixture; 1: it knows no more than each relation's tails)."""
    if "model_fit_gap" not in m:
        return []
    cycles = m.get("training", {}).get("cycles", 1)
    return [f"{'fit gap (0 = the mixture)':28}{m['model_fit_gap']:9.3f}"
            f"   ({m['training']['steps']} steps in {cycles} cycle{'s' if cycles != 1 else ''})"]


def _run(cfg: RunConfig, out: Path, args: argparse.Namespace, experiment: str = "run") -> int:
    from transcend.api import run

    tty = sys.stderr.isatty()
    metrics = run(cfg, out, experiment=experiment, resume=args.resume, progress=not args.quiet and tty,
                  progress_lines=not args.quiet and not tty, tensorboard=getattr(args, "tensorboard", False))
    if args.json:
        print(strict_json(metrics))
    else:
        print(format_table(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transcend", description="A lab for studying transcendence.",
                                     allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"transcend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the default denoising experiment (minutes on a laptop)", allow_abbrev=False)
    demo.add_argument("--scale", choices=SCALES, help=SCALE_HELP)
    demo.add_argument("--out", default=str(DEMO_OUT), help=f"run folder (default {DEMO_OUT})")
    demo.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    run = sub.add_parser("run", help="run one experiment; every config field is a flag (transcend run MODE --help)",
                         allow_abbrev=False)
    modes = run.add_subparsers(dest="mode", required=True)
    cfg = sub.add_parser("config", help="print a run's complete config as TOML, ready to edit "
                                        "(transcend config denoising > c.toml; run ... --config c.toml)",
                         allow_abbrev=False)
    cfg_modes = cfg.add_subparsers(dest="mode", required=False, metavar="MODE",
                                   help="denoising (default), selection, generalization or chess; "
                                        "the same flags as transcend run MODE (transcend chess reproduce)")
    for mode, text in MODE_HELP.items():
        _add_run_options(modes.add_parser(mode, help=text, allow_abbrev=False), mode)
        _add_config_options(cfg_modes.add_parser(mode, help=text, allow_abbrev=False), mode)
    from transcend.chess.cli import add_chess_config_options

    add_chess_config_options(cfg_modes.add_parser("chess", help="the chess experiment's config (transcend chess "
                                                                "reproduce --config c.toml)", allow_abbrev=False))
    _add_experiment_commands(sub)
    exp = sub.add_parser("export", help="write a lab-trained run as a transformers model folder "
                                        "(safetensors, config.json, tokenizer)", allow_abbrev=False)
    exp.add_argument("run_dir", metavar="RUN", help="a finished run folder")
    exp.add_argument("--to", required=True, metavar="DIR", help="the folder to write (must not exist or be empty)")
    from transcend.chess.cli import add_chess_parser  # the chess experiment: `transcend chess ...`

    add_chess_parser(sub)
    _no_abbreviations(parser)
    return parser


MODE_HELP = {"denoising": "skill denoising: experts with independent errors",
             "selection": "skill selection: specialists who write more about what they know",
             "generalization": "skill generalization: compose facts that no single expert holds"}


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
    listing = "\n".join(f"  {name:15} {get_experiment(name, 'small').description}" for name in EXPERIMENTS)
    rep = sub.add_parser("reproduce", help="run a named experiment (a sweep): " + ", ".join(EXPERIMENTS),
                         description="Run a named experiment: a sweep over the config (grid x seeds), cached and "
                                     "resumable.", epilog="experiments:\n" + listing, allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("name", metavar="NAME", help="experiment name (listed below)")
    rep.add_argument("--scale", default="small",
                     help="small (2-core CPU, default), paper (GPU) or tiny (seconds; its numbers mean nothing)")
    rep.add_argument("--seeds", type=_seeds, default=None,
                     help="seeds of every grid point: a count N (seeds 0..N-1) or a comma list such as 3,4,5 "
                          "(default 3: seeds 0, 1, 2; each changes world, experts, corpus and initialisation)")
    rep.add_argument("--workers", type=_whole_number, default=1, help="local worker processes (default 1)")
    rep.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster at ADDRESS ('local' starts one)")
    rep.add_argument("--root", default="runs/experiments", help="experiments folder (default runs/experiments)")
    rep.add_argument("--report", action="store_true", help="write the HTML report when done")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    res = sub.add_parser("results", help="query every run's results with SQL (DuckDB; tables 'results', one row "
                                         "per number, and 'seeds', each grid point's mean and 95%% interval over "
                                         "seeds)",
                         allow_abbrev=False)
    res.add_argument("--sql", default=None, help="SQL over the tables 'results' and 'seeds' (default: a summary "
                                                 "per experiment)")
    res.add_argument("--root", default="runs", help="folder searched for results.parquet files (default runs)")
    res.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    rpt = sub.add_parser("report", help="write an experiment's HTML report and its figures (PDF, SVG, PNG)",
                         allow_abbrev=False)
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
            cfg = RunConfig.from_dict(base_config("denoising", args.scale))
            out = Path(args.out)
            if out.exists() and (out / "config.toml").is_file() and not (out / "metrics.json").is_file():
                args.resume = True  # a demo that was interrupted simply continues
            return _run(cfg, out, args, experiment="demo")
        if args.command == "config":
            if args.mode == "chess":
                from transcend.chess.cli import config_from_args as chess_config

                print(commented_toml(chess_config(args)), end="")
                return 0
            mode = args.mode or "denoising"
            cfg = config_from_args(args, mode) if args.mode else RunConfig(mode=mode)
            _warn(cfg)
            print(commented_toml(cfg), end="")
            return 0
        if args.command == "export":
            from transcend.learner.hf import export_run

            print(f"exported {args.run_dir} to {export_run(Path(args.run_dir), Path(args.to))}")
            return 0
        if args.command in ("reproduce", "results", "report"):
            return _experiment_command(args)
        if args.command == "chess":
            from transcend.chess.cli import main_chess

            return main_chess(args)
        cfg = config_from_args(args, args.mode)
        out = Path(args.out) if args.out else default_run_dir(cfg)
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
