#!/usr/bin/env python3
"""One prepared GPU check of ddnb (≤ 10 min on one H100): prints ONE table and writes it as JSON and markdown to --out.

Sections (each guarded: a failure is a row with its error and the rest still run; each has a time budget):
  1  DiT-XL/2 forward throughput, bf16 autocast, random weights of the real config (`ddnb.world.bench_generator`):
     images/s, ms per image-forward, TFLOP/s (FLOPs counted by torch's FlopCounterMode) and its fraction of the device's peak
  2  D3HR group sampling on the device: `ddnb.d3hr.group_sample` (official score) vs the official chunk loop, re-implemented here
  3  batched students at 224 px vs the sequential loop (`ddnb.batched.bench_batched`), minimax-hard × ConvNet-6 / ResNetAP-10 / ResNet-18
  4  `ddnb reproduce --profile paper-tiny --devices auto` as a subprocess: wall seconds, exit code, cells ok / failed
  5  torch.compile of the DiT-XL/2 transformer (`nn.Module.compile`, as `--compile` does) vs eager: images/s and compile time

`--dry-run` runs every path on the CPU at tiny sizes (tiny DiT, 256 latent dims, 16 px, 1 epoch, `reproduce --plan` on one artefact).

The same file also holds the wheel tooling of scripts/gpu_check.sh (the GPU machine's python has torch, timm and accelerate but not
ddnb's other requirements, and it cannot reach a package registry):
  gpu_check.py wheels-download [--versions 3.12 3.11] [--bare]   (here, with PyPI access: fills .wheels/)
  gpu_check.py wheels-install --site DIR                          (there: installs into DIR only what its python lacks)
"""
from __future__ import annotations
import argparse, configparser, contextlib, gc, json, math, os, re, shutil, signal, subprocess, sys, tempfile, time, traceback, zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------------------------------------
# wheels: what ddnb needs beyond torch / timm / accelerate
# ---------------------------------------------------------------------------------------------------------------------------
PROVIDED = ('torch', 'torchvision', 'timm', 'accelerate')   # the GPU machine's python has these: checked, never installed
EXTRA_ROOTS = ('ipykernel',)   # papermill runs the experiment notebooks in the 'python3' kernel that ipykernel provides
NOT_NEEDED = ('jupyter',)      # the meta package: nothing of it is imported when the grid runs
# Compiled distributions the lent GPU machines' image already holds (device KINDS.md, 'Python packages already there', 2026-11-17):
# their wheels are large (scipy alone ~35 MB) and the working tree that travels is limited to 64 MiB, so they are downloaded
# only with --bare (a machine without them, e.g. a venv holding only torch, timm and accelerate).
ON_GPU_IMAGE = {'scipy', 'scikit-learn', 'pandas', 'matplotlib', 'contourpy', 'kiwisolver', 'regex', 'charset-normalizer', 'fonttools',
                'pyyaml', 'psutil', 'msgpack', 'aiohttp', 'frozenlist', 'multidict', 'propcache', 'yarl', 'numpy', 'pillow', 'markupsafe',
                'safetensors', 'lxml', 'wrapt', 'xxhash'}
PLATFORMS = [f'manylinux_2_{n}_x86_64' for n in range(17, 36)] + ['manylinux2014_x86_64', 'manylinux2010_x86_64', 'manylinux1_x86_64']

def norm_name(n: str) -> str: return re.sub(r'[-_.]+', '-', n).lower()

def wheel_info(path) -> dict:
    "Name, version and tags of a wheel from its file name (PEP 427)."
    parts = Path(path).name[:-4].split('-')
    name, version, (py, abi, plat) = parts[0], parts[1], parts[-3:]
    return {'name': norm_name(name), 'version': version, 'py': py, 'abi': abi, 'plat': plat,
            'pure': abi == 'none' and plat == 'any', 'file': Path(path).name}

def ddnb_requirements() -> list:
    "ddnb's run-time requirements (settings.ini) minus the provided ones and the jupyter meta package, plus the notebook kernel."
    cfg = configparser.ConfigParser(); cfg.read(REPO/'settings.ini')
    reqs = cfg['DEFAULT'].get('requirements', '').split()
    split = lambda r: norm_name(re.split(r'[<>=!~;\[ ]', r, maxsplit=1)[0])
    names = {split(r) for r in reqs}
    return [r for r in reqs if split(r) not in PROVIDED + NOT_NEEDED] + [r for r in EXTRA_ROOTS if split(r) not in names], \
           [r for r in reqs if split(r) in PROVIDED]

def _closure_installed(roots) -> set:
    "Names of the installed distributions `roots` pull in (this python's metadata)."
    import importlib.metadata as md
    from packaging.requirements import Requirement
    seen, stack = set(), [norm_name(r) for r in roots]
    while stack:
        n = stack.pop()
        if n in seen: continue
        seen.add(n)
        try: reqs = md.requires(n) or []
        except md.PackageNotFoundError: continue
        for r in reqs:
            q = Requirement(r)
            if q.marker is None or q.marker.evaluate({'extra': ''}): stack.append(norm_name(q.name))
    return seen

def _python_for(version: str):
    "An interpreter of `version` here (to evaluate the requirements' markers for it), else None."
    cands = [f'python{version}']
    with contextlib.suppress(Exception):
        root = subprocess.run(['pyenv', 'root'], capture_output=True, text=True, timeout=20).stdout.strip()
        if root: cands += sorted(str(p) for p in Path(root, 'versions').glob(f'{version}.*/bin/python{version}'))
    for c in cands:
        with contextlib.suppress(Exception):
            r = subprocess.run([c, '-c', 'import sys, pip; print("%d.%d" % sys.version_info[:2])'], capture_output=True, text=True, timeout=60)
            if r.returncode == 0 and r.stdout.strip() == version: return c
    return None

