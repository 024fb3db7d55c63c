"""Run a model over a corpus and score it: CER/WER for greedy and beam decoding."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from gradnap.audio.features import FeatureConfig, features
from gradnap.data.alphabet import Alphabet
from gradnap.data.corpus import Utterance
from gradnap.decode.ctc import BeamSearchDecoder, greedy_decode
from gradnap.decode.metrics import error_rates


@torch.no_grad()
def log_probs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(T_out, K)`` log-probabilities for one utterance's ``(n_mels, T)`` features."""
    device = next(model.parameters()).device
    logits = model(x.unsqueeze(0).to(device))[0]
    return torch.log_softmax(logits.float(), dim=0).T.cpu()


@dataclass
class Evaluation:
    """Transcripts and error rates of one evaluation run."""

    references: dict[str, str]
    speakers: dict[str, str]
    hypotheses: dict[str, dict[str, str]] = field(default_factory=dict)  # decoder -> id -> text

    def scores(self, by_speaker: bool = False) -> dict:
        """``{decoder: {"cer", "wer"}}``, or ``{decoder: {speaker: {...}}}`` by speaker."""
        out = {}
        for decoder, hyps in self.hypotheses.items():
            if not by_speaker:
                ids = list(self.references)
                out[decoder] = error_rates(
                    [self.references[i] for i in ids], [hyps[i] for i in ids]
                )
                continue
            groups = defaultdict(list)
            for uid, spk in self.speakers.items():
                groups[spk].append(uid)
            out[decoder] = {
                spk: error_rates([self.references[i] for i in ids], [hyps[i] for i in ids])
                for spk, ids in sorted(groups.items())
            }
        return out


def evaluate(
    model: torch.nn.Module,
    utterances: list[Utterance],
    alphabet: Alphabet,
    feature_config: FeatureConfig,
    beam_width: int | None = 32,
    progress: bool = True,
) -> Evaluation:
    """Decode every utterance greedily and, unless ``beam_width`` is None, with beam search."""
    was_training = model.training
    model.eval()
    beam = BeamSearchDecoder(alphabet, beam_width) if beam_width else None
    ev = Evaluation({u.id: u.text for u in utterances}, {u.id: u.speaker for u in utterances})
    ev.hypotheses["greedy"] = {}
    if beam:
        ev.hypotheses["beam"] = {}
    for utt in tqdm(utterances, desc="decoding", unit="utt", disable=not progress, leave=False):
        wav, sr = utt.load()
        lp = log_probs(model, features(wav, sr, feature_config))
        ev.hypotheses["greedy"][utt.id] = greedy_decode(lp, alphabet)
        if beam:
            ev.hypotheses["beam"][utt.id] = beam.decode(lp)
    model.train(was_training)
    return ev


@torch.no_grad()
def evaluate_spec(spec, utterances: list[Utterance], progress: bool = True) -> Evaluation:
    """Greedy CTC decoding of a :class:`gradnap.ModelSpec` (e.g. a saved Hugging Face
    ``*ForCTC`` model) over its own labels and front end; references and hypotheses are
    lowercased (vocabularies are often upper case), so the scores ignore case."""
    from gradnap.decode.ctc import greedy_decode_labels

    spec.model.eval()
    device = next(spec.model.parameters()).device
    ev = Evaluation(
        {u.id: u.text.lower() for u in utterances}, {u.id: u.speaker for u in utterances}
    )
    ev.hypotheses["greedy"] = {}
    for utt in tqdm(utterances, desc="decoding", unit="utt", disable=not progress, leave=False):
        wav, sr = utt.load()
        x = spec.front_end(wav, sr)[None].to(device, torch.float32)
        logits = spec.forward_with_activations(x)[0][0]  # (classes, T_out)
        text = greedy_decode_labels(logits.T.float().cpu(), spec.labels, spec.blank)
        ev.hypotheses["greedy"][utt.id] = text.lower()
    return ev
