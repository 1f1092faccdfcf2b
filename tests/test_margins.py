"""benchmarks/margins.py: chapters 05, 08 and 09's one-seed assertions over many seeds, checked on made-up runs. Each
assertion must fail for a seed whose runs break it, and only its own row counts the failure."""
import importlib.util
from dataclasses import asdict
import pytest
from conftest import ROOT
from convnotes.experiments import EXPERIMENTS, RunRecord, load_records, save_records

@pytest.fixture(scope='module')
def margins():
    spec = importlib.util.spec_from_file_location('margins', ROOT/'benchmarks'/'margins.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def layer(name, early, late): return dict(name=name, type='Conv2d', early=dict(near_zero=early), late=dict(near_zero=late))

def record(exp, seed, acc, vloss, early=0.5, late=0.6, bn_out_late=0.57, first_late=0.6):
    "A made-up run of `exp`: what `RunRecord` needs to answer the assertions"
    layers = [layer('0.0', 0.5, first_late), layer('3.0', early, late)] + ([layer('3.1', 0.5, bn_out_late)] if EXPERIMENTS[exp].bn == 'before' else [])
    return RunRecord(exp, asdict(EXPERIMENTS[exp]), seed, [dict(epoch=0, train_loss=0.1, valid_loss=vloss, accuracy=acc)],
                     [1000]*10, [1000]*10, layers, 1.0, 'cpu', 'a CPU')

def seed_runs(seed, **changes):
    "Runs near the medians of 40 real seeds, which pass every assertion; `changes` overrides one experiment's fields"
    base = dict(sample=dict(acc=0.992, vloss=0.03, early=0.5, late=0.62, first_late=0.62),
                one_cycle=dict(acc=0.9756, vloss=0.075, early=0.51, late=0.83),
                batchnorm=dict(acc=0.9853, vloss=0.058, early=0.54, late=0.62),
                batchnorm_before=dict(acc=0.9859, vloss=0.057, early=0.58, late=0.73, bn_out_late=0.57),
                batchnorm_5=dict(acc=0.9915, vloss=0.03, early=0.5, late=0.6))
    for exp, fields in changes.items(): base[exp] = {**base[exp], **fields}
    return [record(exp, seed, **fields) for exp, fields in base.items()]

# for each assertion, in `CLAIMS`' order, runs of one seed that break it
BREAKS = [dict(sample=dict(acc=0.984)),
          dict(sample=dict(first_late=0.95)),
          dict(sample=dict(late=0.91)),
          dict(one_cycle=dict(acc=0.969)),
          dict(one_cycle=dict(early=0.81, late=0.9)),
          dict(one_cycle=dict(early=0.6, late=0.6)),
          dict(one_cycle=dict(late=0.95)),
          dict(batchnorm_before=dict(acc=0.979)),
          dict(batchnorm=dict(acc=0.9750)),
          dict(batchnorm_before=dict(vloss=0.08)),
          dict(batchnorm=dict(late=0.84)),
          dict(batchnorm_before=dict(bn_out_late=0.9)),
          dict(batchnorm_5=dict(acc=0.9861)),
          dict(batchnorm=dict(acc=0.9880), batchnorm_5=dict(acc=0.9870))]

def run(margins, tmp_path, records):
    path = tmp_path/'results.json'
    save_records(records, path)
    out = tmp_path/'MARGINS.md'
    return margins.main([str(path), '--out', str(out)]), out.read_text()

def test_runs_that_pass_every_assertion(margins, tmp_path):
    status, text = run(margins, tmp_path, [r for s in range(5) for r in seed_runs(s)])
    assert status == 0
    rows = [l for l in text.splitlines() if l.startswith('| 0')]
    assert len(rows) == len(margins.CLAIMS) == len(BREAKS)
    assert all('| 5 of 5 |' in l for l in rows), text
    assert '5 seeds (0–4) on cpu (a CPU)' in text and text.startswith(margins.TITLE) and '## On a CPU' in text

@pytest.mark.parametrize('i', range(len(BREAKS)))
def test_a_seed_that_breaks_an_assertion_fails_it(margins, tmp_path, capsys, i):
    records = [r for s in range(4) for r in seed_runs(s)] + seed_runs(9, **BREAKS[i])
    status, text = run(margins, tmp_path, records)
    assert status == 1
    row = [l for l in text.splitlines() if l.startswith('| 0')][i]
    assert '| 4 of 5 | 9: ' in row, row   # the breaking seed is the closest to the threshold
    assert margins.CLAIMS[i][1] in capsys.readouterr().err

def test_runs_missing_an_experiment_say_how_to_make_them(margins, tmp_path, capsys):
    path = tmp_path/'results.json'
    save_records([r for r in seed_runs(0) if r.experiment != 'sample'], path)
    with pytest.raises(SystemExit) as e: margins.main([str(path)])
    assert e.value.code == 2
    assert '--only sample,one_cycle,batchnorm,batchnorm_before,batchnorm_5 --seeds 40' in capsys.readouterr().err

def test_a_file_that_is_not_results_is_a_clear_error(margins, tmp_path, capsys):
    (tmp_path/'notes.json').write_text('{"a": 1}')
    for path in (tmp_path/'notes.json', tmp_path/'absent.json'):
        with pytest.raises(SystemExit) as e: margins.main([str(path)])
        assert e.value.code == 2 and str(path) in capsys.readouterr().err

def test_several_results_files_are_read_as_one(margins, tmp_path):
    "A seed's runs split over two files (two reproduce runs) count once, with every experiment"
    first, rest = tmp_path/'a.json', tmp_path/'b.json'
    runs = [r for s in range(3) for r in seed_runs(s)]
    save_records([r for r in runs if r.experiment == 'sample'], first)
    save_records([r for r in runs if r.experiment != 'sample'], rest)
    assert margins.main([str(first), str(rest)]) == 0
    assert margins.runs_by_seed([*load_records(first), *load_records(rest)]).keys() == {0, 1, 2}

def test_each_device_writes_its_own_section(margins, tmp_path):
    "A GPU's runs replace the GPU's section and keep the CPU's, and the other way round"
    path, out = tmp_path/'results.json', tmp_path/'MARGINS.md'
    def write(n, device):
        runs = [r for s in range(n) for r in seed_runs(s)]
        for r in runs: r.device, r.machine = device, 'a GPU' if device != 'cpu' else 'a CPU'
        save_records(runs, path)
        assert margins.main([str(path), '--out', str(out)]) == 0
        return out.read_text()
    write(3, 'cpu')
    text = write(4, 'cuda:0')
    assert '3 seeds (0–2) on cpu (a CPU)' in text and '4 seeds (0–3) on cuda:0 (a GPU)' in text
    assert text.index('## On a CPU') < text.index('## On a CUDA GPU')
    text = write(5, 'cpu')
    assert '5 seeds (0–4) on cpu (a CPU)' in text and '3 seeds' not in text and '4 seeds (0–3) on cuda:0 (a GPU)' in text
    assert text.count(margins.TITLE) == text.count('<!-- margins:cpu -->') == text.count('<!-- /margins:cuda -->') == 1
