"""The fault battery on a one-cell smoke grid: every injected fault is detected and recovered from, with the clean run's numbers.

`ddnb check` / `make faults` run the whole battery (every scenario, three cells and three stages); this runs each
fault class once on the `foundation` cell (pretraining stage) to stay inside the test command's time budget. Bad
result files are tested in `14_report` (`load_results`, the journal's verdicts), damaged stages in `00_core`."""
import pytest
from ddnb.faults import run_battery


@pytest.mark.xdist_group('a')
def test_fault_battery(tmp_path):
    b = run_battery(tmp_path, scenarios=('inputs', 'umask', 'kill', 'stage', 'code', 'sigterm', 'outputs', 'journal', 'leftovers',
                                         'concurrent', 'disk-full'), cells=('foundation',))
    print(b.table())
    assert b.all_good, b.table()
    assert len(b.rows) == 18 and all(r['detected'] for r in b.rows if r['detected'] is not None)
