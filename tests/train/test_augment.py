import torch

from gradnap.train.augment import SpecAugment


def test_masks_are_zero_bands_inside_the_utterance():
    x = torch.randn(2, 128, 300) + 5.0
    lengths = torch.tensor([300, 200])
    aug = SpecAugment(freq_masks=2, freq_width=15, time_width=20, time_every=100)
    rows, cols = {0: [], 1: []}, {0: [], 1: []}
    for seed in range(20):
        torch.manual_seed(seed)
        y = aug(x.clone(), lengths)
        zero = y == 0
        assert (y[1, :, 200:] == x[1, :, 200:]).all()  # padding untouched
        assert torch.equal(y != x, zero)  # only zeros are written
        for b, length in enumerate(lengths.tolist()):
            rows[b].append(int(zero[b, :, :length].all(dim=1).sum()))
            cols[b].append(int(zero[b, :, :length].all(dim=0).sum()))
    for b, length in enumerate(lengths.tolist()):
        # at most 2 bands of 15 bins, one band of up to 20 frames per 100; and they happen
        assert 0 < max(rows[b]) <= 30 and min(rows[b]) >= 0
        assert 0 < max(cols[b]) <= 20 * (length // 100)
    none = SpecAugment(freq_width=0, time_width=0)
    assert torch.equal(none(x.clone(), lengths), x)


def test_seeded():
    torch.manual_seed(1)
    a = SpecAugment()(torch.ones(1, 128, 400), torch.tensor([400]))
    torch.manual_seed(1)
    b = SpecAugment()(torch.ones(1, 128, 400), torch.tensor([400]))
    assert torch.equal(a, b)
