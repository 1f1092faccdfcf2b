"`make nbtest` (tools/nbtest.py) tests every notebook nbdev-test would, starting the slow ones first."
import importlib.util, json, os, subprocess, sys
from conftest import ROOT

spec = importlib.util.spec_from_file_location('nbtest', ROOT/'tools'/'nbtest.py')
nbtest = importlib.util.module_from_spec(spec); spec.loader.exec_module(nbtest)

def test_slow_notebooks_first_then_by_name(tmp_path):
    for name in ['b.ipynb', 'a.ipynb', 'slow2.ipynb', 'slow1.ipynb', '_draft.ipynb', '.hidden.ipynb', 'notes.md']: (tmp_path/name).touch()
    assert [f.name for f in nbtest.notebooks(tmp_path, ['slow1', 'slow2', 'gone'])] == ['slow1.ipynb', 'slow2.ipynb', 'a.ipynb', 'b.ipynb']

def test_every_slow_notebook_exists():   # a renamed notebook would quietly go back to its place by name
    slow = nbtest.slow_notebooks(ROOT/'pyproject.toml')
    assert slow and all((ROOT/'nbs'/f'{name}.ipynb').is_file() for name in slow), slow

def test_same_notebooks_as_nbdev_test():
    from nbdev.doclinks import nbglob
    assert sorted(nbtest.notebooks(ROOT/'nbs', [])) == sorted(p.absolute() for p in nbglob(ROOT/'nbs', as_path=True))

def test_bad_arguments_are_refused_without_a_traceback(tmp_path):
    outside = tmp_path/'00_data.ipynb'; outside.write_text((ROOT/'nbs'/'00_data.ipynb').read_text())   # a real notebook, not in nbs/
    for args in (['--n-workers', '0'], ['nbs/nope.ipynb'], [str(outside)]):
        res = subprocess.run([sys.executable, ROOT/'tools'/'nbtest.py', *args], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 2 and 'error:' in res.stderr and 'Traceback' not in res.stderr, res.stderr

def test_cores_are_shared_out_among_the_notebooks():
    assert [nbtest.torch_threads(n, {}, cpus=2) for n in (1, 2, 3)] == [None, '1', '1']   # one notebook: torch's default
    assert nbtest.torch_threads(2, {}, cpus=16) == '8'
    assert nbtest.torch_threads(2, {'OMP_NUM_THREADS': '2'}, cpus=2) == '2'   # yours is kept
    assert nbtest.torch_threads(2, {'OMP_NUM_THREADS': ''}, cpus=2) == '1'    # an empty one is not a choice
    assert 1 <= nbtest.usable_cpus() <= os.cpu_count()

def test_each_notebook_runs_with_its_share_of_the_threads(tmp_path):
    "A project of one notebook that fails unless torch, where nbdev runs it, has the threads nbtest.py shares out"
    (tmp_path/'pyproject.toml').write_text('[project]\nname = "threads"\nversion = "0.0.1"\n[tool.nbdev]\nlib_path = "threads"\nnbs_path = "nbs"\n')
    (tmp_path/'nbs').mkdir()
    expected = max(1, nbtest.usable_cpus() // 2)
    cell = f"import torch\nassert torch.get_num_threads() == {expected}, torch.get_num_threads()"
    nb = dict(cells=[dict(cell_type='code', execution_count=None, id='c0', metadata={}, outputs=[], source=cell)],
              metadata={}, nbformat=4, nbformat_minor=5)
    (tmp_path/'nbs'/'threads.ipynb').write_text(json.dumps(nb))
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    res = subprocess.run([sys.executable, ROOT/'tools'/'nbtest.py', '--n-workers', '2'], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert res.returncode == 0 and f"torch on {expected} thread(s) each" in res.stdout, res.stdout + res.stderr
    bad = subprocess.run([sys.executable, ROOT/'tools'/'nbtest.py', '--n-workers', '2'], cwd=tmp_path, capture_output=True, text=True,
                         env=env | {'OMP_NUM_THREADS': str(expected + 1)})   # the same notebook fails with another count: the check can fail
    assert bad.returncode == 1 and 'threads.ipynb' in bad.stderr, bad.stdout + bad.stderr
