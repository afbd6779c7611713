# Sphinx configuration of the docs site; docs/build.py copies it into the generated sources and runs sphinx-build.
import configparser, os, re, sys
from pathlib import Path

ROOT = Path(os.environ.get('DDNB_ROOT', Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(ROOT))
_cfg = configparser.ConfigParser(); _cfg.read(ROOT/'settings.ini'); _cfg = _cfg['DEFAULT']

project, author, copyright = _cfg['title'], _cfg['author'], _cfg['copyright']
release = version = _cfg['version']
html_baseurl = _cfg['doc_host'].rstrip('/') + '/' + _cfg['doc_baseurl'].strip('/')
extensions = ['myst_nb', 'sphinx.ext.autodoc']
html_theme = 'furo'
html_title = project
html_show_sourcelink = False
html_copy_source = False

nb_execution_mode = 'off'          # docs/build.py executed the lessons (cached, in parallel)
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'colon_fence']
myst_heading_anchors = 3           # GitHub-style anchors for in-page links of the reports
suppress_warnings = ['myst.header', 'misc.highlighting_failure']
autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
exclude_patterns = ['_build', '**.ipynb_checkpoints']

_CODE = re.compile(r'(`+)(.+?)\1')

def _md_to_rst(text):
    "nbdev docstrings are Markdown: `code` spans become rst literals, lone * | and trailing _ are escaped"
    out, pos = [], 0
    def esc(t):
        t = t.replace('\\', '\\\\').replace('|', '\\|')
        t = re.sub(r'(?<![*])[*](?![*])', r'\\*', t)
        return re.sub(r'_(?=\W|$)', r'\\_', t)
    for m in _CODE.finditer(text):
        lit = '``' + m.group(2).strip() + '``' if m.group(2).strip() else ''
        before, after = text[m.start() - 1:m.start()], text[m.end():m.end() + 1]
        if lit and before and not (before.isspace() or before in '([{<\'"/-'): lit = '\\ ' + lit   # rst needs a break
        if lit and after and not (after.isspace() or after in ')]}>.,;:!?\'"/-'): lit += '\\ '      # around a literal
        out += [esc(text[pos:m.start()]), lit]; pos = m.end()
    return ''.join(out + [esc(text[pos:])])

def _markdown(app, what, name, obj, options, lines):
    lines[:] = [_md_to_rst(l) for l in lines]

def _docments(app, what, name, obj, options, lines):
    "nbdev docments (`x:int, # what x is`) as a parameter list under the docstring"
    if what not in ('function', 'method', 'class'): return
    try:
        from fastcore.docments import docments
        ds = docments(obj, full=True)
    except Exception: return
    rows = [(k, v.get('docment')) for k, v in ds.items() if k not in ('return', 'self', 'cls') and v.get('docment')]
    ret = (ds.get('return') or {}).get('docment')
    if not rows and not ret: return
    lines.append('')
    for k, d in rows: lines.append(f':param {k}: {_md_to_rst(d)}')
    if ret: lines.append(f':returns: {_md_to_rst(ret)}')

def setup(app):
    app.connect('autodoc-process-docstring', _markdown)
    app.connect('autodoc-process-docstring', _docments)
