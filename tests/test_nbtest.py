"`make nbtest` (tools/nbtest.py) tests every notebook nbdev-test would, starting the slow ones first."
import importlib.util, subprocess, sys
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

def test_bad_arguments_are_refused_without_a_traceback():
    for args in (['--n-workers', '0'], ['nbs/nope.ipynb']):
        res = subprocess.run([sys.executable, ROOT/'tools'/'nbtest.py', *args], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 2 and 'error:' in res.stderr and 'Traceback' not in res.stderr, res.stderr
