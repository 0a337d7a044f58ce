"""C++ exceptions arrive as the Python exceptions PyTorch users expect."""

import pytest

import tse


def test_shape_mismatch_is_value_error_naming_the_op():
    with pytest.raises(ValueError, match="add"):
        tse.ones(2, 3) + tse.ones(4)
    with pytest.raises(ValueError, match="mul"):
        tse.mul(tse.ones(2, 3), tse.ones(2, 2))
    with pytest.raises(ValueError, match="cat"):
        tse.cat([tse.ones(2, 3), tse.ones(2, 4)], dim=0)


def test_bad_dim_is_index_error():
    with pytest.raises(IndexError, match="dim"):
        tse.ones(2, 3).sum(dim=5)
    with pytest.raises(IndexError):
        tse.ones(2, 3).transpose(0, 3)
    with pytest.raises(IndexError):
        tse.ones(2, 3)[2]
    with pytest.raises(IndexError, match="too many indices"):
        tse.ones(2)[0, 0]


def test_inplace_on_leaf_requiring_grad_is_runtime_error():
    w = tse.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="in-place"):
        w += 1
    with tse.no_grad():
        w.add_(1.0)  # allowed outside the tape, like an optimizer step
    assert w.detach().sum().item() == 6.0


def test_each_cpp_exception_type_maps():
    C = tse._C
    with pytest.raises(ValueError, match="v"):
        C._raise_cpp_error("ValueError", "v")
    with pytest.raises(IndexError, match="i"):
        C._raise_cpp_error("IndexError", "i")
    with pytest.raises(NotImplementedError, match="n"):
        C._raise_cpp_error("NotImplementedError", "n")
    for kind in ("AutogradError", "BackendError", "InternalError", "Error"):
        with pytest.raises(RuntimeError, match=kind):
            C._raise_cpp_error(kind, kind)


def test_not_implemented_from_an_op():
    with pytest.raises(NotImplementedError, match="nuc"):
        tse.norm(tse.ones(2, 2), p="nuc")


def test_python_level_argument_errors():
    with pytest.raises(TypeError):
        tse.ones(2) + "a"
    with pytest.raises(TypeError):
        tse.zeros(2, "x")
    with pytest.raises(ValueError, match="step"):
        tse.arange(5.0)[::-1]
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tse.ones(2))
    with pytest.raises(ValueError):
        tse.device("tpu")
