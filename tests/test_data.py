"Ground truth for the decoded MNIST arrays: the checksums published with the offline archive."
import hashlib
import numpy as np
import pytest
from conftest import shared_archive

# sha256 of the raw C-order uint8 bytes, images stacked by file index, from ../shared/data/README.md
SHA256 = {
    ('training', 'x'): '741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757',
    ('training', 'y'): '1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13',
    ('testing',  'x'): '6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161',
    ('testing',  'y'): 'ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5',
}

def sha256(t): return hashlib.sha256(np.ascontiguousarray(t.numpy().astype(np.uint8)).tobytes()).hexdigest()

@pytest.mark.skipif(shared_archive() is None, reason="the offline archive (../shared/data/mnist_png.tgz) is absent: "
                    "its checksums describe that archive's file numbering, which fastai's download need not share")
@pytest.mark.parametrize('split,part', list(SHA256))
def test_decoded_arrays_match_published_checksums(mnist, split, part):
    x, y = mnist[split]
    assert sha256(x if part == 'x' else y) == SHA256[split, part]

def test_split_sizes_and_class_counts(mnist):
    assert [len(mnist[s][0]) for s in ('training', 'testing')] == [60000, 10000]
    assert mnist['training'][1].bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist['testing'][1].bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

def test_images_are_not_blank(mnist):
    "Every digit has ink: a decode that returned zeros would still pass the shape checks"
    x, _ = mnist['training']
    assert (x.flatten(1).max(1).values > 100).all()