def wheels_download(a) -> int:
    "Resolve ddnb's requirements for each target python (locked versions), download the wheels the GPU machine lacks into a.dir."
    roots, provided = ddnb_requirements()
    lock = REPO/'requirements.lock'
    base = _closure_installed(PROVIDED)   # what torch, timm and accelerate bring with them
    out = Path(a.dir)
    if out.exists(): shutil.rmtree(out)
    (out/'py3').mkdir(parents=True)
    plat = [x for p in PLATFORMS for x in ('--platform', p)]
    manifest, problems = {}, []
    print(f"[wheels] ddnb needs beyond {', '.join(provided)}: {' '.join(roots)}")
    print(f"[wheels] left out (torch / timm / accelerate bring them): {' '.join(sorted(base))}")
    for v in a.versions:
        tag = 'cp' + v.replace('.', '')
        py = _python_for(v)
        if py is None:
            py = sys.executable
            print(f"[wheels] WARNING: no Python {v} here: requirements' markers are evaluated for this python "
                  f"({sys.version_info.major}.{sys.version_info.minor}); a marker such as python_version == '{v}' is missed")
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [py, '-m', 'pip', 'install', '--dry-run', '--ignore-installed', '--quiet', '--report', f'{tmp}/r.json', '--target', f'{tmp}/t',
                   '--only-binary=:all:', '--python-version', v, '--implementation', 'cp', *plat, '-c', str(lock), *roots]
            print(f"[wheels] resolving for Python {v} with {py} (locked versions from requirements.lock) …", flush=True)
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode: print(r.stdout[-3000:], r.stderr[-3000:]); return 2
            items = json.load(open(f'{tmp}/r.json'))['install']
        want_pure, want_bin = [], []
        for it in items:
            name, ver = norm_name(it['metadata']['name']), it['metadata']['version']
            if name in base: continue
            pure = wheel_info(it['download_info']['url'].rsplit('/', 1)[-1])['pure']
            if not pure and name in ON_GPU_IMAGE and not a.bare:
                manifest.setdefault((name, ver, 'on the GPU image'), set()).add(tag); continue
            (want_pure if pure else want_bin).append(f'{name}=={ver}')
        for spec, dest in ((want_pure, out/'py3'), (want_bin, out/tag)):
            if not spec: continue
            dest.mkdir(exist_ok=True)
            cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet', '-d', str(dest), '--only-binary=:all:',
                   '--python-version', v, '--implementation', 'cp', *plat, *spec]
            print(f"[wheels] downloading {len(spec)} {'pure-Python' if dest.name == 'py3' else 'compiled'} wheels for Python {v} into {dest} …", flush=True)
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode: print(r.stdout[-3000:], r.stderr[-3000:]); return 2
    total = 0
    print(f"\n[wheels] {out}:")
    print(f"  {'folder':6s} {'wheel':72s} {'MB':>6s}  kind")
    for f in sorted(out.glob('*/*.whl')):
        w, size = wheel_info(f), f.stat().st_size
        total += size
        kind = 'py3-none-any (pure Python)' if w['pure'] else f"COMPILED ({w['py']}-{w['abi']}-{w['plat'][:40]})"
        if f.parent.name == 'py3' and not w['pure']: problems.append(f'{f.name}: not pure Python but in py3/')
        print(f"  {f.parent.name:6s} {f.name[:72]:72s} {size / 2**20:6.2f}  {kind}")
    skipped = sorted(manifest)
    if skipped:
        print("  not downloaded (compiled, already on the GPU machines' image; --bare downloads them): "
              + ', '.join(f'{n}=={v}' for n, v, _ in skipped))
    tree = 0
    with contextlib.suppress(Exception):   # what a device call sends besides: tracked and untracked-not-ignored files
        names = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], capture_output=True, text=True, cwd=REPO).stdout.split('\0')
        tree = sum((REPO/n).stat().st_size for n in names if n and (REPO/n).is_file())
    print(f"[wheels] total {total / 2**20:.1f} MiB; with the working tree ({tree / 2**20:.1f} MiB) a device call that carries {out.name} "
          f"sends {(total + tree) / 2**20:.1f} MiB of its 64 MiB" + (" — TOO MUCH: carry only .wheels/py3 and the device python's .wheels/cpXY"
                                                                  if total + tree > 64 * 2**20 else ''))
    (out/'MANIFEST.txt').write_text(''.join(f'{f.relative_to(out)}\t{f.stat().st_size}\n' for f in sorted(out.glob('*/*.whl'))))
    for p in problems: print(f'[wheels] PROBLEM: {p}')
    return 1 if problems else 0

def _wheel_requires(path) -> list:
    "Requires-Dist lines of a wheel's METADATA."
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        text = z.read(meta).decode('utf-8', 'replace')
    return [l.split(':', 1)[1].strip() for l in text.split('\n\n', 1)[0].splitlines() if l.startswith('Requires-Dist:')]

