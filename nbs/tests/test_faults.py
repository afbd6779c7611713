"""The fault battery on a small smoke grid: every injected fault is detected and recovered from, with the clean run's numbers.

`ddnb check` / `make faults` run the whole battery (every scenario, three cells); this runs the scenarios that cover
each fault class once, on two cells, to stay inside the test command's time budget."""
from ddnb.faults import run_battery


def test_fault_battery(tmp_path):
    b = run_battery(tmp_path, scenarios=('inputs', 'umask', 'kill', 'stage', 'leftovers', 'concurrent', 'disk-full'),
                    cells=('foundation', 'baseline-Random'))
    assert b.all_good, b.table()
    assert len(b.rows) >= 12 and all(r['detected'] for r in b.rows if r['detected'] is not None)
