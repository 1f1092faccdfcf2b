"""`convnotes sweep` as a user runs it: it goes on from what its folder holds, shards merged equal one sweep, and
Ctrl-C keeps every finished run. Each test trains a handful of one-epoch runs at bs 1024 (a few seconds each)."""
import json, os, signal, subprocess, time
import pytest
from conftest import convnotes_command
from convnotes.collapse_map import read_runs, load_sweep

TINY = ['--lrs', '0.3', '--bss', '1024', '--recipes', 'fit']   # one cell: the book's collapse, fast

def cli(*args, **kw):
    "Run the `convnotes` command"
    return subprocess.run([*convnotes_command(), *map(str, args)], capture_output=True, text=True, **kw)

def comparable(runs):
    "What must be equal between two sweeps of one grid on one machine: everything but the time each run took"
    return sorted((r.key, {k: v for k, v in vars(r).items() if k != 'seconds'}) for r in runs)

def test_a_second_sweep_trains_nothing_and_shards_merge_into_the_same_runs(tmp_path):
    whole, parts = tmp_path/'whole', tmp_path/'parts'
    res = cli('sweep', *TINY, '--seeds', 2, '--out', whole)
    assert res.returncode == 0, res.stderr
    assert {p.name for p in whole.iterdir()} >= {'runs.jsonl', 'sweep.json', 'sweep.md', 'collapse_map.png', 'accuracy_map.png', 'time_to_death.png'}
    again = cli('sweep', *TINY, '--seeds', 2, '--out', whole)
    assert again.returncode == 0 and '2 already in' in again.stdout and '0 to train' in again.stdout and 'trained' not in again.stdout
    for i in (0, 1): assert cli('sweep', *TINY, '--seeds', 2, '--shard', f'{i}/2', '--out', parts).returncode == 0
    assert sorted(p.name for p in parts.glob('runs*.jsonl')) == ['runs-0of2.jsonl', 'runs-1of2.jsonl']
    assert not (parts/'sweep.json').exists()   # a shard alone is not the whole grid
    res = cli('sweep', '--merge', '--out', parts)
    assert res.returncode == 0, res.stderr
    assert comparable(load_sweep(parts/'sweep.json')[2]) == comparable(load_sweep(whole/'sweep.json')[2])

def test_merge_refuses_an_incomplete_grid(tmp_path):
    assert cli('sweep', *TINY, '--seeds', 2, '--shard', '0/2', '--out', tmp_path).returncode == 0
    (tmp_path/'runs-0of2.jsonl').write_text((tmp_path/'runs-0of2.jsonl').read_text().replace('"seed": 42', '"seed": 44'))
    res = cli('sweep', '--merge', '--out', tmp_path)
    assert res.returncode == 2 and res.stderr.count('\n') == 1 and 'runs of the grid are missing' in res.stderr

def interrupt_after_first_run(args, results):
    "Start `convnotes *args`, press Ctrl-C once `results` holds a finished run, and return what it printed and exited with"
    p = subprocess.Popen([*convnotes_command(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)   # a process group of its own, as a terminal gives a command
    deadline = time.time() + 300
    while not (results.exists() and results.read_text().strip()) and time.time() < deadline and p.poll() is None: time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)                          # what Ctrl-C does: SIGINT to the whole foreground group
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err

def test_ctrl_c_keeps_every_finished_run_and_the_sweep_goes_on_from_there(tmp_path):
    code, out, err = interrupt_after_first_run(['sweep', *TINY, '--seeds', 6, '--jobs', 2, '--out', tmp_path], tmp_path/'runs.jsonl')
    kept = read_runs(tmp_path/'runs.jsonl')
    assert code == 130 and 'Traceback' not in err, err
    assert f"interrupted; {len(kept)} finished run{'s'*(len(kept) != 1)} kept in {tmp_path}; run the same command again" in err
    assert 1 <= len(kept) < 6 and not (tmp_path/'sweep.json').exists()
    res = cli('sweep', *TINY, '--seeds', 6, '--jobs', 2, '--out', tmp_path)
    assert res.returncode == 0 and f"{len(kept)} already in" in res.stdout and f"{6 - len(kept)} to train" in res.stdout
    assert sorted(r.seed for r in read_runs(tmp_path/'runs.jsonl')) == list(range(42, 48))   # each run once

def test_ctrl_c_in_reproduce_keeps_finished_runs(tmp_path):
    code, _, err = interrupt_after_first_run(['reproduce', '--only', 'bs512', '--seeds', 3, '--out', tmp_path], tmp_path/'results.json')
    n = len(json.loads((tmp_path/'results.json').read_text()))
    assert code == 130 and 'Traceback' not in err and err.count('\n') == 1, err
    assert f"interrupted; {n} finished run{'s'*(n != 1)} kept in {tmp_path/'results.json'}; run the same command again" in err
    res = cli('reproduce', '--only', 'bs512', '--seeds', 3, '--out', tmp_path)
    assert res.returncode == 0 and res.stdout.count('finished earlier, kept') == n
