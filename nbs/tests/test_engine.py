"""The engine for real: Dask worker processes over TCP on 127.0.0.1 (a LocalCluster-style SpecCluster, and a cluster
started separately with the `dask scheduler` / `dask worker` commands), a worker SIGKILLed in the middle of a unit, a
unit asked for by two cells at once, and a GPU request on a machine with none."""
import json, os, shutil, signal, subprocess, sys, threading, time
from pathlib import Path
import pytest
import torch
from ddnb.engine import Engine, Unit, UnitStore
from ddnb.grid import GridCell
from ddnb.runner import run_grid, run_cell
from ddnb.report import load_results

BIN = Path(sys.executable).parent


def _slow_toy(path, seconds):
    "A unit that records each time it is built (one line per build) and takes a while."
    with open(path, 'a') as f: f.write(f'{os.getpid()}\n')
    time.sleep(seconds)
    return {'value': 42}


@pytest.mark.xdist_group('b')
def test_unit_requested_by_two_cells_at_once_is_built_once(tmp_path):
    builds = tmp_path/'builds.txt'
    with Engine.start(jobs=2) as eng:
        out = {}
        def cell(name): out[name] = eng.run([Unit('toy', 'shared', _slow_toy, (str(builds), 3.0))], tmp_path/'cache')[0]
        ts = [threading.Thread(target=cell, args=(n,)) for n in ('cell-a', 'cell-b')]
        for t in ts: t.start()
        for t in ts: t.join()
    assert out['cell-a'] == out['cell-b'] and out['cell-a']['result'] == {'value': 42}
    assert len(builds.read_text().splitlines()) == 1, builds.read_text()      # one build, one record, one number
    assert UnitStore(tmp_path/'cache').count('toy') == 1


def _toy_evaluation(epochs):
    from ddnb.distilled import DistilledSet
    from ddnb.data import ImageSet
    from ddnb.evaluate import recipes_for
    g = torch.Generator().manual_seed(0)
    classes = [str(i) for i in range(4)]
    ds = DistilledSet(torch.rand(40, 1, 8, 8, generator=g), torch.arange(40) % 4, classes, method='toy', seeds=[0])
    test = ImageSet(torch.rand(40, 1, 8, 8, generator=g), torch.arange(40) % 4, classes)
    return ds, test, recipes_for(['mini-hard'], epochs=epochs)[0]


@pytest.mark.xdist_group('b')
def test_worker_killed_mid_unit_is_retried_with_equal_numbers(tmp_path):
    from ddnb.units import evaluate_units
    ds, test, r = _toy_evaluation(epochs=60)
    with Engine.start(jobs=2) as eng:
        pids = eng.client.run(os.getpid)
        box = {}
        th = threading.Thread(target=lambda: box.update(rows=evaluate_units([(ds, r, 0)], test, cache_dir=tmp_path/'dask', engine=eng)))
        th.start()
        victim, t0 = None, time.time()
        while victim is None and time.time() - t0 < 120:
            busy = {w: ks for w, ks in eng.client.processing().items() if any(k.startswith('evaluation-group-') for k in ks)}
            victim = next(iter(busy), None); time.sleep(0.2)
        assert victim, 'the unit never started'
        time.sleep(2.0)                                  # in the middle of the student's training
        os.kill(pids[victim], signal.SIGKILL)
        th.join(timeout=600)
    row = box['rows'][0]
    assert row['worker'] != victim, (row['worker'], victim)                   # retried elsewhere
    here = evaluate_units([(ds, r, 0)], test, cache_dir=tmp_path/'in-process')[0]   # no engine: this process
    assert here['worker'] == 'in-process' and here['unit'] == row['unit']
    assert here['top1'] == row['top1'] and here['top1_last'] == row['top1_last']


def _small_cell(name='random-small'):
    return GridCell(name, 'baselines.ipynb', dict(world='mini', method='Random', ipcs=[1], seeds=[0, 1], recipes=['mini-hard'], epochs=1))


