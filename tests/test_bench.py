"""`make bench` (benchmarks/bench.py): its report, its arguments and what it times, checked quickly. The timings
themselves are a benchmark, not a test; these make sure a run on another machine (a GPU's) is not wasted on a
broken script."""
import importlib.util, os, subprocess, sys, warnings
from types import SimpleNamespace
import pytest, torch
from conftest import ROOT

@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench', ROOT/'benchmarks'/'bench.py')
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings(): spec.loader.exec_module(module)   # it silences warnings for its own run only
    return module

def test_a_run_replaces_only_its_own_sections(bench, tmp_path):
    report = tmp_path/'RESULTS.md'
    bench.update_sections(report, {'cpu': 'cpu, first run', 'cuda': r'cuda, first run \1'}, 'title')
    bench.update_sections(report, {'cpu': 'cpu, second run'}, 'title')
    text = report.read_text()
    assert 'cpu, second run' in text and 'cpu, first run' not in text and r'cuda, first run \1' in text
    assert text.count('<!-- bench:cpu -->') == text.count('<!-- /bench:cpu -->') == 1
    bench.update_sections(report, {'profile-x': 'a profile'}, 'title')   # a new section of a new kind goes at the end
    assert report.read_text().startswith(text.rstrip('\n')) and report.read_text().rstrip().endswith('<!-- /bench:profile-x -->')

def test_a_new_section_goes_after_the_last_of_its_kind(bench, tmp_path):
    "A new profile lands after the last profile, not after whatever the report ends with; a GPU profile after the GPU ones"
    report = tmp_path/'RESULTS.md'
    bench.update_sections(report, {'cpu': 'c', 'profile-a': 'pa', 'gpu-profile-cuda': 'g', 'concurrency': 'two'}, 'title')
    bench.update_sections(report, {'profile-b': 'pb', 'gpu-profile-h200': 'gh'}, 'title')
    text = report.read_text()
    order = [text.index(f'<!-- bench:{n} -->') for n in ('cpu', 'profile-a', 'profile-b', 'gpu-profile-cuda', 'gpu-profile-h200', 'concurrency')]
    assert order == sorted(order), text
    assert '<!-- /bench:profile-b -->\n\n<!-- bench:gpu-profile-cuda -->' in text and text.endswith('<!-- /bench:concurrency -->\n')

def test_the_timed_statistics_are_lean_activation_stats(bench):
    "What the arithmetic table times, and what the floor's hooks compute, is what convnotes' callback records with torch"
    from convnotes.experiments import LeanActivationStats
    stats = LeanActivationStats(with_hist=True, one_pass=False); stats.learn = SimpleNamespace(training=True)
    for o in [torch.randn(64, 8, 14, 14)*3, torch.tensor([0.05, -1., 10., 0.25, float('nan')])]:
        recorded, timed = stats.hook(None, None, o), [stat(o) for stat in bench.STATISTICS.values()]
        expected = [recorded['mean'], recorded['std'], recorded['near_zero'][0], recorded['hist']]
        assert all(torch.equal(a, b) or (a.isnan() & b.isnan()).all() for a, b in zip(timed, expected))

def test_the_one_pass_records_the_floors_statistics(bench):
    "On a CPU with a C compiler convnotes' callback records in one pass what the floor's hooks compute: the same counts, sums to float32's precision"
    from convnotes.experiments import LeanActivationStats, one_pass_kernel, _c_compiler
    if _c_compiler() is None: assert one_pass_kernel() is None and bench.one_pass('cpu') == {}; return
    stats = LeanActivationStats(with_hist=True); stats.learn = SimpleNamespace(training=True); stats.before_fit = lambda: None
    layers = [torch.randn(64, 8, 14, 14)*3, torch.randn(64, 10)*3 + 1]
    stats.stats, stats._read_upto = [[stats.hook(None, None, o) for o in layers]], 0
    assert all('one_pass' in d for d in stats.stats[0])   # computed in one pass...
    stats.read_stats()
    for o, d in zip(layers, stats.stats[0]):             # ...and read back as the floor computes them
        mean, std, near, hist = (stat(o) for stat in bench.STATISTICS.values())
        assert d['near_zero'] == near.item()/o.numel() and torch.equal(d['hist'], hist)
        assert abs(d['mean'] - mean.item()) <= 1e-6 and abs(d['std'] - std.item()) <= 1e-6*std.item()

