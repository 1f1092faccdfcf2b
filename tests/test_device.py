"""Everything that trains takes `device`. Checked without a GPU on PyTorch's 'meta' device: tensors there have a
shape and a device but no values, so a batch or a model that lands anywhere else is caught."""
import pytest, torch
import convnotes.experiments as experiments
import convnotes.comparison as comparison
from convnotes.data import mnist_dls
from convnotes.experiments import EXPERIMENTS, make_learner, run_experiment

META = torch.device('meta')

def test_mnist_dls_puts_every_batch_on_the_device(mnist):
    dls = mnist_dls(bs=4096, device='meta')
    for dl in (dls.train, dls.valid):
        for xb, yb in dl: assert (xb.device, yb.device) == (META, META)

def test_mnist_dls_keeps_the_data_on_the_device(mnist):
    "The tensors go to the device once and batches are sliced there: no copy from the host per batch"
    dls = mnist_dls(bs=4096, device='meta')
    assert {t.device for dl in (dls.train, dls.valid) for t in dl.dataset.tensors} == {META}
    assert mnist_dls(bs=64, device='meta').train_ds.tensors[0] is dls.train_ds.tensors[0]   # copied once, then shared

def test_mnist_dls_defaults_to_fastais_default_device(mnist):
    from fastai.torch_core import default_device
    xb, yb = mnist_dls(bs=64).one_batch()
    assert xb.device.type == yb.device.type == default_device().type

def test_learner_trains_model_and_data_on_one_device(mnist):
    learn = make_learner(EXPERIMENTS['batchnorm'], device='meta')
    learn.train_eval.before_fit()            # what fastai does first in every fit: the model goes to dls.device
    xb, yb = learn.dls.one_batch()
    assert {p.device for p in learn.model.parameters()} == {META}
    assert {b.device for b in learn.model.buffers()} == {META}   # BatchNorm's running statistics too
    assert learn.model(xb).shape == (512, 10)

def test_device_reaches_the_data_from_every_entry_point(tmp_path, monkeypatch):
    "`reproduce(device=...)` and `run_experiment(device=...)` hand it down to `mnist_dls`, unchanged"
    seen = []
    def spy(*args, device=None, **kwargs):
        seen.append(device); raise StopIteration   # stop before any training
    monkeypatch.setattr(experiments, 'mnist_dls', spy)
    for call in (lambda: run_experiment('bs512', device='meta'),
                 lambda: comparison.reproduce(['bs512'], seeds=1, out=tmp_path, device='meta', progress=False)):
        with pytest.raises(StopIteration): call()
    assert seen == ['meta', 'meta']
