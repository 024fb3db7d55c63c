"""Batches by length and the feature cache used in training."""

from __future__ import annotations

import numpy as np
import torch

from gradnap.audio.features import FeatureConfig, features
from gradnap.data.alphabet import Alphabet
from gradnap.data.corpus import Utterance


def length_batches(
    lengths: list[int], max_frames: int, seed: int, epoch: int, max_batch: int = 64
) -> list[list[int]]:
    """Group indices of similar length; each batch's padded size is at most ``max_frames``.

    The order of batches is shuffled with a generator seeded by ``(seed, epoch)``, so the
    plan of any epoch can be recomputed exactly on resume.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches, current = [], []
    for i in order:
        longest = max(lengths[i], *(lengths[j] for j in current)) if current else lengths[i]
        if current and (longest * (len(current) + 1) > max_frames or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng = np.random.default_rng([seed, epoch])
    return [batches[i] for i in rng.permutation(len(batches))]


class FeatureCache:
    """Features of a list of utterances, computed once and kept in memory."""

    def __init__(self, utterances: list[Utterance], config: FeatureConfig, cache: bool = True):
        self.utterances = utterances
        self.config = config
        self.cache = cache
        self._store: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.utterances)

    def frames(self, i: int) -> int:
        u = self.utterances[i]
        return self.config.n_frames(
            int(round(u.num_samples * self.config.sample_rate / u.sample_rate))
        )

    def __getitem__(self, i: int) -> torch.Tensor:
        if i in self._store:
            return self._store[i]
        wav, sr = self.utterances[i].load()
        x = features(wav, sr, self.config)
        if self.cache:
            self._store[i] = x
        return x


def collate(xs: list[torch.Tensor], texts: list[str], alphabet: Alphabet):
    """Pad features to ``(B, n_mels, T_max)`` and concatenate CTC targets."""
    lengths = torch.tensor([x.shape[1] for x in xs])
    batch = torch.zeros(len(xs), xs[0].shape[0], int(lengths.max()))
    for b, x in enumerate(xs):
        batch[b, :, : x.shape[1]] = x
    encoded = [alphabet.encode(t) for t in texts]
    targets = torch.tensor([k for e in encoded for k in e], dtype=torch.long)
    target_lengths = torch.tensor([len(e) for e in encoded])
    return batch, lengths, targets, target_lengths
