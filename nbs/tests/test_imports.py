"""No import circles among ddnb modules (issue 23, point 1).

Every ddnb import counts, module level or inside a function (a deferred import still ties two modules together), as
`core.ddnb_imports_in` reads it: `from .x import`, `from ddnb.x import`, `from ddnb import x`, `import ddnb.x` (the
parser behind the code versions of cached work). Run `python nbs/tests/test_imports.py` to print the cycles.
"""
from pathlib import Path
import networkx as nx   # a dependency of torch
import ddnb
from ddnb.core import ddnb_imports_in

# No circle is left (the report moved out of reproduce.py into report.py, and artefacts no longer imports it).
# Any cycle fails the test; a deliberate exception would be pinned here, exactly.
PINNED = []

def import_graph() -> nx.DiGraph:
    "The modules of `ddnb/`, with an edge a → b where module a imports module b."
    g = nx.DiGraph()
    for p in sorted(Path(ddnb.__file__).parent.glob('*.py')):
        g.add_node(p.stem)
        g.add_edges_from((p.stem, m) for m in ddnb_imports_in(p.read_text(encoding='utf-8')) if m != p.stem)
    return g

def cycles(g: nx.DiGraph) -> list:
    "Every elementary import cycle of `g`, as sorted 'a -> b -> a' lines (each starting at its first module by name)."
    rotated = (c[c.index(min(c)):] + c[:c.index(min(c))] for c in nx.simple_cycles(g))
    return sorted(' -> '.join(c + [c[0]]) for c in rotated)

def test_function_level_imports_count():
    src = "import torch\ndef f():\n    from ddnb.world import World\n    import ddnb.grid\n    from . import dmgd\n"
    assert ddnb_imports_in(src) == {'world', 'grid', 'dmgd'}, ddnb_imports_in(src)

def test_no_import_cycle_beyond_the_pinned():
    found = cycles(import_graph())
    new, gone = sorted(set(found) - set(PINNED)), sorted(set(PINNED) - set(found))
    assert not new, 'import cycles among ddnb modules:\n  ' + '\n  '.join(new)
    assert not gone, f'pinned cycle(s) gone, remove them from PINNED in {__file__}:\n  ' + '\n  '.join(gone)

if __name__ == '__main__':
    print('import cycles among ddnb modules:', *(cycles(import_graph()) or ['none']), sep='\n  ')
    if PINNED: print('pinned:', *PINNED, sep='\n  ')
