"""Quality bars of the mini generator that need a trained model (a short, seconds-to-a-minute budget)."""
import pytest
import torch
from ddnb.core import PretrainConfig
from ddnb.data import load_digits_split
from ddnb.pretrain import train_mini_dit
from ddnb.ddim import reconstruct, psnr


@pytest.mark.xdist_group('b')
def test_invert_regenerate_psnr_at_50_steps():
    """Invert → regenerate on the trained mini DiT reaches ≥ 30 dB at 50 DDIM steps.

    Trained for 150 steps of the default architecture here (the full 1500-step model's figure is in reports/mini/)."""
    train, test = load_digits_split('train'), load_digits_split('test')
    gen, log = train_mini_dit(train, PretrainConfig(steps=150), seed=0, show_progress=False)
    assert log[-1][1] < log[0][1]                      # it did train
    x, y = test.x[:100], test.y[:100]
    rec = reconstruct(gen, x, y, num_steps=50)
    assert psnr(rec, x) >= 30.0, psnr(rec, x)
    # partial inversion (half the steps) is at least as faithful as the full one
    assert psnr(reconstruct(gen, x, y, num_steps=50, to_step=25), x) >= psnr(rec, x) - 0.5