def test_statistics_are_timed_on_the_outputs_activation_stats_hooks(bench, mnist):
    from convnotes.data import mnist_dls
    outs = bench.hooked_outputs(mnist_dls(bs=16, device='cpu'))
    assert [tuple(o.shape) for o in outs] == [(16, 8, 14, 14), (16, 16, 7, 7), (16, 32, 4, 4), (16, 64, 2, 2), (16, 10, 1, 1)]
    ms = bench.statistics_ms(outs, 'cpu', repeats=2)
    assert list(ms) == list(bench.STATISTICS) + list(bench.one_pass('cpu')) and all(v > 0 for v in ms.values())

def test_the_medians_interval_covers_it_as_often_as_it_says(bench):
    "9 rounds: the second lowest and second highest ratio (96%); 5 are too few for 95%; and the coverage is what draws give"
    assert bench.median_interval(sorted([0.9, 1.0, 1.1, 0.95, 1.2, 0.8, 1.05, 1.3, 0.85])) == (0.85, 1.2)
    assert bench.median_coverage(9, 1) == 1 - 2*10/512 and bench.median_coverage(9, 2) < 0.95
    assert bench.median_interval([1., 2., 3., 4., 5.]) is None and bench.median_interval([1.] * 6) == (1., 1.)
    g = torch.Generator().manual_seed(0)
    draws = (torch.rand(20_000, 9, generator=g)**3).sort(1).values   # a skewed distribution, its median 0.5**3
    held = ((draws[:, 1] <= 0.125) & (0.125 <= draws[:, -2])).float().mean().item()
    assert abs(held - bench.median_coverage(9, 1)) < 0.01, held

def test_the_report_shows_what_the_statistics_cost(bench, monkeypatch):
    rows = [dict(bs=512, stats=False, book=20., convnotes=2., floor=2., ratios=[0.9, 1.0, 1.1]),
            dict(bs=512, stats=True, book=20., convnotes=3., floor=2.5, ratios=[1.1, 1.2, 1.3], added=[1.05, 1.08, 1.2],
                 statistics_ms={'mean': 0.5, 'std': 1., 'near_zero': 1., 'histogram': 1.5, 'one pass': 0.8}, n_batches=100, in_hooks=(0.9, 0.45))]
    text = bench.device_section('cpu', rows, repeats=3, book_repeats=1)
    assert text.startswith('## On a CPU') and '| 512 | no | 20.00 | 2.00 | 2.00 | 1.00 | – (too few rounds) | 0.90–1.10 | 10.0 |' in text
    assert 'adds 8.0% to a convnotes epoch at bs 512: the median of the rounds\' ratios' in text   # paired within rounds
    assert 'its 95% interval – (too few rounds), its range over rounds 5.0% to 20.0%' in text
    nine = [dict(r, added=[1.02, 1.04, 1.06, 1.07, 1.08, 1.09, 1.1, 1.104, 1.2]) if r['stats'] else r for r in rows]
    assert 'its 95% interval 4.0%–10.4%' in bench.device_section('cpu', nine, repeats=9, book_repeats=1)   # tenths: 10.4% misses a 10% target
    assert 'measured apart, they add 50%, and the floor\'s hooks 25%.' in text
    assert '| 512 | 0.50 | 1.00 | 1.00 | 1.50 | 0.80 | 100 | 0.40 | 20% | 0.08 | 4% | 0.90 | 45% |' in text   # 4 ms (0.8 ms) x 100 batches, of a 2 s epoch
    assert 'hooks inside training compute all four in one pass of C' in text   # what the rows timed
    no_c = [dict(r, statistics_ms={k: v for k, v in r['statistics_ms'].items() if k != 'one pass'}) if r['stats'] else r for r in rows]
    text_no_c = bench.device_section('cpu', no_c, repeats=3, book_repeats=1)   # a CPU with no C compiler
    assert 'the four with torch (no C compiler' in text_no_c and '| 512 | 0.50 | 1.00 | 1.00 | 1.50 | – | 100 | 0.40 | 20% | – | – | 0.90 | 45% |' in text_no_c
    rows[1]['in_hooks'] = None   # not timed on a GPU, where the hooks only queue their work
    del rows[1]['statistics_ms']['one pass']   # nor the one pass, which is the CPU's
    monkeypatch.setattr(bench, 'provenance', lambda device: 'a GPU machine')   # no GPU to name here
    text = bench.device_section('cuda', rows, repeats=3, book_repeats=1)
    assert text.startswith('## On a CUDA GPU') and '| 512 | 0.50 | 1.00 | 1.00 | 1.50 | – | 100 | 0.40 | 20% | – | – | – | – |' in text
    assert 'hooks inside training compute' not in text

