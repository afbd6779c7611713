"""Build the docs site offline (`make docs`): lessons with their outputs, the reports, the API reference.

    python docs/build.py [--only 00_core,09_distilled] [--jobs 2] [--out _docs] [--work .docs-build]

1. Every lesson notebook `nbs/*.ipynb` (pipeline order) is executed as `nbdev_test` executes it (cwd `nbs/`,
   `IN_TEST=1`, cells flagged with settings.ini's `tst_flags` or `#| eval: false` skipped), each in its own process,
   `--jobs` at a time, longest first. An executed copy is cached in `<work>/cache/`, keyed by the notebook's bytes, every
   `ddnb/*.py` and the interpreter, so a rebuild re-runs only what changed.
2. The executed copies are turned into pages: `#| hide` cells and `nbdev_export()` dropped, `#|` directive lines
   stripped; each page is named as nbdev names it (`00_core.ipynb` -> `core.html`, matching `ddnb/_modidx.py`).
3. Every `reports/<profile>/README.md` becomes `reports/<profile>/index.html`, with the files it links (its figures).
4. The API reference: one page per `ddnb` module (Sphinx autodoc; nbdev docments become parameter lists).
5. The index page is README.md, its notebook table linked to the lessons.
Then Sphinx (myst-nb, furo theme) writes the site to `--out`. Nothing here needs a network.
"""
import argparse, concurrent.futures as cf, hashlib, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+):?\s*(.*)$')

def page_name(stem):
    "nbdev's page name of a notebook: `13a_artefacts` -> `artefacts`"
    return re.sub(r'^\d+[a-z]?_', '', stem)

def directives(src):
    "The `#| name value` lines at the top of a code cell, as {name: value}"
    out = {}
    for line in src.splitlines():
        m = DIRECTIVE.match(line)
        if m: out[m.group(1).lower()] = m.group(2).strip()
        elif line.strip(): break
    return out

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _tst_flags():
    import configparser
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())

