"""Every table of every committed report renders on a GFM renderer (issue 23): markdown-it-py with tables counts the
tables it renders against the delimiter rows written. An unescaped `|` inside a cell (e.g. a header "largest |Δ|")
splits the row, and GitHub then shows the whole table as text."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = sorted((ROOT/'reports').glob('*/README.md'))


@pytest.mark.parametrize('readme', READMES, ids=lambda p: p.parent.name)
def test_every_table_renders(readme):
    markdown_it = pytest.importorskip('markdown_it')
    text = readme.read_text()
    written = sum(1 for line in text.splitlines() if line.startswith('|---'))
    rendered = sum(1 for tok in markdown_it.MarkdownIt('commonmark').enable('table').parse(text) if tok.type == 'table_open')
    assert written and rendered == written, f'{readme}: {rendered} of {written} tables render'


def test_markdown_table_escapes_pipes():
    from ddnb.report import markdown_table
    markdown_it = pytest.importorskip('markdown_it')
    t = markdown_table([{'largest |Δ| (tol)': 'a | b'}], ['largest |Δ| (tol)'])
    toks = markdown_it.MarkdownIt('commonmark').enable('table').parse(t)
    assert [x.type for x in toks].count('th_open') == 1 and [x.type for x in toks].count('td_open') == 1


# the committed reports of the two mini profiles: the first run (`mini`) and every sweep and ablation (`mini-full`)
MINI_PROFILES = ['mini', 'mini-full']
mini_profile = pytest.mark.parametrize('profile', MINI_PROFILES)


def _mini(profile):
    readme = ROOT/'reports'/profile/'README.md'
    assert readme.exists(), f'{readme} is not committed'
    return readme.read_text()


@mini_profile
def test_mini_report_opens_with_header_and_key_results(profile):
    text = _mini(profile)
    lines = text.splitlines()
    assert lines[0] == f'# ddnb report — profile `{profile}`'
    first_screen = '\n'.join(lines[:20])
    for what in ('| world |', '| dataset |', '8×8 px', '10 classes', 'width 32, depth', '| seeds |', '| accuracy |', '| ± |', 'epochs ', 'teacher'):
        assert what in first_screen, what
    order = [text.index(h) for h in ('## Contents', '## Key results', '## Paper claims, checked', '## Cost per method', '## Run-to-run check')]
    assert order == sorted(order), order
    assert all(len(l) <= 80 for l in lines if l.startswith('#')), [l for l in lines if l.startswith('#') and len(l) > 80]
    assert '(ref ' not in text and 'reproduced vs reference' not in text.lower()


@mini_profile
def test_mini_report_lists_every_claim(profile):
    from ddnb.claims import CLAIMS
    text = _mini(profile)
    claims = text[text.index('## Paper claims, checked'):]
    claims = claims[:claims.index('\n## ', 1)]
    assert 'comparisons**, Holm–Bonferroni at 5 %' in claims
    rows = [l for l in claims.splitlines() if l.startswith('| ') and not l.startswith('| # ')]
    assert len(rows) == len(CLAIMS), (len(rows), len(CLAIMS))
    verdicts = ('holds', 'does not hold', 'within noise', 'partly holds', 'mixed', 'untested (n = 1)', 'not run')
    assert all(any(f'| {v} |' in r or f'| **{v}** |' in r for v in verdicts) for r in rows)


@mini_profile
def test_mini_palette_one_style_per_method_and_every_figure_shown(profile):
    """The palette the renderer wrote (figures/palette.json: figure → method → colour, marker, line) gives each method one
    style across every figure; every figure under figures/ is shown in the README."""
    from ddnb.figures import palette_problems
    text, MINI = _mini(profile), ROOT/'reports'/profile
    palette = json.loads((MINI/'figures'/'palette.json').read_text())
    assert {'methods_vs_ipc.png', 'ims3-table4.png', 'd3hr-main.png', 'dmgd-main.png', 'igds-main.png'} <= set(palette)
    assert palette_problems(palette) == {}
    styles = {}
    for fig, drawn in palette.items():
        for name, style in drawn.items(): styles.setdefault(name, set()).add((style['color'], style['marker'], style['linestyle']))
    assert all(len(s) == 1 for s in styles.values()), {n: s for n, s in styles.items() if len(s) > 1}
    main = {n: next(iter(s)) for n, s in styles.items() if n in ('Random', 'Herding', 'K-Center', 'DiT', 'DiT+CFG', 'DDPM', 'Pixel-Gaussian',
                                                               'D3HR', 'Minimax', 'IMS3', 'DMGD', 'IGDS')}
    assert len({(c, m) for c, m, _ in main.values()}) == len(main), main          # no two methods share colour and marker
    shown = set(re.findall(r'\]\(figures/([^)]+)\)', text))
    written = {p.relative_to(MINI/'figures').as_posix() for p in (MINI/'figures').rglob('*.png')}
    assert written <= shown, sorted(written - shown)
    assert set(palette) <= shown