def wheels_install(a) -> int:
    "On the GPU machine: pick, among the carried wheels, those this python lacks (or has at a version a requirement refuses), install them into a.site."
    import importlib.metadata as md
    v = f'{sys.version_info.major}.{sys.version_info.minor}'
    tag, wd, site = f'cp{sys.version_info.major}{sys.version_info.minor}', Path(a.dir), Path(a.site)
    if not wd.exists():
        print(f"[gpu-check] no {wd}: installing nothing; run `bash scripts/gpu_check.sh --download-wheels` on a machine with PyPI and carry .wheels")
        return 0
    have = sorted(p.name for p in wd.iterdir() if p.is_dir() and p.name.startswith('cp'))
    files = sorted((wd/'py3').glob('*.whl')) + sorted((wd/tag).glob('*.whl'))
    if have and tag not in have:
        print(f"[gpu-check] WARNING: this machine's python is {v} ({sys.executable}) but .wheels holds compiled wheels for "
              f"{', '.join(have)} only: they do not fit it. Run here-with-PyPI `bash scripts/gpu_check.sh --download-wheels {v}`; "
              f"the pure-Python wheels are used, compiled requirements this python lacks are reported below.")
    try:
        from packaging.requirements import Requirement
        from packaging.tags import sys_tags
    except ImportError:   # no packaging: install every carried wheel (torch brings packaging, so this is unexpected)
        print("[gpu-check] WARNING: no `packaging` in this python: installing every carried wheel without checks")
        Requirement = None
    wheels, misfit = {}, []
    if Requirement:
        ok_tags = {str(t) for t in sys_tags()}
        for f in files:
            w = wheel_info(f)
            fits = any(f'{p}-{b}-{q}' in ok_tags for p in w['py'].split('.') for b in w['abi'].split('.') for q in w['plat'].split('.'))
            (wheels.__setitem__(w['name'], (f, w)) if fits else misfit.append(f.name))
    else: wheels = {wheel_info(f)['name']: (f, wheel_info(f)) for f in files}
    for m in misfit: print(f"[gpu-check] WARNING: {m} does not fit this python/platform ({tag}, {sys.platform}): not installed")
    if site.exists(): shutil.rmtree(site)   # an earlier install is not 'the machine's'
    sys.path[:] = [x for x in sys.path if Path(x or '.').resolve() != site.resolve()]
    roots, provided = ddnb_requirements()
    chosen, using, problems, warnings = {}, {}, [], []
    if Requirement:
        def installed(name):
            try: return md.version(name)
            except md.PackageNotFoundError: return None
        for r in provided:
            q = Requirement(r); got = installed(q.name)
            if got is None: problems.append(f"{q.name}: not installed in {sys.executable} (the GPU check expects the machine to bring it)")
            elif not q.specifier.contains(got, prereleases=True):
                warnings.append(f"{q.name} {got} is outside ddnb's {q.name}{q.specifier} (used as it is; results may differ)")
        queue, seen = [(Requirement(r), 'ddnb') for r in roots], set()
        while queue:
            q, by = queue.pop(0)
            n = norm_name(q.name)
            if (n, str(q.specifier)) in seen: continue
            seen.add((n, str(q.specifier)))
            if n in PROVIDED: continue
            if n in chosen:
                if not q.specifier.contains(chosen[n][1]['version'], prereleases=True): problems.append(f"{n}: carried {chosen[n][1]['version']} but {by} needs {q.specifier}")
                continue
            got = installed(n)
            if got is not None and q.specifier.contains(got, prereleases=True):
                using[n] = got; continue
            if n in wheels and q.specifier.contains(wheels[n][1]['version'], prereleases=True):
                chosen[n] = wheels[n]; using.pop(n, None)
                env = {'extra': ''}
                for line in _wheel_requires(wheels[n][0]):
                    d = Requirement(line)
                    if d.marker is None or d.marker.evaluate(env): queue.append((d, n))
                continue
            if any(x.startswith(f'{n} ') for x in problems): continue   # reported once
            why = f"installed {got}" if got else "not installed"
            car = f"carried {wheels[n][1]['version']}" if n in wheels else "no wheel carried"
            problems.append(f"{n} {q.specifier} (needed by {by}): {why}, {car}"
                            + ('' if n in wheels or got else f" — compiled? `--download-wheels {v}` (with --bare if the machine's image lacks it)"))
    else: chosen = wheels
    site.mkdir(parents=True)
    print(f"[gpu-check] python {v} ({sys.executable}): using the machine's {len(using)} distributions "
          f"({', '.join(f'{k} {x}' for k, x in sorted(using.items()))})")
    print(f"[gpu-check] installing {len(chosen)} carried wheels into {site}: " + ', '.join(sorted(f"{k} {w['version']}" for k, (_, w) in chosen.items())))
    for w in warnings: print(f"[gpu-check] WARNING: {w}")
    for p in problems: print(f"[gpu-check] MISSING: {p}")
    if chosen:
        cmd = [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-index', '--no-deps', '--no-cache-dir', '--no-compile', '--disable-pip-version-check',
               '--target', str(site), *[str(f) for f, _ in chosen.values()]]
        r = subprocess.run(cmd)
        if r.returncode: print(f"[gpu-check] pip install failed ({r.returncode})"); return 2
    return 3 if problems else 0

# ---------------------------------------------------------------------------------------------------------------------------
# the measurements
# ---------------------------------------------------------------------------------------------------------------------------
PEAK_BF16_DENSE = [   # dense bf16 TFLOP/s by device name (vendor data sheets); the first match wins
    ('H100 PCIe', 756.0), ('H100 NVL', None), ('H100', 989.0), ('H200', 989.0), ('A100', 312.0)]
