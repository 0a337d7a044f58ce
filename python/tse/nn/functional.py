"""``torch.nn.functional`` equivalents, with the same names, argument order and keywords."""

from .. import _C
from .._C import gelu, glu, leaky_relu, relu, sigmoid, silu, softplus, tanh

# torch.nn.functional's own signatures (dropout takes training=, not train=) live in tse._C._nn.
dropout = _C._nn.dropout
interpolate = _C._nn.interpolate
linear = _C._nn.linear
pad = _C._nn.pad

__all__ = [
    "dropout",
    "gelu",
    "glu",
    "interpolate",
    "leaky_relu",
    "linear",
    "pad",
    "relu",
    "sigmoid",
    "silu",
    "softplus",
    "tanh",
]
