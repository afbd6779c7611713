"""Every table of every committed report renders on a GFM renderer (issue 23): markdown-it-py with tables counts the
tables it renders against the delimiter rows written. An unescaped `|` inside a cell (e.g. a header "largest |Δ|")
splits the row, and GitHub then shows the whole table as text."""
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
    from ddnb.reproduce import markdown_table
    markdown_it = pytest.importorskip('markdown_it')
    t = markdown_table([{'largest |Δ| (tol)': 'a | b'}], ['largest |Δ| (tol)'])
    toks = markdown_it.MarkdownIt('commonmark').enable('table').parse(t)
    assert [x.type for x in toks].count('th_open') == 1 and [x.type for x in toks].count('td_open') == 1
