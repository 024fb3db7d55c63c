"""``gradnap eval --hyps FILE``: a TSV of utterance id, reference and hypothesis."""

from __future__ import annotations

from typer.testing import CliRunner

from gradnap.audio import FeatureConfig
from gradnap.cli.main import app
from gradnap.data import Alphabet, read_corpus
from gradnap.models import Wav2Letter
from gradnap.models.checkpoint import save_checkpoint


def test_eval_writes_the_hypotheses_it_scored(small_corpus, tmp_path):
    model = save_checkpoint(
        tmp_path / "tiny.pt", Wav2Letter.from_preset("tiny"), Alphabet(), FeatureConfig()
    )
    hyps = tmp_path / "out" / "hyps.tsv"
    args = ["eval", "--model", str(model), "--corpus", str(small_corpus), "--hyps", str(hyps)]
    r = CliRunner().invoke(app, [*args, "--beam-width", "0"])
    assert r.exit_code == 0, r.output
    assert "hypotheses (greedy)" in r.output
    rows = [line.split("\t") for line in hyps.read_text().splitlines()]
    data = read_corpus(small_corpus)
    assert rows[0] == ["id", "reference", "hypothesis"]
    assert [row[:2] for row in rows[1:]] == [[u.id, u.text] for u in data]
    assert all(len(row) == 3 and set(row[2]) <= set(Alphabet().symbols) for row in rows[1:])