@pytest.mark.xdist_group('b')
def test_scheduler_started_by_hand(tmp_path):
    """`--scheduler` joins a cluster started with the `dask scheduler` and `dask worker` commands; its numbers equal an
    in-process run of the same cell (no engine: the notebook computes its units itself)."""
    sf = tmp_path/'scheduler.json'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'DASK_LOGGING__DISTRIBUTED': 'error'}
    procs = [subprocess.Popen([str(BIN/'dask'), 'scheduler', '--host', '127.0.0.1', '--port', '0', '--no-dashboard', '--scheduler-file', str(sf)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        t0 = time.time()
        while not sf.exists() and time.time() - t0 < 60: time.sleep(0.2)
        addr = json.loads(sf.read_text())['address']
        procs += [subprocess.Popen([str(BIN/'dask'), 'worker', addr, '--nthreads', '1', '--resources', 'CELL=1', '--no-dashboard',
                                    '--local-directory', str(tmp_path/f'w{i}')], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True) for i in range(2)]
        st = run_grid('smoke', tmp_path/'reports', tmp_path/'cache', cells=[_small_cell()], scheduler=addr)
        assert [s['status'] for s in st] == ['ok'], st
        assert st[0]['worker'].startswith('tcp://127.0.0.1:')
    finally:
        for p in procs: os.killpg(p.pid, signal.SIGTERM)
        for p in procs: p.wait(timeout=60)
    rows = load_results('smoke', tmp_path/'reports')['random-small']['rows']
    assert rows and all(r['worker'].startswith('tcp://127.0.0.1:') for r in rows)
    st = run_cell(_small_cell(), tmp_path/'in-process'/'smoke', str(tmp_path/'cache-in-process'), 'smoke')   # in this process, no engine
    assert st['status'] == 'ok', st
    here = json.loads((tmp_path/'in-process'/'smoke'/'results'/'random-small.json').read_text())['rows']
    assert {r['unit']: r['top1'] for r in rows} == {r['unit']: r['top1'] for r in here} and all(r['worker'] == 'in-process' for r in here)


@pytest.mark.xdist_group('b')
def test_cuda_without_cuda_is_one_error_before_any_work(tmp_path):
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    env = {**os.environ, 'DDNB_CACHE': str(tmp_path/'cache'), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-m', 'ddnb.cli', 'reproduce', '--profile', 'smoke', '--device', 'cuda', '--reports-dir', str(tmp_path/'r')],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 2 and 'CUDA is not available on this machine' in r.stderr, r.stderr
    assert not (tmp_path/'r').exists()
    r = subprocess.run([sys.executable, '-m', 'ddnb.cli', 'reproduce', '--profile', 'smoke', '--devices', 'auto', '--reports-dir', str(tmp_path/'r')],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 2 and 'no CUDA device is visible' in r.stderr, r.stderr


_TRAIN = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_engine import _toy_evaluation
from ddnb.evaluate import train_student
ds, test, r = _toy_evaluation(epochs=400)   # long enough that the kill below always lands mid-training, on any CPU
m = train_student(ds, r, 0, show_progress=False, checkpoint={ck!r}, checkpoint_every=0.0)
torch.save(m.net.state_dict(), {out!r})
"""

@pytest.mark.xdist_group('b')
def test_student_killed_mid_training_resumes_to_equal_weights(tmp_path):
    "kill -9 a student's training after its first checkpoints; the re-run resumes and ends with the uninterrupted run's weights."
    from ddnb.evaluate import CHECKPOINT_FILE
    run = lambda ck, out: subprocess.Popen([sys.executable, '-c', _TRAIN.format(tests=str(Path(__file__).parent), ck=str(ck), out=str(out))],
                                           env={**os.environ, 'OMP_NUM_THREADS': '1'})
    run(tmp_path/'ck-ref', tmp_path/'ref.pt').wait()
    p = run(tmp_path/'ck', tmp_path/'resumed.pt')
    t0 = time.time()
    while not (tmp_path/'ck'/CHECKPOINT_FILE).exists() and time.time() - t0 < 300: time.sleep(0.05)
    time.sleep(0.5)
    p.kill(); p.wait()
    assert not (tmp_path/'resumed.pt').exists(), 'the training finished before it was killed'
    saved = torch.load(tmp_path/'ck'/CHECKPOINT_FILE, weights_only=True)['epoch']
    assert 0 < saved < 400
    assert run(tmp_path/'ck', tmp_path/'resumed.pt').wait() == 0
    ref, res = torch.load(tmp_path/'ref.pt', weights_only=True), torch.load(tmp_path/'resumed.pt', weights_only=True)
    assert ref.keys() == res.keys() and all(torch.equal(ref[k], res[k]) for k in ref)


from ddnb.units import set_builder, baseline_set, stage_builder, d3hr_set, d3hr_statistics_chunk, d3hr_statistics_asks

SMOKE_WORLD = dict(profile='smoke', pretrain_steps=40, pretrain_num_layers=1, pretrain_hidden_size=32, pretrain_num_attention_heads=2, num_steps=4)

@set_builder(code=baseline_set.code, reads=baseline_set.reads)
def _noted_set(W, spec, ipc, seed):
    "`baseline_set`, appending one line per build to the file the spec names (builds are counted across worker processes)."
    with open(spec['log'], 'a') as f: f.write(f"{os.getpid()} {spec['method']} {ipc} {seed}\n")
    time.sleep(1.0)   # long enough that the second cell asks while the first cell's build runs
    return baseline_set(W, spec, ipc, seed)


@pytest.mark.xdist_group('b')
def test_set_shared_by_two_cells_is_built_once_on_the_workers(tmp_path):
    "Two cells' kernels ask a 2-worker engine for overlapping distilled sets at once: each set is built once, on a worker, equal to an in-process build."
    from ddnb.world import World
    from ddnb.units import distilled_sets, set_key
    W = World.from_params(cache_dir=str(tmp_path/'cache'), **SMOKE_WORLD)
    log = str(tmp_path/'builds.txt')
    dit = {'method': 'DiT', 'guidance_scale': 1.0, 'num_steps': 4, 'sampler': 'ddim', 'sampler_opts': {}, 'log': log}
    shared, own = (_noted_set, dit, 1, 0), (_noted_set, {'method': 'Random', 'log': log}, 2, 0)
    out = {}
    with Engine.start(jobs=2) as eng:
        def cell(name, asks): out[name] = distilled_sets(W, asks, engine=eng)
        ts = [threading.Thread(target=cell, args=('a', [shared])), threading.Thread(target=cell, args=('b', [shared, own]))]
        for t in ts: t.start()
        for t in ts: t.join()
        workers = set(eng.workers())
    builds = Path(log).read_text().splitlines()
    assert sorted(b.split(' ', 1)[1] for b in builds) == ['DiT 1 0', 'Random 2 0'], builds     # the shared set: one build for two cells
    assert UnitStore(tmp_path/'cache').count('set') == 2
    a, b = out['a'][0], out['b'][0]
    assert a.unit['key'] == b.unit['key'] and a.unit['worker'] in workers and set_key(a) == set_key(b)
    here = distilled_sets(World.from_params(cache_dir=str(tmp_path/'in-process'), **SMOKE_WORLD), [shared, own])   # no engine: this process
    assert [ds.unit['worker'] for ds in here] == ['in-process'] * 2 and len(Path(log).read_text().splitlines()) == 4
    assert [(ds.unit['key'], set_key(ds)) for ds in here] == [(ds.unit['key'], set_key(ds)) for ds in (b, out['b'][1])]


@stage_builder(code=d3hr_statistics_chunk.code)
def _noted_chunk(W, mapping, classes, log):
    "`d3hr_statistics_chunk`, noting each build (process id, classes)."
    with open(log, 'a') as f: f.write(f"{os.getpid()} {classes}\n")
    time.sleep(0.5)   # long enough that the second cell asks while the first cell's chunks run
    return d3hr_statistics_chunk(W, mapping, classes)

@set_builder(code=d3hr_set.code, reads=d3hr_set.reads, label='method',
             stages=lambda W, spec: [(_noted_chunk, (*a, spec['log'])) for _, a in d3hr_statistics_asks(W, spec['mapping'])])
def _noted_d3hr(W, spec, ipc, seed): return d3hr_set(W, {k: v for k, v in spec.items() if k != 'log'}, ipc, seed)


@pytest.mark.xdist_group('b')
def test_stage_units_shared_by_two_cells_run_once_on_the_workers(tmp_path):
    "Two cells ask a 2-worker engine for D3HR sets of one mapping at once: each chunk of its class statistics is one unit, built once, on a worker; the sets equal an in-process build."
    from dataclasses import asdict
    from ddnb.world import World
    from ddnb.d3hr import MappingConfig, GroupConfig, statistics_chunks
    from ddnb.units import distilled_sets, set_key
    W = World.from_params(cache_dir=str(tmp_path/'cache'), **SMOKE_WORLD)
    mc, log = MappingConfig(num_steps=4, to_step=2), str(tmp_path/'chunks.txt')
    spec = {'method': 'D3HR', 'mapping': asdict(mc), 'group': asdict(GroupConfig(m=20)), 'log': log}
    out = {}
    with Engine.start(jobs=2) as eng:
        def cell(name, ipc): out[name] = distilled_sets(W, [(_noted_d3hr, spec, ipc, 0)], engine=eng)[0]
        ts = [threading.Thread(target=cell, args=('a', 1)), threading.Thread(target=cell, args=('b', 2))]
        for t in ts: t.start()
        for t in ts: t.join()
        workers = set(eng.workers())
    n, builds = len(statistics_chunks(len(W.classes), mc)), Path(log).read_text().splitlines()
    assert n == len(W.classes) and sorted(b.split(' ', 1)[1] for b in builds) == sorted(f'[{c}, {c + 1}]' for c in range(n)), builds   # each chunk once
    assert len({b.split()[0] for b in builds}) == 2, builds                                     # side by side: both workers built chunks
    recs = [json.loads(p.read_text()) for p in (UnitStore(tmp_path/'cache').root/'stage').glob('*/*.json')]
    assert len(recs) == n and {r['worker'] for r in recs} <= workers
    assert len(list((tmp_path/'cache'/'d3hr_statistics').glob('*/_stage.json'))) == n
    here = distilled_sets(World.from_params(cache_dir=str(tmp_path/'in-process'), **SMOKE_WORLD), [(d3hr_set, {k: v for k, v in spec.items() if k != 'log'}, i, 0) for i in (1, 2)])
    assert [set_key(ds) for ds in here] == [set_key(out['a']), set_key(out['b'])]                # bit-equal to building it all in this process
