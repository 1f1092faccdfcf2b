"`convnotes reproduce`: bad arguments exit 2 with the valid choices; a failure mid-way keeps finished runs."
import json, subprocess
import pytest
from conftest import convnotes_command
import convnotes.comparison as comparison
from convnotes.experiments import EXPERIMENTS, load_records

def cli(*args, **kw):
    "Run the `convnotes` command"
    return subprocess.run([*convnotes_command(), *args], capture_output=True, text=True, **kw)

@pytest.mark.parametrize('args,expected', [
    (['reproduce', '--only', 'bs1024'], 'choose from: ' + ', '.join(EXPERIMENTS)),
    (['reproduce', '--seeds', 'three'], "must be a positive integer, got 'three'"),
    (['reproduce', '--seeds', '-1'], "must be a positive integer, got '-1'"),
    (['train'], "invalid choice: 'train'"),
])
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, args, expected):
    res = cli(*args, '--out', str(tmp_path/'out')) if args[0]=='reproduce' else cli(*args)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr
    assert not (tmp_path/'out').exists()  # nothing ran, nothing was written

def test_failure_mid_way_keeps_finished_runs(tmp_path, monkeypatch):
    real_run, calls = comparison.run_experiment, []
    def run_then_fail(exp, seed, **kw):
        calls.append((exp.name, seed))
        if len(calls) == 2: raise RuntimeError('power cut')
        return real_run(exp, seed, **kw)
    monkeypatch.setattr(comparison, 'run_experiment', run_then_fail)
    with pytest.raises(RuntimeError, match='power cut'):
        comparison.reproduce(['bs512'], seeds=2, out=tmp_path, progress=False)
    recs = load_records(tmp_path/'results.json')
    assert [(r.experiment, r.seed) for r in recs] == [('bs512', 42)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['results.json']  # no partial report, no temp files

def test_reproduce_cli_writes_the_report(tmp_path):
    res = cli('reproduce', '--only', 'bs512,batchnorm_before', '--seeds', '1', '--out', str(tmp_path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()   # not a terminal: no progress bars, a line per run and one for the report
    assert [l.split(':')[0] for l in lines[:2]] == ['bs512 seed 42', 'batchnorm_before seed 42'], res.stdout
    assert len(lines) == 3 and lines[2].startswith(f'wrote {tmp_path}/results.json') and '\r' not in res.stdout
    md = (tmp_path/'results.md').read_text()
    assert '| bs512 |' in md and 'book accuracy' in md
    rows = md.splitlines()[4:6]
    assert rows[0].endswith('| 0.1135 |') and rows[1].endswith('|  |')  # no book value: blank, not nan
    recs = json.loads((tmp_path/'results.json').read_text())
    assert [(r['experiment'], r['seed']) for r in recs] == [('bs512', 42), ('batchnorm_before', 42)]
    for png in ('near_zero.png', 'accuracy.png'): assert (tmp_path/png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