SECTIONS = {1: 'DiT-XL/2 forward', 2: 'D3HR group sampling', 3: 'batched students', 4: 'paper-tiny', 5: 'torch.compile'}
BUDGET_GPU = {1: 60, 2: 60, 3: 120, 4: 300, 5: 150}      # seconds, each capped by what --total-budget-s (480) leaves
BUDGET_DRY = {1: 60, 2: 30, 3: 90, 4: 150, 5: 90}

class SectionTimeout(BaseException):   # BaseException: library code that catches Exception does not swallow it
    pass

def peak_tflops(name: str):
    for key, peak in PEAK_BF16_DENSE:
        if key.lower() in name.lower(): return peak
    return None

class Table:
    def __init__(self): self.rows = []
    def add(self, section, setting, figure, unit='', note='', **extra):
        r = {'section': section, 'setting': setting, 'figure': figure, 'unit': unit, 'note': note}
        if extra: r['extra'] = extra
        self.rows.append(r); return r

def fmt(x) -> str:
    if x is None: return '—'
    if isinstance(x, str): return x
    if isinstance(x, int): return f'{x:,d}'
    if x == 0 or not math.isfinite(x): return str(x)
    mag = abs(x)
    return f'{x:,.0f}' if mag >= 1000 else f'{x:.1f}' if mag >= 100 else f'{x:.2f}' if mag >= 10 else f'{x:.3g}'

def sync(dev):
    import torch
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

class Ctx:
    def __init__(self, a, dev):
        self.a, self.dev, self.dry = a, dev, a.dry_run
        self.tmp = Path(tempfile.mkdtemp(prefix='ddnb-gpu-check-'))
        self.out = Path(a.out)

# --- section 1 --------------------------------------------------------------------------------------------------------------
def _dit(model: str, dev=None, meta=False):
    "The transformer bench_generator builds: DiT-XL/2's config with random weights, or the tiny paper world's."
    import torch
    from diffusers import DiTTransformer2DModel
    from ddnb.generator import DIT_XL2, tiny_paper_generator
    if model == 'dit-xl-2':
        with torch.device('meta' if meta else dev):   # initialised where it runs: seconds, not a CPU init of 750 M parameters
            tr = DiTTransformer2DModel(**DIT_XL2)
    else: tr = tiny_paper_generator(1000).transformer
    return tr if meta else tr.to(dev).eval()

def forward_gflops(model: str) -> float:
    "GFLOPs of one image-forward, counted by torch's FlopCounterMode (2 per multiply-add) on a meta-device copy (DiT-XL/2) or on the CPU (tiny)."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    dev = torch.device('meta' if model == 'dit-xl-2' else 'cpu')
    tr = _dit(model, dev, meta=model == 'dit-xl-2')
    c, B = tr.config, 2
    z = torch.randn(B, c.in_channels, c.sample_size, c.sample_size, device=dev)
    t, y = torch.randint(0, 1000, (B,), device=dev), torch.randint(0, 1000, (B,), device=dev)
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc: tr(z, timestep=t, class_labels=y)
    return fc.get_total_flops() / B / 1e9

def s1_dit(ctx, T):
    from ddnb.world import bench_generator
    from ddnb.generator import DIT_XL2_GFLOPS
    model = 'tiny' if ctx.dry else 'dit-xl-2'
    label = 'tiny DiT (dry run)' if ctx.dry else 'DiT-XL/2'
    try: gf, how = forward_gflops(model), 'counted (FlopCounterMode)'
    except Exception as e: gf, how = 2 * DIT_XL2_GFLOPS, f'2 × {DIT_XL2_GFLOPS} (counting failed: {type(e).__name__})'
    peak = peak_tflops(ctx.device_name) if ctx.dev.type == 'cuda' else None
    for batch in ctx.a.dit_batch:
        r = bench_generator(model, str(ctx.dev), batch, ctx.a.dit_steps, cache_dir=ctx.tmp/'cache')
        s = f"{label}, {r['dtype']}, batch {batch}"
        tfl = gf / r['s_per_forward'] / 1e3
        T.add(1, s, r['images_per_s'], 'images/s', f"{ctx.a.dit_steps} timed no-grad forwards after 1 warm-up; {fmt(r['params'] / 1e6)} M params")
        T.add(1, s, r['s_per_forward'] * 1e3, 'ms/image-forward', '')
        T.add(1, s, tfl, 'TFLOP/s', f"{gf:.1f} GFLOP per image-forward, {how}; ddnb's bench_generator reports {r['tflops']:.3g} "
              f"from its {r['gflops_per_forward']:.1f} GFLOPs" + (" (DiT paper Gflops = multiply-adds, half the FLOPs)"
                                                                  if model == 'dit-xl-2' and abs(gf / r['gflops_per_forward'] - 2) < 0.1 else ''))
        T.add(1, s, None if peak is None else 100 * tfl / peak, '% of peak',
              f"peak dense bf16 {peak:.0f} TFLOP/s ({ctx.device_name})" if peak else f"no peak known for {ctx.device_name!r}")
        T.add(1, s, r['train_images_per_s'], 'images/s fine-tune', f"one forward + backward, {r['dtype']}")