# ---- 1. execution (one notebook per process) ----
def exec_one(src, dest):
    "Execute notebook `src` as nbdev_test does and write it, with its outputs, to `dest`"
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    os.environ['IN_TEST'] = '1'
    src, dest, flags = Path(src).resolve(), Path(dest).resolve(), _tst_flags()
    nb = read_nb(src)
    def _no_eval(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export' + '(' in cell.source: return True
        d = directives(cell.source)
        if d.get('eval', '').lower() == 'false': return True
        return bool(flags & d.keys())
    k = CaptureShell(src)
    os.chdir(src.parent)
    sys.path.insert(0, str(ROOT))
    try: k.run_all(nb, exc_stop=True, preproc=_no_eval)
    except Exception:
        sys.stderr.write(k.prettytb(fname=src) + '\n'); sys.exit(1)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix('.tmp'); write_nb(nb, tmp); tmp.replace(dest)

def code_key():
    h = hashlib.sha256(sys.version.encode())
    for p in sorted((ROOT/'ddnb').glob('*.py')):
        if p.name == '_modidx.py': continue             # nbdev's doc links, not code
        h.update(p.name.encode()); h.update(p.read_bytes())
    h.update(' '.join(sorted(_tst_flags())).encode())
    return h.hexdigest()

def execute_all(nbs, cache, jobs):
    "Executed copies of `nbs` (cached), running the missing ones `jobs` at a time; returns {stem: path}"
    cache.mkdir(parents=True, exist_ok=True)
    ck, tfile = code_key(), cache/'timings.json'
    timings = json.loads(tfile.read_text()) if tfile.exists() else {}
    out, todo = {}, []
    for nb in nbs:
        key = hashlib.sha256(nb.read_bytes() + ck.encode()).hexdigest()[:16]
        out[nb.stem] = dest = cache/f'{nb.stem}.{key}.ipynb'
        if not dest.exists(): todo.append((nb, dest))
    print(f'docs: {len(nbs) - len(todo)} of {len(nbs)} lessons from the execution cache, {len(todo)} to run, {jobs} at a time', flush=True)
    todo.sort(key=lambda t: -timings.get(t[0].stem, 60))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'), DDNB_PROGRESS='0', PYTHONPATH=str(ROOT))
    def run(item):
        nb, dest = item; t0 = time.time()
        r = subprocess.run([sys.executable, __file__, '--exec', str(nb), str(dest)], env=env, capture_output=True, text=True)
        return nb, r, time.time() - t0
    failed = []
    with cf.ThreadPoolExecutor(max(1, jobs)) as ex:
        for nb, r, dt in ex.map(run, todo):
            print(f'  executed {nb.name}: {dt:.1f} s' + ('' if r.returncode == 0 else ' FAILED'), flush=True)
            if r.returncode: failed.append(nb.name); sys.stderr.write(r.stdout[-3000:] + r.stderr[-6000:])
            else: timings[nb.stem] = round(dt, 1)
    tfile.write_text(json.dumps(timings, indent=1, sort_keys=True))
    for p in cache.glob('*.ipynb'):   # drop stale executions
        if p not in out.values(): p.unlink()
    if failed: sys.exit(f'docs: lessons failed to execute: {", ".join(failed)}')
    return out

# ---- 2. pages from executed notebooks ----
def to_page(executed, dest):
    nb = json.loads(Path(executed).read_text(encoding='utf-8'))
    cells = []
    for i, c in enumerate(nb['cells']):
        src = _src(c)
        if c['cell_type'] == 'code':
            d = directives(src)
            if 'hide' in d or d.get('include', '').lower() == 'false' or 'nbdev_export' + '(' in src: continue
            src = '\n'.join(l for l in src.splitlines() if not DIRECTIVE.match(l)).strip('\n')
            if not src.strip(): continue
            tags = []
            if d.get('echo', '').lower() == 'false': tags.append('remove-input')
            if d.get('output', '').lower() == 'false': tags.append('remove-output')
            c['metadata'] = {'tags': tags} if tags else {}
            c.setdefault('outputs', []); c.setdefault('execution_count', None)
        c['source'] = src
        c['id'] = c.get('id') or f'c{i}'
        cells.append(c)
    nb['cells'] = cells
    nb['nbformat'], nb['nbformat_minor'] = 4, 5
    nb['metadata'] = {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
                      'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')

# ---- 3. reports ----
LINK = re.compile(r'\]\(([^)\s#]+)(#[^)\s]*)?\)')

def copy_report(readme, dest_dir):
    "reports/<p>/README.md -> <dest_dir>/index.md, with every relative file it links"
    dest_dir.mkdir(parents=True, exist_ok=True)
    text = readme.read_text(encoding='utf-8')
    for m in LINK.finditer(text):
        target = m.group(1)
        if re.match(r'^[a-z]+:', target): continue
        src = (readme.parent/target).resolve()
        if src.is_file() and readme.parent.resolve() in src.parents:
            d = dest_dir/src.relative_to(readme.parent.resolve()); d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, d)
    (dest_dir/'index.md').write_text(text, encoding='utf-8')

# ---- 4. API reference ----
def api_pages(src_dir):
    mods = sorted(p.stem for p in (ROOT/'ddnb').glob('*.py') if not p.stem.startswith('_'))
    (src_dir/'api').mkdir(parents=True, exist_ok=True)
    for m in mods:
        t = f'ddnb.{m}'
        (src_dir/'api'/f'{m}.rst').write_text(f'{t}\n{"=" * len(t)}\n\n.. automodule:: {t}\n   :members:\n   :show-inheritance:\n')
    (src_dir/'api'/'index.rst').write_text('API reference\n=============\n\nOne page per module of `ddnb`, from its docstrings '
        'and the docments (the comments beside each parameter) of the lesson notebooks that export it.\n\n'
        '.. toctree::\n   :maxdepth: 1\n\n' + ''.join(f'   {m}\n' for m in mods))
    return mods

# ---- 5. index ----
def index_page(src_dir, lessons, reports):
    text = (ROOT/'README.md').read_text(encoding='utf-8')
    stems = {nb.stem: page_name(nb.stem) for nb in lessons}
    # the README's notebook table: `00_core` -> a link to the lesson page (only lessons this site has)
    text = re.sub(r'^\| `(\w+)` \|', lambda m: f'| [`{m.group(1)}`]({stems[m.group(1)]}.ipynb) |' if m.group(1) in stems else m.group(0),
                  text, flags=re.M)
    for p in reports: text = text.replace(f'`reports/{p}/README.md`', f'[`reports/{p}/README.md`](reports/{p}/index.md)')
    toc = ('\n\n```{toctree}\n:caption: Lessons (pipeline order)\n:maxdepth: 1\n:hidden:\n\n' + ''.join(f'{page_name(nb.stem)}\n' for nb in lessons)
           + '```\n\n```{toctree}\n:caption: Reports\n:maxdepth: 1\n:hidden:\n\n' + ''.join(f'reports/{p}/index\n' for p in reports)
           + '```\n\n```{toctree}\n:caption: Reference\n:maxdepth: 1\n:hidden:\n\napi/index\n```\n')
    first_h2 = text.find('\n## ')
    contents = ('\n\n**This site:** the lesson notebooks with their outputs ('
                + ', '.join(f'[{nb.stem}]({page_name(nb.stem)}.ipynb)' for nb in lessons) + '); the reports ('
                + ', '.join(f'[{p}](reports/{p}/index.md)' for p in reports) + '); the [API reference](api/index.rst).\n')
    text = text[:first_h2] + contents + text[first_h2:] if first_h2 > 0 else text + contents
    (src_dir/'index.md').write_text(text + toc, encoding='utf-8')

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--exec', nargs=2, metavar=('SRC', 'DEST'), help='(internal) execute one notebook')
    ap.add_argument('--only', default='', help='comma-separated lesson stems (default: every nbs/*.ipynb)')
    ap.add_argument('--jobs', type=int, default=2, help='lessons executed at once')
    ap.add_argument('--out', default=str(ROOT/'_docs'))
    ap.add_argument('--work', default=str(ROOT/'.docs-build'), help='sources and the execution cache')
    a = ap.parse_args()
    if a.exec: return exec_one(*a.exec)
    t0, work, out = time.time(), Path(a.work).resolve(), Path(a.out).resolve()
    lessons = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    if a.only:
        only = set(a.only.split(','))
        lessons = [p for p in lessons if p.stem in only or page_name(p.stem) in only]
        if len(lessons) != len(only): sys.exit(f'docs: no such lessons: {only - {p.stem for p in lessons}}')
    executed = execute_all(lessons, work/'cache', a.jobs)
    src = work/'src'
    shutil.rmtree(src, ignore_errors=True); src.mkdir(parents=True)
    shutil.copy2(ROOT/'docs'/'conf.py', src/'conf.py')
    for nb in lessons: to_page(executed[nb.stem], src/f'{page_name(nb.stem)}.ipynb')
    reports = sorted(p.parent.name for p in (ROOT/'reports').glob('*/README.md'))
    for p in reports: copy_report(ROOT/'reports'/p/'README.md', src/'reports'/p)
    api_pages(src)
    index_page(src, lessons, reports)
    html = work/'html'                 # built inside <work> (myst-nb writes jupyter_execute/ beside it), then moved to --out
    shutil.rmtree(html, ignore_errors=True)
    r = subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-j', str(max(1, a.jobs)), '-d', str(work/'doctrees'), str(src), str(html)],
                       env=dict(os.environ, PYTHONPATH=str(ROOT), DDNB_ROOT=str(ROOT)))
    if r.returncode: sys.exit('docs: sphinx-build failed')
    shutil.rmtree(out, ignore_errors=True); out.parent.mkdir(parents=True, exist_ok=True); shutil.move(str(html), str(out))
    print(f'docs: {len(lessons)} lessons, reports {reports}, site in {out} ({time.time() - t0:.0f} s); open {out}/index.html')

if __name__ == '__main__': main()
