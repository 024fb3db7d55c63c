"""``gradnap dynamics`` on kept checkpoints: the trajectory, its figures, and the report's
dynamics page."""

import re

import numpy as np
import torch
from typer.testing import CliRunner

from gradnap.audio.features import FeatureConfig
from gradnap.cli.main import app
from gradnap.data.alphabet import Alphabet
from gradnap.models import Wav2Letter
from gradnap.models.checkpoint import DEFAULT_CORPUS, save_checkpoint
from gradnap.profiling import load_profiles
from gradnap.report import ReportOptions, build_report


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_dynamics_command_figures_and_report_page(tmp_path):
    folder = tmp_path / "run.pt.steps"
    for k, step in enumerate((2, 20, 200)):
        torch.manual_seed(k)
        model = Wav2Letter.from_preset("tiny")
        with torch.no_grad():
            dict(model.layers())["conv11"].conv.conv.weight.mul_(20)
        info = {"step": step, "epoch": step / 100, "dev_cer": 0.9 - 0.3 * k}
        save_checkpoint(folder / f"step-{step:07d}.pt", model, Alphabet(), FeatureConfig(),
                        extra={"trajectory": info})  # fmt: skip
    out, figs = tmp_path / "traj.nc", tmp_path / "figs"
    r = invoke(
        "dynamics", "--checkpoints", folder, "--out", out, "--corpus", DEFAULT_CORPUS / "test",
        "--limit", 2, "--layers", "conv8,conv9", "--min-count", 1, "--figures", figs,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "mean Silhouette score of phonemes" in r.output and "settling step" in r.output
    traj = load_profiles(out)
    assert list(traj["step"].values) == [2, 20, 200]
    np.testing.assert_allclose(traj["dev_cer"].values, [0.9, 0.6, 0.3])
    for stem in ("silhouette_over_training", "settling_step"):
        assert (figs / f"{stem}.png").is_file() and (figs / f"{stem}.svg").is_file(), stem
    # the report of a trajectory: the final step's layer pages and a dynamics page
    build_report(traj, tmp_path / "report", None, options=ReportOptions(min_count=1),
                 progress=False)  # fmt: skip
    index = (tmp_path / "report" / "index.html").read_text()
    assert 'href="dynamics.html"' in index
    page = (tmp_path / "report" / "dynamics.html").read_text()
    assert "GradNAPs across training" in page and "each checkpoint's own predictions" in page
    for ref in re.findall(r'src="([^"]+)"', page):
        assert (tmp_path / "report" / ref).is_file(), ref
    assert page.count("<tr><td>2</td>") == 1 and "30.0" in page  # step 200: CER 30 %
