"""The docs site as a reader sees it (issue 23, point 4): headless Chromium loads the index, a lesson and the mini
report; figures must be loaded (naturalWidth > 0) and tables rendered; a crawler over the built HTML finds no broken
internal link (file or #anchor). Screenshots go to .docs-shots/ (git-ignored).

Builds a small site (two lessons, the reports, the API reference) in a temporary folder with docs/build.py, from this
checkout, so a stale `_docs/` is never what is tested; `DDNB_DOCS_SITE=_docs` checks a site `make docs` built instead. Skipped when Chromium, chromedriver or
selenium are missing (Debian: apt-get install chromium chromium-driver; pip: selenium).
"""
import functools, http.server, os, re, shutil, subprocess, sys, threading, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
DRIVER = shutil.which('chromedriver')
pytestmark = [pytest.mark.xdist_group('b'),
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason='headless Chromium and chromedriver are not installed '
                                 '(Debian: apt-get install chromium chromium-driver)')]
SMALL = ['00_core', '09_distilled']      # the lessons of the small site: both execute in seconds

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    if os.environ.get('DDNB_DOCS_SITE'):
        built = Path(os.environ['DDNB_DOCS_SITE'])
        assert (built/'index.html').exists(), f'DDNB_DOCS_SITE={built}: no index.html there (run make docs)'
        return built
    tmp = tmp_path_factory.mktemp('docs')
    r = subprocess.run([sys.executable, str(ROOT/'docs'/'build.py'), '--only', ','.join(SMALL), '--jobs', '2',
                        '--out', str(tmp/'site'), '--work', str(tmp/'work')], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return tmp/'site'

# ---- the link checker: every href/src of every page, resolved on disk, #anchors looked up in the target ----
class _Page(HTMLParser):
    def __init__(self):
        super().__init__(); self.links, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ('id', 'name'):
            if a.get(k): self.ids.add(a[k])
        for k in ('href', 'src'):
            if a.get(k) and not (tag == 'link' and 'preconnect' in (a.get('rel') or '')): self.links.append(a[k])

@functools.cache
def _parse(path):
    p = _Page(); p.feed(Path(path).read_text(encoding='utf-8', errors='replace')); return p

def broken_links(site):
    "Internal links of every HTML page of `site` whose file or anchor is missing, as 'page: link' lines"
    bad = []
    for page in sorted(site.rglob('*.html')):
        for link in _parse(page).links:
            u = urlsplit(link)
            if u.scheme or u.netloc or link.startswith(('#', 'javascript:')) and not link[1:]: continue
            target = (page.parent/unquote(u.path)).resolve() if u.path else page
            if target.is_dir(): target = target/'index.html'
            if site.resolve() not in target.parents and target != site.resolve(): bad.append(f'{page.relative_to(site)}: {link} (outside the site)'); continue
            if not target.exists(): bad.append(f'{page.relative_to(site)}: {link}'); continue
            if u.fragment and target.suffix == '.html' and unquote(u.fragment) not in _parse(target).ids:
                bad.append(f'{page.relative_to(site)}: {link} (no such anchor)')
    return bad

def test_no_broken_internal_links(site):
    pages = list(site.rglob('*.html'))
    assert len(pages) > 10
    bad = broken_links(site)
    assert not bad, f'{len(bad)} broken internal links:\n' + '\n'.join(bad[:40])

# ---- the browser ----
@pytest.fixture(scope='module')
def served(site):
    handler = functools.partial(type('Quiet', (http.server.SimpleHTTPRequestHandler,), {'log_message': lambda *a: None}),
                                directory=str(site))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}'
    srv.shutdown(); srv.server_close()

@pytest.fixture(scope='module')
def browser():
    webdriver = pytest.importorskip('selenium.webdriver', reason='selenium is not installed (pip install selenium)')
    os.environ.setdefault('SE_OFFLINE', 'true')        # never let Selenium Manager look for drivers online
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,1000',
              '--hide-scrollbars'):
        opts.add_argument(a)
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    d.set_page_load_timeout(60)
    yield d
    d.quit()

SHOTS = ROOT/'.docs-shots'
_STATE = """
const imgs = [...document.images];
return {title: document.title, tables: document.querySelectorAll('article table').length,
        cells: document.querySelectorAll('div.cell').length, outputs: document.querySelectorAll('div.cell_output').length,
        h1: [...document.querySelectorAll('h1')].map(h => h.textContent),
        images: imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth}))};
"""

def load(browser, url, shot=None):
    browser.get(url)
    for _ in range(100):                              # wait for the page and every image (scrolled into view: lazy ones)
        done = browser.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager');"
                                      "return document.readyState === 'complete' && [...document.images].every(i => i.complete)")
        if done: break
        time.sleep(0.1)
    st = browser.execute_script(_STATE)
    if shot:
        SHOTS.mkdir(exist_ok=True); browser.execute_script("window.scrollTo({top: 0, behavior: 'instant'})"); browser.save_screenshot(str(SHOTS/shot))
    return st

def test_index_lesson_report_in_chromium(site, served, browser):
    idx = load(browser, f'{served}/index.html', 'index.png')
    assert 'ddnb' in idx['title'] and idx['tables'] >= 1, idx
    lessons = sorted(p for p in site.glob('*.html') if p.stem not in ('index', 'genindex', 'search', 'py-modindex'))
    assert lessons, 'no lesson page in the site'
    lesson = next((p for p in lessons if p.stem == 'core'), lessons[0])
    les = load(browser, f'{served}/{lesson.name}', 'lesson.png')
    assert les['cells'] > 3 and les['outputs'] >= 1, les     # code cells with their outputs (executed at build)
    assert all(i['ok'] for i in les['images']), [i for i in les['images'] if not i['ok']]
    rep = load(browser, f'{served}/reports/mini/index.html', 'report.png')
    figs = [i for i in rep['images'] if 'figures/' in (i['src'] or '') or '_images/' in (i['src'] or '')]
    assert len(figs) >= 5 and all(i['ok'] for i in rep['images']), [i for i in rep['images'] if not i['ok']] or rep
    assert rep['tables'] >= 5, rep                           # the report's tables are rendered as <table>
    # the report with a figure in view, as a reader scrolling down would see it
    browser.execute_script("const i = [...document.querySelectorAll('article img')].find(i => i.naturalWidth > 200);"
                           "if (i) window.scrollTo({top: i.getBoundingClientRect().top + window.scrollY - 120, behavior: 'instant'});")
    time.sleep(0.5)                                          # furo scrolls smoothly: let it settle
    browser.save_screenshot(str(SHOTS/'report-figure.png'))
    api = load(browser, f'{served}/api/core.html')
    assert browser.find_elements('css selector', 'dl.py'), 'the API page lists no documented object'
