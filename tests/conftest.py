import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def shared_archive():
    "fastai's MNIST archive kept offline beside the repo, or None"
    p = Path(os.environ.get('CONVNOTES_MNIST_TGZ', ROOT.parent/'shared'/'data'/'mnist_png.tgz'))
    return p if p.is_file() else None

@pytest.fixture(scope='session')
def mnist():
    from convnotes.data import load_mnist
    return load_mnist()
