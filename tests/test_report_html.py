"""The HTML report: self-contained, escaped, and its figures render in a real headless browser."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from transcend.errors import TranscendError
from transcend.experiments.registry import scale_base
from transcend.experiments.runner import run_experiment
from transcend.experiments.spec import Experiment
from transcend.report.html import write_report

HOSTILE_PERSON = '<script>alert("person")</script> & Co'
HOSTILE_COUNTRY = "<img src=x onerror=alert(1)>"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    """A tiny experiment on a user's graph whose names are HTML."""
    tmp = tmp_path_factory.mktemp("report")
    lines = []
    for i in range(40):
        name = HOSTILE_PERSON if i == 0 else f"Person{i}"
        lines.append(f"{name}\tcountry of citizenship\t{HOSTILE_COUNTRY if i % 2 == 0 else f'Land{i % 5}'}")
        lines.append(f"{name}\toccupation\tJob{i % 4}")
    (tmp / "triples.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = scale_base("tiny")
    base["world"] = {"triples": str(tmp / "triples.tsv")}
    exp = Experiment("hostile <b>bold & \"q\"", "a description with <i>markup</i> & ampersands", base,
                     {"experts.experts": [1, 3]}, seeds=[0, 1], scale="tiny")
    summary = run_experiment(exp, tmp / "root", progress=False, log=lambda m: None)
    assert summary["ran"] == 4 and not summary["failed"]
    return write_report(exp.name, tmp / "root")


def test_report_is_self_contained_and_escaped(hostile_report):
    page = hostile_report.read_text(encoding="utf-8")
    assert "<script" not in page and "<img src=x" not in page and "<b>bold" not in page and "<i>markup" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the name is shown, as text
    assert "hostile &lt;b&gt;bold &amp; &quot;q&quot;" in page and "&amp; ampersands" in page
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert imgs and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert not re.search(r'(src|href)="(http|//|file:)', page)  # nothing fetched from outside
    runs_table = page[page.index('<table class="runs">'):]
    assert runs_table[:runs_table.index("</table>")].count("<tr>") == 1 + 4  # header + one row per run
    seeds_table = page[page.index('<table class="seeds">'):]
    assert seeds_table[:seeds_table.index("</table>")].count("<tr>") == 1 + 2  # header + one row per grid point
    assert "Tiny scale." in page and "95% t-interval" in page


def test_a_run_folder_the_spec_does_not_list_is_not_one_of_its_seeds(hostile_report):
    """A run left from another config or other code (another run id) beside the spec's runs is left out."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from transcend.report.html import Runs

    exp_dir = hostile_report.parent
    spec = json.loads((exp_dir / "experiment.json").read_text())
    source = exp_dir / spec["runs"][0]["run_id"] / "results.parquet"
    table = pq.read_table(source)
    stale = exp_dir / "000000000000"
    stale.mkdir()
    try:
        pq.write_table(table.set_column(table.schema.get_field_index("run_id"), "run_id",
                                        pa.array(["000000000000"] * table.num_rows)), stale / "results.parquet")
        assert len(Runs(exp_dir, spec)) == 4 and "000000000000" not in Runs(exp_dir, spec).runs
        assert len(Runs(exp_dir, {**spec, "runs": []})) == 5  # a spec without its run list: every folder
    finally:
        shutil.rmtree(stale)


def test_every_figure_is_a_pdf_svg_and_300_dpi_png_beside_the_page(hostile_report):
    from PIL import Image

    page = hostile_report.read_text(encoding="utf-8")
    links = re.findall(r'<a href="(figures/[^"]+)">', page)
    n_figures = page.count("<figure ")
    assert n_figures >= 1 and len(links) == 3 * n_figures
    for link in links:
        path = hostile_report.parent / link
        assert path.is_file() and path.stat().st_size > 1000, link
    pdfs = [link for link in links if link.endswith(".pdf")]
    assert all((hostile_report.parent / p).read_bytes().startswith(b"%PDF") for p in pdfs)
    for link in (link for link in links if link.endswith(".png")):
        with Image.open(hostile_report.parent / link) as im:
            assert round(im.info["dpi"][0]) == 300 and im.width > 1000
    assert sorted(p.name for p in (hostile_report.parent / "figures").iterdir()) == sorted(
        link.split("/")[1] for link in links)  # nothing stale beside them
    assert "&quot;seeds&quot;: [" in page  # the config


def test_report_of_missing_experiment_is_one_sentence(tmp_path):
    with pytest.raises(TranscendError, match="no experiment named 'nope'"):
        write_report("nope", tmp_path)
    with pytest.raises(TranscendError, match="must be a folder name"):
        Experiment("../x", "", scale_base("tiny"))


def test_figures_render_in_headless_chromium(hostile_report, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    # Widths of the page's images and of every linked SVG and PNG file: the files are added as images, so
    # that the load event waits for them too.
    report = hostile_report.read_text(encoding="utf-8")
    links = [f for f in re.findall(r'<a href="(figures/[^"]+)">', report) if f.endswith((".svg", ".png"))]
    probe = "".join(f'<img class="file" src="{f}">' for f in links) + (
        "<script>window.addEventListener('load', () => { const w = i => i.complete ? i.naturalWidth : 0;"
        " const imgs = [...document.images]; const p = document.createElement('pre'); p.id = 'widths';"
        " p.textContent = 'WIDTHS=' + imgs.filter(i => i.className !== 'file').map(w).join(',') + ';FILES='"
        " + imgs.filter(i => i.className === 'file').map(w).join(','); document.body.appendChild(p); });</script>")
    page = hostile_report.parent / "probe.html"  # beside the report, so its relative links resolve
    page.write_text(report.replace("</body>", probe + "</body>"), encoding="utf-8")
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    page.unlink()
    m = re.search(r'<pre id="widths">WIDTHS=([0-9,]*);FILES=([0-9,]*)</pre>', proc.stdout)
    assert m, f"chromium printed no widths; stderr: {proc.stderr[-1500:]}"
    widths = [int(w) for w in m.group(1).split(",") if w]
    file_widths = [int(w) for w in m.group(2).split(",") if w]
    n_imgs = report.count("<img ")
    assert len(widths) == n_imgs >= 1 and len(file_widths) == len(links) == 2 * n_imgs  # an SVG and a PNG each
    assert all(w > 100 for w in widths + file_widths)
    # the hostile names stayed text in the browser's DOM too
    assert "<img src=x" not in proc.stdout and "&lt;img src=x onerror=alert(1)&gt;" in proc.stdout