@pytest.mark.filterwarnings('ignore:You are shadowing')   # fastai's, about `ActivationStats.modules`
def test_the_time_in_the_hooks_is_measured_inside_training(bench, mnist):
    "Each epoch's hooks are timed as they run: a callback that never ran its hook would give 0"
    from convnotes.data import mnist_dls
    seconds, to_the_rest = bench.hook_seconds(mnist_dls(bs=256, sample=True, device='cpu'), repeats=1)
    assert 0 < seconds < 60 and 0 < to_the_rest < 10

def test_host_time_is_measured_on_one_thread_and_reported_per_batch(bench, mnist, monkeypatch):
    threads, seen, stats_classes = torch.get_num_threads(), [], set()
    def epoch(secs):
        def f(*args, stats_cls=None): seen.append(torch.get_num_threads()); stats_classes.add(stats_cls); return secs
        return f
    monkeypatch.setattr(bench, 'fastai_epoch', epoch(3.)); monkeypatch.setattr(bench, 'floor_epoch', epoch(2.5))
    rows, where = bench.host_rows(repeats=2)
    assert set(seen) == {1} and torch.get_num_threads() == threads and 'torch on 1 thread' in where
    assert stats_classes - {None} == {bench.AS_ON_A_GPU}   # convnotes' statistics as on a GPU: with torch, as the floor's
    assert bench.AS_ON_A_GPU(with_hist=True).one_pass is False
    assert [r['stats'] for r in rows] == [False, True] and all(r['added'] == [0.5, 0.5] for r in rows)
    n = rows[0]['batches']   # every training and validation batch of the 3s and 7s at bs 8
    assert n == sum((len(dl.dataset) + bench.HOST_BS - 1)//bench.HOST_BS for dl in bench.mnist_dls(bs=bench.HOST_BS, sample=True, device='cpu').loaders)
    rows = [dict(stats=False, batches=1000, convnotes=3., floor=2.5, ratios=[1.1, 1.2, 1.3], added=[0.4, 0.5, 0.6])]
    assert '| no | 1000 | 3.00 | 2.50 | 1.20 | 500 | 400–600 |' in bench.host_section(rows, where, repeats=3)

def _event(key, device='cuda', us=0, count=1, annotation=False):
    "What torch's profiler gives for one name: `key_averages()`'s row"
    from torch.autograd import DeviceType
    return SimpleNamespace(key=key, device_type=DeviceType.CUDA if device == 'cuda' else DeviceType.CPU, self_device_time_total=us,
                           count=count, is_user_annotation=annotation)

def test_what_the_gpu_did_is_added_up_from_the_profilers_gpu_events(bench):
    events = [_event('void conv_kernel<float>', us=3e6, count=400), _event('void histc_kernel', us=1e6, count=500),
              _event('Memcpy DtoH (Device -> Pageable)', us=2e5, count=30), _event('Memcpy HtoD (Pageable -> Device)', us=1e5, count=2),
              _event('Memset (Device)', us=1e5, count=100), _event('ProfilerStep#1', us=9e6, annotation=True),   # a span, not work
              _event('aten::conv2d', device='cpu', count=400)]
    work = bench.gpu_work(events, n_batches=100)
    assert work['busy'] == pytest.approx(4.4) and work['kernels'] == 9   # 900 kernels; copies and memsets are not kernels
    assert (work['to_host'], work['to_device']) == (30, 2)
    assert work['top'] == [('void conv_kernel<float>', 3., 400), ('void histc_kernel', 1., 500)]
    assert bench.gpu_work([e for e in events if e.device_type.name == 'CPU'], n_batches=100)['busy'] == 0

def test_the_gpu_profile_report_shows_where_the_gpu_waits(bench, monkeypatch):
    monkeypatch.setattr(bench, 'provenance', lambda device: 'a GPU machine')
    rows = [dict(bs=512, stats=s, pipeline=p, seconds=2., busy=0.5, kernels=120.4, to_host=3, to_device=0,
                 top=[('void at::native::kernel<float, `odd|name`>' + 'x'*100, 0.25, 118)]) for s in (False, True) for p in bench.GPU_PIPELINES]
    text = bench.gpu_profile_section('cuda, bs 512', rows, 'cuda')
    assert text.startswith('#### cuda, bs 512\n') and 'a GPU machine' in text
    assert '| 512 | with_hist | floor | 2.00 | 0.50 | 75% | 120 | 3 | 0 |' in text
    assert text.count("convnotes' dearest kernels") == 2 and "| `void at::native::kernel<float, 'odd¦name'>xx" in text
    assert '…` | 0.250 | 50% | 118 |' in text   # the name cut short; half of the GPU's busy time

@pytest.mark.filterwarnings('ignore:You are shadowing')
def test_each_pipeline_is_profiled_with_and_without_statistics(bench, mnist):
    "On this CPU the profiler records no GPU: what runs here is the plumbing, the same as on a GPU but for the events"
    rows = bench.gpu_profile_rows('cpu', 1024, sample=True)
    assert [(r['stats'], r['pipeline']) for r in rows] == [(s, p) for s in (False, True) for p in bench.GPU_PIPELINES]
    assert all(r['seconds'] > 0 and r['busy'] == r['kernels'] == 0 for r in rows)

@pytest.mark.parametrize('args', [['--repeats', '0'], ['--bs', '512,x'], ['--bs', '0'], ['--devices', 'tpu'],
                                  ['--concurrency-repeats', '-1'], ['--host-repeats', '-1'], ['--host-repeats', 'x'], ['--out', 'no/such/folder/RESULTS.md'], ['--out', 'benchmarks']])
def test_bad_arguments_are_refused_without_a_traceback(args):
    res = subprocess.run([sys.executable, ROOT/'benchmarks'/'bench.py', *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and 'error:' in res.stderr and 'Traceback' not in res.stderr, res.stderr

@pytest.mark.parametrize('git', ['no git', 'not a repository'])
def test_the_report_names_the_commit_it_is_given(bench, monkeypatch, git):
    "`$CONVNOTES_COMMIT`, where set, names the commit (the GPU machine's copy of the tree had a .git older than its files); else git's; else 'unknown'"
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    monkeypatch.delenv('CONVNOTES_COMMIT', raising=False)
    assert f'commit {head or "unknown"}:' in bench.provenance('cpu')   # this checkout's own, when it is a git one
    monkeypatch.setenv('CONVNOTES_COMMIT', 'abc1234')
    assert 'commit abc1234:' in bench.provenance('cpu')                 # given: it wins over git's
    def run(*a, **kw):
        if git == 'no git': raise OSError('git')
        return SimpleNamespace(stdout='')
    monkeypatch.setattr(bench.subprocess, 'run', run)
    assert 'commit abc1234:' in bench.provenance('cpu')
    monkeypatch.delenv('CONVNOTES_COMMIT')
    assert 'commit unknown:' in bench.provenance('cpu')

def device_check(*steps, out, path=None):
    env = {k: v for k, v in os.environ.items() if k != 'OUT'} | {'OUT': str(out)} | ({'PATH': path} if path else {})
    return subprocess.run(['bash', ROOT/'tools'/'device-check', *steps], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

def device_check_with(tmp_path, python:str, *steps):
    "`device_check` of `steps` with a stand-in `python3` (the shell script `python`) first on PATH; its result and $OUT"
    fake, out = tmp_path/'bin', tmp_path/'out'
    fake.mkdir(exist_ok=True); (fake/'python3').write_text('#!/bin/sh\n' + python); (fake/'python3').chmod(0o755)
    return device_check(*steps, out=out, path=f"{fake}:/usr/bin:/bin"), out

@pytest.mark.parametrize('steps', [[], ['nbtest', 'bnech']])
def test_device_check_refuses_an_unknown_step_before_running_any(tmp_path, steps):
    res = device_check(*steps, out=tmp_path/'out')
    assert res.returncode == 2 and 'usage: tools/device-check STEP' in res.stderr and not (tmp_path/'out').exists(), res.stderr
    if steps: assert "no step 'bnech'; the steps are nbtest, bench, profile and margins" in res.stderr

def test_device_check_logs_every_step_and_brings_the_report_back(tmp_path):
    "Each step runs with its log in $OUT, a failing one does not stop the next, the first failure is the exit status"
    python = ('case "$*" in -) echo "torch 0, fastai 0, python 3: a GPU"; exit 0;; esac\n'
              'echo "ran: $*"\ncase "$*" in *nbtest*) exit 0;; *--profile*) exit 4;; *) exit 5;; esac\n')
    res, out = device_check_with(tmp_path, python, 'bench', 'nbtest', 'profile')
    assert res.returncode == 5, res.stderr
    assert 'ran: benchmarks/bench.py --devices cuda --repeats 9 --concurrency-repeats 0 --out benchmarks/RESULTS.md' in (out/'bench.log').read_text()
    assert 'ran: tools/nbtest.py --n-workers 7' in (out/'nbtest.log').read_text()
    assert '--profile cuda --bs 512' in (out/'profile.log').read_text()
    where, *summary = (out/'summary.txt').read_text().splitlines()
    assert where == 'device-check: on torch 0, fastai 0, python 3: a GPU'   # what python3 found, before the steps
    assert [l.split(' exited ')[0] for l in summary] == ['device-check: bench', 'device-check: nbtest', 'device-check: profile']
    assert [l.split(' exited ')[1].split()[0] for l in summary] == ['5', '0', '4']
    assert (out/'RESULTS.md').read_text() == (ROOT/'benchmarks'/'RESULTS.md').read_text()
    assert (out/'MARGINS.md').read_text() == (ROOT/'benchmarks'/'MARGINS.md').read_text()
    assert device_check_with(tmp_path, python, 'nbtest')[0].returncode == 0   # a second call in the same folder:
    assert len((out/'summary.txt').read_text().splitlines()) == 2             # its own summary, not both

def test_device_check_stops_before_any_step_when_python_lacks_a_module(tmp_path):
    "A module missing from the GPU machine's image: exit 3 in seconds, saying which and how to add it, no step run"
    python = ('case "$*" in -) echo "Traceback (most recent call last):" >&2\n'
              '  echo "ModuleNotFoundError: No module named \'six\'" >&2; exit 1;; esac\necho "ran: $*"\n')
    res, out = device_check_with(tmp_path, python, 'nbtest', 'bench')
    assert res.returncode == 3, res.stderr
    assert "cannot import what the checks need: ModuleNotFoundError: No module named 'six'" in res.stderr
    assert '../shared/device/wheels.txt' in res.stderr and 'Traceback' not in res.stderr   # the traceback is in the log
    assert 'Traceback' in (out/'preflight.log').read_text()
    assert not (out/'nbtest.log').exists() and not (out/'bench.log').exists()
    assert "No module named 'six'" in (out/'summary.txt').read_text()

def test_every_timed_epoch_starts_from_a_trimmed_heap(bench, monkeypatch):
    "The memory `LeanActivationStats` hands back at a fit's end is taken back by whatever runs next: every timed run pays alike"
    calls = []
    monkeypatch.setattr(bench, 'release_free_memory', lambda: calls.append('trim') or True)
    assert bench.timed(lambda: calls.append('run') or 1.5) == 1.5 and calls == ['trim', 'run']

def test_rounds_alternate_their_order(bench, monkeypatch):
    "What runs first in a round changes every round, so no pipeline always follows the same one (whose heat or memory it would inherit)"
    ran = []
    monkeypatch.setattr(bench, 'timed', lambda f: f())
    fns = {k: (lambda k=k: ran.append(k) or 1.0) for k in 'abc'}
    times = bench.interleaved_times(fns, dict(a=3, b=3, c=1))
    assert ran == list('abc') + list('abc') + list('ba') + list('ab')   # the warm-up, then rounds forwards, backwards, forwards
    assert {k: len(v) for k, v in times.items()} == dict(a=3, b=3, c=1)

def test_each_row_logs_its_ratios_as_it_ends(bench, monkeypatch, capsys):
    "A run cut short (a GPU call's time limit) keeps in its log the ratios of every row it finished, not only the seconds"
    nine = [1.0, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 1.08, 1.3]   # convnotes' epochs in nine rounds; the floor's are all 1 s
    monkeypatch.setattr(bench, 'mnist_dls', lambda bs, device: SimpleNamespace(device=device, train=range(118)))
    monkeypatch.setattr(bench, 'mnist_datablock_dls', lambda bs: SimpleNamespace())
    monkeypatch.setattr(bench, 'lean_and_floor', lambda dls, bs, stats: {})
    monkeypatch.setattr(bench, 'interleaved_times', lambda fns, repeats: dict(convnotes=nine, floor=[1.]*9, book=[20.], without=[0.95]*9))
    monkeypatch.setattr(bench, 'statistics_ms', lambda outs, device: {})
    monkeypatch.setattr(bench, 'hooked_outputs', lambda dls: [])
    monkeypatch.setattr(bench, 'hook_seconds', lambda dls, repeats: (0.1, 0.05))
    bench.device_rows('cpu', [512], repeats=9, book_repeats=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'cpu bs 512, ActivationStats False: book 20.00s, convnotes 1.05s, floor 1.00s; convnotes/floor 1.05 (95% interval 1.02–1.08)'
    assert out[1].endswith('convnotes/floor 1.05 (95% interval 1.02–1.08); the statistics add 10.5%')   # 1.05 s against 0.95 s

def test_device_check_brings_the_report_back_after_each_step(tmp_path):
    "The report reaches $OUT after every step, before the next starts: a call its time limit cuts short keeps the finished steps' sections"
    out = tmp_path/'out'
    python = ('case "$*" in -) echo "torch 0, fastai 0, python 3: a GPU"; exit 0;; esac\n'
              f'case "$*" in *--profile*) exit 0;; *) test -f {out}/RESULTS.md && echo "report already back" || exit 6;; esac\n')
    res, out = device_check_with(tmp_path, python, 'profile', 'bench')
    assert res.returncode == 0 and 'report already back' in (out/'bench.log').read_text(), res.stderr

def test_device_check_margins_trains_every_experiment_margins_needs(tmp_path):
    "The margins step runs reproduce with the experiments benchmarks/margins.py reads, then margins.py on its results"
    python = 'case "$*" in -) echo "torch 0, fastai 0, python 3: a GPU"; exit 0;; esac\necho "ran: $*"\n'
    res, out = device_check_with(tmp_path, python, 'margins')
    assert res.returncode == 0, res.stderr
    reproduce, report = (out/'margins.log').read_text().splitlines()
    needed = importlib.util.spec_from_file_location('margins', ROOT/'benchmarks'/'margins.py')
    margins = importlib.util.module_from_spec(needed); needed.loader.exec_module(margins)
    assert reproduce.endswith(f"reproduce --only {','.join(margins.NEEDED)} --seeds 30 --out margins"), reproduce
    assert report == 'ran: benchmarks/margins.py margins/results.json --out benchmarks/MARGINS.md'
