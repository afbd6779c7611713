"""End-to-end checks of the reproduction grid (papermill), in both worlds, on seconds-long budgets."""
import json
import pytest
import torch
from ddnb.cli import main
from ddnb.report import load_results, freeze_reference, write_reports
from ddnb.grid import GridCell, grid_for
from ddnb.plan import plan_grid
from ddnb.journal import Journal
from ddnb.runner import run_grid
from ddnb.data import write_fake_imagenet, class_list
from ddnb.generator import tiny_paper_generator, save_generator


@pytest.mark.xdist_group('b')
def test_smoke_grid_runs_and_resumes(tmp_path):
    reports, cache = tmp_path/'reports', tmp_path/'cache'
    assert main(['reproduce', '--profile', 'smoke', '--reports-dir', str(reports), '--cache-dir', str(cache)]) == 0
    out = reports/'smoke'
    res = json.loads((out/'results'/'foundation.json').read_text())
    assert res['profile'] == 'smoke' and res['seed'] == 0
    assert res['pretrain']['steps'] == 40 and not res['pretrain']['cached']
    assert len(res['quality_gate']) == 2 and all(0 <= g['recognition'] <= 1 for g in res['quality_gate'])
    assert res['reconstruction'][0]['n'] == 20 and res['reconstruction'][0]['psnr'] > 0
    for fig in ('samples.png', 'quality_gate.png', 'reconstruction.png', 'pretrain_loss.png'):
        assert (out/'figures'/fig).read_bytes()[:4] == b'\x89PNG'
    assert (out/'notebooks'/'foundation.ipynb').exists()
    readme = (out/'README.md').read_text()
    assert 'Quality gate' in readme and 'PSNR' in readme and 'profile `smoke`' in readme
    # baselines: one cell per method, rows per (IPC, recipe, seed), the key results' table with mean ± std and a figure
    for m in ('Random', 'Herding', 'K-Center', 'DiT', 'DiT+CFG', 'Full'):
        b = json.loads((out/'results'/f'baseline-{m}.json').read_text())
        assert {r['recipe'] for r in b['rows']} == {'mini-hard@2ep', 'mini-soft@2ep'}
        assert len(b['rows']) == (4 if m == 'Full' else 8) and all(0 <= r['top1'] <= 100 for r in b['rows'])
    assert (out/'distilled'/'Herding'/'ipc2'/'manifest.json').exists()
    assert (out/'figures'/'methods_vs_ipc.png').exists() and 'Random' in (out/'baselines.csv').read_text()
    assert '| generative | DiT+CFG |' in readme and 'seeds [0, 1]' in readme
    # D3HR main study: four variants next to the baselines, statistics diagnostics, the latent PCA figure
    d = json.loads((out/'results'/'d3hr-main.json').read_text())
    assert {r['method'] for r in d['rows']} == {'D3HR', 'Base-DDPM', 'Base-RS', 'Pixel-Gaussian'}
    assert d['diagnostics']['D3HR']['mean_sigma'] > 0 and (out/'figures'/'d3hr_latents_pca.png').exists()
    assert '| D3HR |' in readme and r'mean \|skewness\|' in readme   # '|' in a header is escaped (GFM)
    assert (out/'distilled'/'D3HR'/'ipc1'/'manifest.json').exists()
    # IMS3 ablation: five methods, runtime rows, the paper's Table 4 beside (labelled as another world)
    t4 = json.loads((out/'results'/'ims3-table4.json').read_text())
    assert {r['method'] for r in t4['rows']} == {'DiT', 'DiT+IM', 'DiT+S3', 'IMS3', 'Minimax'}
    assert {r['method'] for r in t4['runtime']} == {'DiT', 'DiT+IM', 'DiT+S3', 'IMS3', 'Minimax'}
    assert '### IMS3 Table 4: IM and S³ ablation' in readme and 'another world, not a comparison of equals' in readme and '| IMS3 |' in readme
    assert {(r['method'], r['ipc']) for r in t4['feature_stats']} == {(m, i) for m in t4['methods'] for i in (1, 2)}
    assert all(0 <= r['coverage'] <= 1 for r in t4['feature_stats']) and (out/'figures'/'ims3_tsne.png').exists()
    # IMS3 sweeps: the α/β grid (sets on one ray are identical, so their students are trained once) and Table 13
    ab = json.loads((out/'results'/'ims3-alpha-beta.json').read_text())
    assert len(ab['variants']) == 16 and len(ab['rows']) == 16 * 2
    top1 = {(r['method'], r['seed']): r['top1'] for r in ab['rows']}
    for r in ab['rows']:
        if r['method'] in ('α=0.5, β=0.5', 'α=1, β=1'):
            assert 'same_as' in r and r['seconds'] == 0 and r['top1'] == top1[('α=0.25, β=0.25', r['seed'])]
    cen = json.loads((out/'results'/'ims3-centroids.json').read_text())
    assert {r['params'].get('centroids') for r in cen['rows'] if r['method'].startswith('IMS3')} == {'real', 'gen'}
    assert (out/'figures'/'ims3-alpha-beta.png').exists() and '### IMS3 Fig. 3: S³ weights α and β' in readme and 'Table 13' in readme
    # one number per evaluation unit everywhere: a set two cells make alike (the DiT samples of baseline-DiT and
    # ims3-table4) is one unit, trained once, with the same row in both
    units = {}
    for name, res in load_results('smoke', reports).items():
        for r in res.get('rows', []): units.setdefault(r['unit'], {})[name] = r['top1']
    assert all(len(set(v.values())) == 1 for v in units.values())
    shared = {u: v for u, v in units.items() if len(v) > 1}
    assert shared and any({'baseline-DiT', 'ims3-table4'} <= set(v) for v in shared.values()), list(shared.values())[:3]
    # second run: every cell is reused, because this machine's journal says it finished it with the same key
    st = run_grid('smoke', reports, cache)
    assert {s['status'] for s in st} == {'reused'}
    # forced re-run of one cell: the notebook runs again but the pretraining stage comes from the cache
    st = run_grid('smoke', reports, cache, only='foundation', force=True)
    assert [s['status'] for s in st] == ['ok']
    assert load_results('smoke', reports)['foundation']['pretrain']['cached']
    assert len([p for p in (cache/'pretrain').iterdir() if not p.name.startswith('.')]) == 1   # one stage (beside its lock file)
    # a run killed inside a cell leaves its record 'running': the next run re-runs that cell only
    j = Journal(cache, out)
    j.record('baseline-Full', 'running', key=j.get('baseline-Full')['key'], started='earlier', pid=0)
    st = run_grid('smoke', reports, cache)
    assert [s['cell'] for s in st if s['status'] == 'ok'] == ['baseline-Full'] and len(st) == len(grid_for('smoke'))
    # a fresh clone (committed results/, empty cache): nothing is reused, the committed results are set aside, not mixed in
    plan = plan_grid(grid_for('smoke'), out, tmp_path/'empty-cache', 'smoke')
    assert {p['action'] for p in plan} == {'run'} and 'from elsewhere' in plan[0]['why']
    # the committed run: a re-run compares each mean with it (here the reused cells are the committed run itself)
    freeze_reference('smoke', reports, note='test')
    assert 'These results are the committed run itself' in write_reports('smoke', reports).read_text()
    st = run_grid('smoke', reports, cache, only='baseline-Random', force=True)
    readme = (out/'README.md').read_text()
    assert '4 of 4 means agree with the committed run within the seed spread (4 of 4 identical' in readme and readme.index('## Run-to-run check') > readme.index('## Cost per method')


