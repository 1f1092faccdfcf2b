"`make nbtest` sets `OMP_WAIT_POLICY=PASSIVE`: that must change only how idle threads wait, never a result."
import os, subprocess, sys

TRAIN = '''
import hashlib, torch
from convnotes.experiments import make_learner, EXPERIMENTS
learn = make_learner(EXPERIMENTS['batchnorm'], seed=42, device='cpu')   # CPU threads are what this is about, also on a GPU machine
with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 0.06)
h = hashlib.sha256()
for p in learn.model.parameters(): h.update(p.detach().numpy().tobytes())
for batch in learn.activation_stats.stats:
    for d in batch: h.update(repr((d['mean'], d['std'], d['near_zero'])).encode()); h.update(d['hist'].numpy().tobytes())
print(torch.get_num_threads(), learn.recorder.values[-1][-1], h.hexdigest())
'''

def trained_fingerprint(policy):
    "Threads, accuracy and a hash of the weights and activation statistics after a seeded epoch, in a fresh process"
    env = {k:v for k,v in os.environ.items() if k != 'OMP_WAIT_POLICY'} | ({'OMP_WAIT_POLICY': policy} if policy else {})
    res = subprocess.run([sys.executable, '-c', TRAIN], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()

def test_passive_wait_policy_trains_bit_for_bit_the_same():
    assert trained_fingerprint(None) == trained_fingerprint('PASSIVE')
