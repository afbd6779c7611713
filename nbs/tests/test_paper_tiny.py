"""The paper world through the grid: every registered paper artefact runs on the tiny paper world (`--profile paper-tiny`),
and `--profile paper` without its inputs names each missing one before any work."""
import pytest
import json, os, shutil, subprocess, sys
from pathlib import Path
from ddnb.artefacts import ARTEFACTS
from ddnb.data import class_list
from ddnb.report import load_results
from ddnb.grid import grid_for, world_inputs


def _ddnb(*args, cache, check=True):
    env = dict(os.environ, DDNB_CACHE=str(cache), OMP_NUM_THREADS='1', DDNB_PROGRESS='0')
    r = subprocess.run([sys.executable, '-m', 'ddnb.cli', *args], env=env, capture_output=True, text=True)
    if check: assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    return r


@pytest.mark.xdist_group('a')
def test_paper_tiny_grid(tmp_path):
    """Every paper-tiny cell runs on the paper-world path: ImageNet class names and 3×16×16 images in every result and
    distilled set, one report section per artefact, and no mini-world object (digits DiT, digits CNN) built."""
    cache, reports = tmp_path/'cache', tmp_path/'reports'
    r = _ddnb('reproduce', '--profile', 'paper-tiny', '--reports-dir', str(reports), cache=cache)
    cells = {c.name for c in grid_for('paper-tiny', inputs=world_inputs('paper-tiny', cache))}
    results = load_results('paper-tiny', reports)
    assert set(results) == cells and len(cells) >= 10, r.stdout[-3000:]
    for name, res in results.items():
        wi = res['world_info']
        assert wi['world'] == 'paper' and wi['classes'] == class_list(res['dataset'])[:10], name
        assert wi['image_shape'] == [3, 16, 16], name
        assert res['rows'] and all(row['dataset'] == res['dataset'] and 0 <= row['top1'] <= 100 for row in res['rows']), name
    manifests = list((reports/'paper-tiny'/'distilled').rglob('manifest.json'))
    assert manifests
    for m in manifests:
        man = json.loads(m.read_text())
        ds = m.relative_to(reports/'paper-tiny'/'distilled').parts[0]
        assert man['classes'] == class_list(ds)[:10] and man['image_shape'] == [3, 16, 16], m
    assert not (cache/'pretrain').exists() and not (cache/'real_classifier').exists()   # the mini world was never touched
    readme = (reports/'paper-tiny'/'README.md').read_text()
    not_drawn = readme[readme.index('## Not drawn'):readme.index('## Cost per method')] if '## Not drawn' in readme else ''
    for key in ARTEFACTS:   # each artefact has its section (the renderer names its key) or is listed, with its note, as not drawn
        assert (f'Artefact `{key}`.' in readme) != (f'- `{key}`' in not_drawn), key
    assert sum(f'Artefact `{key}`.' in readme for key in ARTEFACTS) >= len(ARTEFACTS) - 8, not_drawn   # today 8 need what ddnb does not carry
    assert 'its accuracies are meaningless' in readme and 'not carried' in readme
    assert (reports/'paper-tiny'/'figures'/'artefacts'/'ims3-fig3.png').exists()
    # the guided samplers ran in the paper world through the registry, with the official scripts' DDPM sampler as base
    woof = results['imagewoof-ims3']
    assert {'DMGD', 'IGDS (reconstruction)', 'DDPM'} <= {row['method'] for row in woof['rows']}
    assert woof['sampler'] == 'ddpm' and woof['sampler_opts'] == {'guided_channels': 3}
    assert '## IGDS (reconstruction: no paper numbers)' in readme
    # paper-tiny runs two cells at a time (`jobs=2`): some cell started before another one finished
    from ddnb.journal import Journal
    spans = sorted((rec['started'], rec['finished']) for rec in (Journal(cache, reports/'paper-tiny').get(c) for c in cells))
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans
    # the grid ran on 2 Dask worker processes over TCP; every row is a unit computed by one of them
    rows = [r for res in results.values() for r in res['rows']]
    assert all(r['unit'] and r['worker'].startswith('tcp://127.0.0.1:') for r in rows)
    by_unit = {}
    for r in rows: by_unit.setdefault(r['unit'], set()).add(r['top1'])
    assert all(len(v) == 1 for v in by_unit.values())                         # one number per unit across every artefact
    # the same cells in this process without an engine (stages copied, unit store empty): the same units, the same numbers
    from ddnb.runner import run_cell
    shutil.copytree(cache, tmp_path/'cache-in-process', ignore=shutil.ignore_patterns('units', 'journal'))
    cells_by_name = {c.name: c for c in grid_for('paper-tiny', inputs=world_inputs('paper-tiny', cache))}
    again = sorted(n for n, c in cells_by_name.items() if c.notebook == 'baselines.ipynb')[:2]
    assert again
    for name in again:
        st = run_cell(cells_by_name[name], tmp_path/'in-process'/'paper-tiny', str(tmp_path/'cache-in-process'), 'paper-tiny')
        assert st['status'] == 'ok', st
        here = json.loads((tmp_path/'in-process'/'paper-tiny'/'results'/f'{name}.json').read_text())['rows']
        assert all(r['worker'] == 'in-process' for r in here)
        assert {r['unit']: r['top1'] for r in here} == {r['unit']: r['top1'] for r in results[name]['rows']}, name


@pytest.mark.xdist_group('b')
def test_paper_profile_without_inputs_fails_before_any_work(tmp_path):
    r = _ddnb('reproduce', '--profile', 'paper', '--only', 'ims3/table4', '--reports-dir', str(tmp_path/'reports'),
              cache=tmp_path/'cache', check=False)
    assert r.returncode == 2, r.stdout + r.stderr
    for what in ('data_root is not set', 'model_dir is not set', '--feature-weights', '--teacher-weights', 'huggingface-cli download'):
        assert what in r.stderr, (what, r.stderr)
    assert not (tmp_path/'reports').exists()
    r = _ddnb('reproduce', '--profile', 'paper', '--only', 'ims3/table4', '--data-root', str(tmp_path/'nowhere'), '--plan',
              '--reports-dir', str(tmp_path/'reports'), cache=tmp_path/'cache')
    assert 'ims3-table4@imagewoof-ims3' in r.stdout and 'DiT forwards' in r.stdout and f"{tmp_path/'nowhere'} does not exist" in r.stdout