# --- section 2 --------------------------------------------------------------------------------------------------------------
def official_group_search(mu, sigma, ipc: int, m: int, chunk: int = 10_000, seed: int = 0):
    """The official D3HR group search (group_sampling.py), re-written from its description: a Python loop over chunks of `chunk`
    candidate groups; each chunk re-seeds the global RNG, draws `chunk` groups of `ipc` latents from N(μ, σ) on μ's device, scores each
    group by ‖mean − μ‖ + ‖std − σ‖ + 0.1·‖skewness‖ (skewness of each member over the latent dimensions, as the official
    skewness_batch computes it) and keeps the best group seen so far. Returns (best group, best score, candidates drawn)."""
    import torch
    D = mu.numel()
    best, best_score, drawn = None, float('inf'), 0
    for i in range(max(1, m // chunk)):
        torch.manual_seed(seed + i * 12345)
        z = torch.normal(mu.expand(chunk, ipc, D), sigma.expand(chunk, ipc, D))
        centre, spread = z.mean(1), z.std(1)
        stand = (z - z.mean(1, keepdim=True)) / z.std(1, keepdim=True)
        skew = stand.pow(3).sum(2) * (D / ((D - 1) * (D - 2)))
        score = (centre - mu).norm(dim=1) + (spread - sigma).norm(dim=1) + 0.1 * skew.norm(dim=1)
        j = int(score.argmin())
        s = float(score[j])   # the official loop compares a device scalar with the best so far: one sync per chunk
        if s < best_score: best_score, best = s, z[j].clone()
        drawn += chunk
    return best, best_score, drawn

def s2_d3hr(ctx, T):
    import torch
    from ddnb.d3hr import group_sample, GroupConfig, OFFICIAL
    a, dev = ctx.a, ctx.dev
    D, ipc, chunk = a.d3hr_dims, a.d3hr_ipc, a.d3hr_chunk
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(D, generator=g).to(dev); sigma = (0.5 + torch.rand(D, generator=g)).to(dev)
    def ddnb_run(m, chunk_blocks):
        return group_sample(mu, sigma, ipc, GroupConfig(m=m, chunk_blocks=chunk_blocks, **OFFICIAL), seed=0, device=dev)[1]
    def timed(f):
        sync(dev); t0 = time.perf_counter(); out = f(); sync(dev); return time.perf_counter() - t0, out
    big = math.ceil(chunk / 256)
    runs = {'official chunk loop (re-implemented here, chunks of %d)' % chunk: lambda m: official_group_search(mu, sigma, ipc, m, chunk)[1],
            'ddnb group_sample (official score, default chunks of %d)' % (16 * 256): lambda m: ddnb_run(m, 16),
            'ddnb group_sample (official score, chunks of %d)' % (big * 256): lambda m: ddnb_run(m, big)}
    # warm-up: one chunk each, then m sized so the slower one takes about a.d3hr_seconds
    t_one = max(timed(lambda: f(chunk))[0] for f in runs.values())
    m = a.d3hr_m or max(chunk, int(round(a.d3hr_seconds / max(t_one, 1e-6))) * chunk)
    rate = {}
    for name, f in runs.items():
        dt, score = timed(lambda: f(m))
        rate[name] = m / dt
        T.add(2, f'{name}: m {m:,d}, IPC {ipc}, {D} dims', m / dt, 'groups/s', f'{dt:.2f} s; best score {score:.4g}')
    names = list(runs)
    for other in names[1:]:
        T.add(2, f'ratio: {other} / official loop', rate[other] / rate[names[0]], '×', 'same m, IPC, dims, device and score')

# --- section 3 --------------------------------------------------------------------------------------------------------------
def s3_students(ctx, T):
    import torch
    from ddnb.batched import bench_batched
    from ddnb.evaluate import get_recipe
    from ddnb.artefacts import PAPER_STUDENTS
    a, dev = ctx.a, str(ctx.dev)
    base = get_recipe('minimax-hard')
    size = a.student_size or base.input_size
    names = {v: k for k, v in PAPER_STUDENTS.items()}
    def bench(ks, seq_max):   # bench_batched warms up on two batched students: it needs max(ks) >= 2 (K=2 then only for the warm-up)
        rows = bench_batched(tuple(ks) if max(ks) >= 2 else (*ks, 2), r, a.student_ipc, a.student_epochs, size, 3, 10,
                             sequential_max=seq_max, device=dev)
        return [x for x in rows if x['K'] in ks]
    for student in a.students:
        r = base.replace(student=student) if size == base.input_size else base.replace(student=student, input_size=size, test_resize=size)
        who = f"{names.get(student, student)} ({student}), minimax-hard, {size} px"
        seq, first = None, [k for k in a.student_k if k <= 4] or a.student_k[:1]
        todo = [first] + [[k] for k in a.student_k if k not in first]   # the small K with the sequential timing, each larger K alone
        while todo:
            ks = todo.pop(0)
            oom = None
            try: rows = bench(ks, a.student_seq if seq is None else 1)
            except torch.OutOfMemoryError as e: oom = str(e).splitlines()[0][:120]
            if oom:   # freed here, once the exception and the frames it holds are gone
                gc.collect(); torch.cuda.empty_cache()
                if len(ks) > 1: todo = [[k] for k in ks] + todo
                else: T.add(3, f'{who}, K={ks[0]} batched', None, 'students·epochs/s', f'out of device memory: {oom}')
                continue
            for x in rows:
                if seq is None:
                    seq = x['sequential_students_epochs_per_s']
                    T.add(3, f'{who}, sequential', seq, 'students·epochs/s',
                          f"train_student one after another ({a.student_seq} timed), IPC {a.student_ipc}, 10 classes, {a.student_epochs} epoch(s)")
                rate = x['students_epochs_per_s']
                T.add(3, f"{who}, K={x['K']} batched", rate, 'students·epochs/s', f'{rate / seq:.2f}× sequential', ratio=rate / seq)

# --- section 4 --------------------------------------------------------------------------------------------------------------
def s4_paper_tiny(ctx, T):
    a = ctx.a
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    env['PYTHONPATH'] = os.pathsep.join([str(REPO)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    import io
    from ddnb.cli import parser as ddnb_parser   # does `ddnb reproduce` take --devices (being added)? asked in this process: no second start-up
    with contextlib.redirect_stderr(io.StringIO()):
        try: ddnb_parser().parse_args(['reproduce', '--devices', 'auto']); has_devices = True
        except SystemExit: has_devices = False
    work = ctx.tmp/'paper-tiny'
    use = has_devices and ctx.dev.type == 'cuda'   # `--devices auto` refuses a machine without CUDA
    cmd = [sys.executable, '-m', 'ddnb.cli', 'reproduce', '--profile', 'paper-tiny', *(['--devices', 'auto'] if use else []),
           '--reports-dir', str(work/'reports'), '--cache-dir', str(work/'cache')]
    if a.paper_tiny_only: cmd += ['--only', *a.paper_tiny_only]
    if a.paper_tiny_plan: cmd += ['--plan']
    shown = ' '.join(['ddnb'] + cmd[3:]).replace(str(work), '<tmp>')
    flag_note = ('--devices auto' if use else f"--devices left out on {ctx.dev.type}" if has_devices else
                 "`ddnb reproduce` has no --devices yet: ran without it (its default device, 'auto')")
    log = ctx.out/f'{ctx.prefix}-paper-tiny.log'
    limit = max(10, ctx.budget_left() - 5)
    t0 = time.perf_counter()
    with open(log, 'w') as f:
        f.write(f'$ {shown}\n'); f.flush()
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
        try: rc = p.wait(timeout=limit); timed_out = False
        except (subprocess.TimeoutExpired, SectionTimeout): rc, timed_out = None, True
        finally:
            if p.poll() is None:   # the run and every kernel it started: one process group, ours
                with contextlib.suppress(ProcessLookupError): os.killpg(p.pid, signal.SIGTERM)
                try: p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError): os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
    dt = time.perf_counter() - t0
    text = log.read_text(errors='replace')
    ok, failed = len(re.findall(r'^\[ddnb\] \S+: ok', text, re.M)), len(re.findall(r'^\[ddnb\] \S+: fail', text, re.M))
    summary = next((l for l in reversed(text.splitlines()) if re.match(r'\[ddnb\] \d+ cells ran', l)), '')
    what = 'plan only (--plan)' if a.paper_tiny_plan else 'run'
    T.add(4, f"paper-tiny {what}" + (f", --only {' '.join(a.paper_tiny_only)}" if a.paper_tiny_only else ', all cells'), dt, 's wall',
          f"{flag_note}; `{shown}`; log {log.name}")
    T.add(4, 'exit code', 'timeout' if timed_out else rc, '', f'stopped after {limit:.0f} s' if timed_out else
          (summary[7:] if summary else (text.strip().splitlines() or [''])[-1][:200]).replace(str(work), '<tmp>'))
    if not a.paper_tiny_plan: T.add(4, 'cells ok / failed', f'{ok} / {failed}', 'cells', '')
    if timed_out: raise SectionTimeout()
    if rc: raise RuntimeError(f"paper-tiny exited {rc}: see {log}")

# --- section 5 --------------------------------------------------------------------------------------------------------------
def s5_compile(ctx, T):
    import torch
    dev, a = ctx.dev, ctx.a
    model = 'tiny' if ctx.dry else 'dit-xl-2'
    label = 'tiny DiT (dry run)' if ctx.dry else 'DiT-XL/2'
    torch.manual_seed(0)
    tr = _dit(model, dev)
    c, B = tr.config, a.compile_batch
    z = torch.randn(B, c.in_channels, c.sample_size, c.sample_size, device=dev)
    t, y = torch.randint(0, 1000, (B,), device=dev), torch.randint(0, 1000, (B,), device=dev)
    amp = torch.autocast('cuda', torch.bfloat16) if dev.type == 'cuda' else contextlib.nullcontext()
    if dev.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True
    def rate():
        with torch.no_grad(), amp:
            for _ in range(2): tr(z, timestep=t, class_labels=y)
            sync(dev); t0 = time.perf_counter()
            for _ in range(a.dit_steps): tr(z, timestep=t, class_labels=y)
            sync(dev)
        return a.dit_steps * B / (time.perf_counter() - t0)
    s = f"{label}, {'bf16 autocast' if dev.type == 'cuda' else 'fp32'}, batch {B}"
    eager = rate()
    T.add(5, f'{s}, eager', eager, 'images/s', '')
    tr.compile(backend=a.compile_backend, mode=a.compile_mode)
    sync(dev); t0 = time.perf_counter()
    with torch.no_grad(), amp: tr(z, timestep=t, class_labels=y)
    sync(dev); ct = time.perf_counter() - t0
    comp = rate()
    how = f"nn.Module.compile(backend={a.compile_backend!r}, mode={a.compile_mode!r}), as `ddnb reproduce --compile`"
    T.add(5, f'{s}, compiled', comp, 'images/s', how)
    T.add(5, f'{s}, compiled / eager', comp / eager, '×', '')
    T.add(5, f'{s}, compile time', ct, 's', 'first compiled forward (trace + codegen + run)')

RUNNERS = {1: s1_dit, 2: s2_d3hr, 3: s3_students, 4: s4_paper_tiny, 5: s5_compile}

# --- driver -----------------------------------------------------------------------------------------------------------------
def environment(dev) -> dict:
    import platform, torch
    env = {'python': platform.python_version(), 'torch': torch.__version__, 'cuda': torch.version.cuda, 'device': str(dev),
           'device_name': platform.processor() or platform.machine(), 'threads': torch.get_num_threads(), 'host': platform.node()}
    if dev.type == 'cuda':
        p = torch.cuda.get_device_properties(dev)
        env.update(device_name=torch.cuda.get_device_name(dev), memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count,
                   capability=f'{p.major}.{p.minor}', cudnn=torch.backends.cudnn.version())
        with contextlib.suppress(Exception):
            env['driver'] = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                                           capture_output=True, text=True, timeout=20).stdout.strip()
    with contextlib.suppress(Exception):
        import diffusers; env['diffusers'] = diffusers.__version__
    with contextlib.suppress(Exception):
        import timm; env['timm'] = timm.__version__
    with contextlib.suppress(Exception):
        env['commit'] = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=REPO, timeout=10).stdout.strip() or None
    return env

def render(rows, env, total_s, md=False) -> str:
    cols = ('section', 'setting', 'figure', 'unit', 'note')
    cells = [[f"{r['section']} {SECTIONS.get(r['section'], '')}".strip(), r['setting'], fmt(r['figure']), r['unit'], r['note']] for r in rows]
    head = (f"ddnb GPU check{' (DRY RUN: tiny sizes on ' + env['device'] + ')' if env.get('dry_run') else ''} — {env['device_name']} "
            f"({env['device']}), torch {env['torch']}, CUDA {env['cuda']}, python {env['python']}"
            + (f", driver {env['driver']}" if env.get('driver') else '') + f"; total {total_s:.0f} s")
    if md:
        esc = lambda s: str(s).replace('|', '\\|')
        return '\n'.join([f'# {head}', '', '| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)] +
                         ['| ' + ' | '.join(esc(c) for c in row) + ' |' for row in cells]) + '\n'
    w = [max(len(str(c)) for c in col) for col in zip(cols, *cells)]
    w[1], w[4] = min(w[1], 70), min(w[4], 100)
    line = lambda row: '  '.join((str(c)[:w[i]].rjust(w[i]) if i == 2 else str(c)[:w[i]].ljust(w[i])) for i, c in enumerate(row)).rstrip()
    return '\n'.join([head, line(cols), line(['-' * x for x in w])] + [line(r) for r in cells])

def measure(a) -> int:
    t_start = time.perf_counter()
    import torch
    dev = torch.device(a.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        print(f"[gpu-check] --device {a.device}: CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda})"); return 2
    if a.threads: torch.set_num_threads(a.threads)
    ctx = Ctx(a, dev)
    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.prefix = 'gpu-check-dry-run' if a.dry_run else 'gpu-check'
    env = environment(dev); env['dry_run'] = a.dry_run
    ctx.device_name = env['device_name']
    print(f"[gpu-check] {env['device_name']} ({dev}), torch {env['torch']}, CUDA {env['cuda']}, python {env['python']}, "
          f"{env['threads']} threads; sections {' '.join(map(str, a.sections))}; out {ctx.out}", flush=True)
    T = Table()
    budgets = dict(BUDGET_DRY if a.dry_run else BUDGET_GPU)
    for spec in a.budget_s or []:
        if '=' in spec: k, v = spec.split('=', 1); budgets[int(k)] = float(v)
        else: budgets = {k: float(spec) for k in budgets}
    def write() -> float:
        total = time.perf_counter() - t_start
        rows = sorted(T.rows, key=lambda r: r['section'])   # stable: each section's rows in their order
        (ctx.out/f'{ctx.prefix}.json').write_text(json.dumps({'environment': env, 'total_s': total, 'args': vars(a), 'rows': rows}, indent=1, default=str))
        (ctx.out/f'{ctx.prefix}.md').write_text(render(rows, env, total, md=True))
        return total
    def on_alarm(signum, frame): raise SectionTimeout()
    signal.signal(signal.SIGALRM, on_alarm)
    errors = 0
    for num in a.sections:
        left = a.total_budget_s - (time.perf_counter() - t_start)
        budget = min(budgets[num], left)
        n0, t0 = len(T.rows), time.perf_counter()
        ctx.budget_left = lambda t0=t0, budget=budget: budget - (time.perf_counter() - t0)
        print(f"[gpu-check] section {num} ({SECTIONS[num]}), budget {budget:.0f} s …", flush=True)
        if budget < 5:
            T.add(num, 'skipped', None, '', f'total budget {a.total_budget_s:.0f} s spent'); continue
        try:
            signal.setitimer(signal.ITIMER_REAL, budget)
            RUNNERS[num](ctx, T)
        except SectionTimeout:
            T.add(num, 'stopped: budget', None, '', f'{budget:.0f} s budget spent; the rows above are what finished')
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt): raise
            errors += 1
            msg = f'{type(e).__name__}: {e}'.replace('\n', ' ')
            T.add(num, 'ERROR', None, '', msg[:300])
            with open(ctx.out/f'{ctx.prefix}-errors.log', 'a') as f: f.write(f'--- section {num}\n{traceback.format_exc()}\n')
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            gc.collect()
            if dev.type == 'cuda':
                with contextlib.suppress(Exception): torch.cuda.empty_cache()
        T.add(num, 'section wall time', time.perf_counter() - t0, 's', f'budget {budget:.0f} s')
        for r in T.rows[n0:]: print(f"    {r['setting']}: {fmt(r['figure'])} {r['unit']}  {r['note'][:160]}", flush=True)
        write()   # after every section: a run killed from outside still leaves the sections that finished
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    total = write()
    print('\n' + render(sorted(T.rows, key=lambda r: r['section']), env, total))
    print(f"\n[gpu-check] {len(T.rows)} rows, {errors} section error(s), {total:.0f} s; written to {ctx.out/ctx.prefix}.json and .md")
    return 1 if errors else 0

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='gpu_check.py', description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dry-run', action='store_true', help='CPU-sized run of every path: tiny DiT, small dims, 16 px, 1 epoch, reproduce --plan')
    p.add_argument('--device', default='cuda')
    p.add_argument('--sections', type=int, nargs='+', default=[1, 2, 3, 5, 4], choices=sorted(SECTIONS),
                   help='in this order (default 1 2 3 5 4: the open-ended paper-tiny run last)')
    p.add_argument('--budget-s', nargs='+', default=None, help=f'seconds per section: one number for all, or N=S pairs (default GPU {BUDGET_GPU}, dry run {BUDGET_DRY})')
    p.add_argument('--total-budget-s', type=float, default=None, help='all sections together (default 480 on the GPU: with the wheel install and start-up under 10 min; 400 dry run)')
    p.add_argument('--out', default=str(REPO/'gpu-check'), help='folder of the JSON and markdown table (on the device machine pass $OUT)')
    p.add_argument('--threads', type=int, default=None)
    g = p.add_argument_group('sizes (defaults: GPU / dry run)')
    g.add_argument('--dit-batch', type=int, nargs='+', default=None, help='section 1: batches (64 / 4)')
    g.add_argument('--dit-steps', type=int, default=None, help='sections 1 and 5: timed forwards (20 / 2)')
    g.add_argument('--d3hr-dims', type=int, default=None, help='section 2: latent dims (4096 = DiT-XL/2 latents / 256)')
    g.add_argument('--d3hr-ipc', type=int, default=None, help='section 2: group size (10 / 4)')
    g.add_argument('--d3hr-chunk', type=int, default=None, help="section 2: official chunk (10000 / 512)")
    g.add_argument('--d3hr-m', type=int, default=None, help='section 2: candidate groups (default: sized to --d3hr-seconds)')
    g.add_argument('--d3hr-seconds', type=float, default=None, help='section 2: target seconds of the slowest timed run (4 / 0.5)')
    g.add_argument('--students', nargs='+', default=['convnet', 'resnetap10', 'resnet18'])
    g.add_argument('--student-k', type=int, nargs='+', default=None, help='section 3: batched students K (1 4 16 / 1 2 5)')
    g.add_argument('--student-size', type=int, default=None, help='section 3: px (224 = the recipe / 16)')
    g.add_argument('--student-ipc', type=int, default=None, help='section 3: images per class of the random sets (10 / 2)')
    g.add_argument('--student-epochs', type=int, default=None, help='section 3: epochs timed (2 / 1)')
    g.add_argument('--student-seq', type=int, default=None, help='section 3: students timed sequentially (4 / 2)')
    g.add_argument('--paper-tiny-only', nargs='+', default=None, help='section 4: --only of the run (default: all cells / d3hr/tableA5)')
    g.add_argument('--paper-tiny-plan', action=argparse.BooleanOptionalAction, default=None, help='section 4: --plan only (default: no / yes)')
    g.add_argument('--compile-batch', type=int, default=None, help='section 5 (64 / 4)')
    g.add_argument('--compile-backend', default=None, help="section 5 (inductor / eager: dynamo's trace without code generation, minutes faster on 2 cores)")
    g.add_argument('--compile-mode', default=None, help='section 5: torch.compile mode (default None)')
    return p

def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['wheels-download']:
        p = argparse.ArgumentParser(prog='gpu_check.py wheels-download')
        p.add_argument('--dir', default=str(REPO/'.wheels'))
        p.add_argument('--versions', nargs='+', default=['3.12'], help="target pythons (default 3.12: the lent GPU machines' python)")
        p.add_argument('--bare', action='store_true', help="also the compiled wheels the GPU machines' image already has (scipy, scikit-learn, pandas, matplotlib, …)")
        return wheels_download(p.parse_args(argv[1:]))
    if argv[:1] == ['wheels-install']:
        p = argparse.ArgumentParser(prog='gpu_check.py wheels-install')
        p.add_argument('--dir', default=str(REPO/'.wheels'))
        p.add_argument('--site', required=True)
        return wheels_install(p.parse_args(argv[1:]))
    a = parser().parse_args(argv)
    dry = a.dry_run
    defaults = dict(dit_batch=[4] if dry else [64], dit_steps=2 if dry else 20, d3hr_dims=256 if dry else 4096, d3hr_ipc=4 if dry else 10,
                    d3hr_chunk=512 if dry else 10_000, d3hr_seconds=0.5 if dry else 4.0, student_size=16 if dry else None,
                    student_ipc=2 if dry else 10, student_k=[1, 2, 5] if dry else [1, 4, 16], student_epochs=1 if dry else 2, student_seq=2 if dry else 4,
                    paper_tiny_only=['d3hr/tableA5'] if dry else None, paper_tiny_plan=dry, compile_batch=4 if dry else 64,
                    compile_backend='eager' if dry else 'inductor', total_budget_s=400 if dry else 480)
    for k, v in defaults.items():
        if getattr(a, k) is None: setattr(a, k, v)
    if dry and a.device == 'cuda' and '--device' not in argv: a.device = 'cpu'
    return measure(a)

if __name__ == '__main__':
    sys.exit(main())
