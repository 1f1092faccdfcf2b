import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'benchmarks'))   # bench.py and margins.py import benchmarks/sections.py, as when run as scripts

def convnotes_command()->list:
    "The `convnotes` command: the console script installed beside this Python; from a checkout that is only on PYTHONPATH (the GPU machine's), what that script runs"
    script = Path(sys.executable).parent/'convnotes'
    if script.exists(): return [str(script)]
    return [sys.executable, '-c', 'import sys; from convnotes.cli import main; sys.exit(main())']   # `tests/test_package.py` checks the script itself

def shared_archive():
    "fastai's MNIST archive kept offline beside the repo, or None"
    p = Path(os.environ.get('CONVNOTES_MNIST_TGZ', ROOT.parent/'shared'/'data'/'mnist_png.tgz'))
    return p if p.is_file() else None

@pytest.fixture(scope='session')
def mnist():
    from convnotes.data import load_mnist
    return load_mnist()
