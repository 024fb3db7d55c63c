import torch

from gradnap.train.augment import SpecAugment


def test_masks_are_zero_bands_inside_the_utterance():
    torch.manual_seed(0)
    x = torch.randn(2, 128, 300) + 5.0
    lengths = torch.tensor([300, 200])
    y = SpecAugment(freq_masks=2, freq_width=15, time_width=20, time_every=100)(x.clone(), lengths)
    zero = y == 0
    assert zero.any()
    assert (y[1, :, 200:] == x[1, :, 200:]).all()  # padding untouched
    for b, length in enumerate(lengths.tolist()):
        full_rows = zero[b, :, :length].all(dim=1).sum()
        full_cols = zero[b, :, :length].all(dim=0).sum()
        assert 0 <= full_rows <= 30 and 0 <= full_cols <= 20 * (length // 100)
    changed = y != x
    assert torch.equal(changed, zero)


def test_seeded():
    torch.manual_seed(1)
    a = SpecAugment()(torch.ones(1, 128, 400), torch.tensor([400]))
    torch.manual_seed(1)
    b = SpecAugment()(torch.ones(1, 128, 400), torch.tensor([400]))
    assert torch.equal(a, b)