@pytest.mark.xdist_group('b')
def test_failing_cell_is_recorded_and_grid_goes_on(tmp_path):
    cells = [GridCell('foundation-bad', 'foundation.ipynb', dict(world='mini', dataset='imagewoof')),
             GridCell('foundation', 'foundation.ipynb', dict(world='mini', pretrain_steps=5, pretrain_num_layers=1, pretrain_hidden_size=32,
                                                              pretrain_num_attention_heads=2, gate_n_per_class=1, recon_n=4, num_steps=2, samples_per_class=1))]
    st = run_grid('smoke', tmp_path, tmp_path/'cache', cells=cells)
    assert [s['status'] for s in st] == ['failed', 'ok']
    fail = json.loads((tmp_path/'smoke'/'failures'/'foundation-bad.json').read_text())
    assert "dataset='imagewoof'" in fail['error'] or 'imagewoof' in fail['error']
    assert (tmp_path/'smoke'/'notebooks'/'foundation-bad.failed.ipynb').exists()
    assert not (tmp_path/'smoke'/'results'/'foundation-bad.json').exists()


@pytest.mark.xdist_group('b')
def test_paper_world_cell_on_tiny_models(tmp_path):
    """The paper-world code path (offline DiT folder + ImageNet tree) on a tiny random-init DiT and fake JPEGs."""
    woof = class_list('imagewoof')
    root = write_fake_imagenet(tmp_path/'imagenet', woof, n_per_class=1, size=(24, 20))
    model = save_generator(tiny_paper_generator(num_classes=1000), tmp_path/'dit')
    cell = GridCell('foundation', 'foundation.ipynb', dict(world='paper', dataset='imagewoof', data_root=str(root), model_dir=str(model),
                                                           num_steps=2, recon_n=10, samples_per_class=1, gate_n_per_class=1))
    st = run_grid('smoke', tmp_path/'reports', tmp_path/'cache', cells=[cell])
    assert st[0]['status'] == 'ok', st
    res = load_results('smoke', tmp_path/'reports')['foundation']
    assert res['world'] == 'paper' and res['quality_gate'] == [] and res['reconstruction'][0]['n'] == 10
