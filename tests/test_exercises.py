"""Every exercise: its right answer is accepted, its typical mistake gets its own hint, and an answer of the wrong
kind gets a clear message, never a traceback. The prediction exercises train their runs (about 25 s in all)."""
import pytest
from convnotes.exercises import EXERCISES, check, verdict, get_exercise

@pytest.fixture(scope='module', autouse=True)
def data(mnist): return mnist   # the offline MNIST is extracted by the session fixture

@pytest.mark.parametrize('key', list(EXERCISES))
def test_right_answer_is_accepted(key):
    ex = get_exercise(key)
    assert verdict(key, ex.expected).status == 'right'

@pytest.mark.parametrize('key', list(EXERCISES))
def test_typical_mistake_gets_its_hint(key):
    ex = get_exercise(key)
    v = verdict(key, ex.typical_wrong())
    assert v.status == 'wrong' and v.message == f"not quite: {ex.mistakes[0][1]}"

@pytest.mark.parametrize('key', list(EXERCISES))
def test_wrong_kind_of_answer_is_explained(key):
    v = verdict(key, object())
    assert v.status == 'invalid' and v.message.startswith('not an answer of the right kind: expected ')

def test_check_prints_one_line(capsys):
    check('arithmetic.1', 13)
    check('arithmetic.1', ...)
    check('kernels.5', [[0.]*28]*27)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["arithmetic.1: not quite: the padding is added on both sides: n + 2*pad",
                     "arithmetic.1: no answer yet: replace `...` with yours and run the cell again",
                     "kernels.5: not an answer of the right kind: expected a tensor of shape (28, 28), got shape (27, 28)"]

def test_unknown_exercise_lists_its_chapter():
    with pytest.raises(ValueError, match=r"no exercise 'kernels\.9'; try one of: kernels\.1, kernels\.2"):
        check('kernels.9', 1)
