"""The fine-tune's one-process default (`finetune(…, devices=None)` on one device) is, bit for bit, the loop as it was
before it became data-parallel (commit 0bd2527): the old module is read from git and run beside the current one on
every loss form, so no cached fine-tune, mini reference or loss curve changed with the split."""
import subprocess, sys, types
from dataclasses import asdict
from pathlib import Path
import pytest
import torch
import ddnb.finetune as ft
from ddnb.core import PretrainConfig, seed_everything
from ddnb.data import ImageSet, load_digits_split
from ddnb.generator import mini_dit, tiny_paper_generator

BEFORE = '0bd2527'   # the last commit whose fine-tune loop was one process only
ROOT = Path(__file__).resolve().parents[2]


def _module_at(commit: str):
    "ddnb/finetune.py as of `commit`, loaded as a module of today's package (its relative imports resolve to today's ddnb)."
    try: src = subprocess.run(['git', '-C', str(ROOT), 'show', f'{commit}:ddnb/finetune.py'], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e: pytest.skip(f'no git history with {commit} here ({e})')
    m = types.ModuleType(f'ddnb._finetune_{commit}'); m.__package__ = 'ddnb'; sys.modules[m.__name__] = m
    exec(compile(src, m.__name__, 'exec'), m.__dict__)
    return m


def _weights(gen) -> dict: return {n: p.detach().clone() for n, p in gen.transformer.named_parameters()}


@pytest.mark.xdist_group('b')
def test_one_process_is_the_loop_before_data_parallel():
    old = _module_at(BEFORE)
    seed_everything(0)
    mini = mini_dit(PretrainConfig(num_layers=2, hidden_size=32, num_attention_heads=2)).eval()
    digits = load_digits_split('train').subset(range(41))                      # 41 = 5 batches of 8 and one of 1
    big = tiny_paper_generator(1000, seed=0)                                   # learned Σ: the vb term
    sub = ImageSet(torch.rand(7, 3, 16, 16), torch.tensor([0, 1, 2] * 2 + [0]), ['n02086240', 'n02087394', 'n02111889'])
    cases = [(mini, digits, dict(loss=loss, im_form=form, epochs=2, im_num_steps=4), None)
             for loss, form in (('diffusion', 'paper'), ('im', 'paper'), ('minimax', 'paper'), ('im', 'code'))]
    cases.append((big, sub, asdict(ft.finetune_preset('ims3-official', epochs=2, batch_size=3, ema_decay=0.9)), torch.tensor([193, 182, 258])))
    for gen, real, kw, labels in cases:
        before, log_before = old.finetune(gen, real, old.FinetuneConfig(**kw), 3, False, labels)
        now, log_now = ft.finetune(gen, real, ft.FinetuneConfig(**kw), 3, False, labels)
        assert log_now == log_before, kw
        w_before, w_now = _weights(before), _weights(now)
        assert w_now.keys() == w_before.keys() and all(torch.equal(w_now[n], w_before[n]) for n in w_now), kw


_TUNE = """
import torch
from ddnb.core import PretrainConfig, seed_everything
from ddnb.data import load_digits_split
from ddnb.generator import mini_dit
from ddnb.finetune import FinetuneConfig, finetune
seed_everything(0)
dit = mini_dit(PretrainConfig(num_layers=2, hidden_size=32, num_attention_heads=2)).eval()
fc = FinetuneConfig(loss='minimax', epochs=300, batch_size=8, ema_decay=0.9)   # long enough that the kill lands mid-training on any CPU
tuned, log = finetune(dit, load_digits_split('train').subset(range(41)), fc, show_progress=False, checkpoint={ck!r}, checkpoint_every=0.0)
torch.save({{'weights': {{n: p.detach() for n, p in tuned.transformer.named_parameters()}}, 'log': log}}, {out!r})
"""


@pytest.mark.xdist_group('b')
def test_finetune_killed_mid_training_resumes_to_equal_weights(tmp_path):
    "kill -9 a fine-tune after its first checkpoints; the re-run resumes from the last one and ends with the uninterrupted run's weights and loss log."
    import os, time
    run = lambda ck, out: subprocess.Popen([sys.executable, '-c', _TUNE.format(ck=str(ck), out=str(out))], env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert run(tmp_path/'ck-ref', tmp_path/'ref.pt').wait() == 0
    p, ck = run(tmp_path/'ck', tmp_path/'resumed.pt'), tmp_path/'ck'/ft.FINETUNE_CHECKPOINT_FILE
    t0 = time.time()
    while not ck.exists() and time.time() - t0 < 300: time.sleep(0.05)
    time.sleep(0.5)
    p.kill(); p.wait()
    assert not (tmp_path/'resumed.pt').exists(), 'the fine-tune finished before it was killed'
    saved = torch.load(ck, weights_only=True)['epoch']
    assert 0 < saved < 300
    assert run(tmp_path/'ck', tmp_path/'resumed.pt').wait() == 0
    ref, res = torch.load(tmp_path/'ref.pt', weights_only=True), torch.load(tmp_path/'resumed.pt', weights_only=True)
    assert ref['weights'].keys() == res['weights'].keys() and all(torch.equal(ref['weights'][k], res['weights'][k]) for k in ref['weights'])
    assert ref['log'] == res['log']
