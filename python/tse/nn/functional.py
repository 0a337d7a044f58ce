"""``torch.nn.functional`` equivalents, with the same names, argument order and keywords."""

from .. import _C
from .._C import gelu, glu, leaky_relu, relu, sigmoid, silu, softplus, tanh

# torch.nn.functional's own signatures (dropout takes training=, not train=) live in tse._C._nn.
avg_pool1d = _C._nn.avg_pool1d
avg_pool2d = _C._nn.avg_pool2d
batch_norm = _C._nn.batch_norm
conv1d = _C._nn.conv1d
conv2d = _C._nn.conv2d
conv_transpose1d = _C._nn.conv_transpose1d
conv_transpose2d = _C._nn.conv_transpose2d
dropout = _C._nn.dropout
group_norm = _C._nn.group_norm
interpolate = _C._nn.interpolate
layer_norm = _C._nn.layer_norm
linear = _C._nn.linear
log_softmax = _C._nn.log_softmax
pad = _C._nn.pad
scaled_dot_product_attention = _C._nn.scaled_dot_product_attention
softmax = _C._nn.softmax

__all__ = [
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "dropout",
    "gelu",
    "glu",
    "group_norm",
    "interpolate",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "pad",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]
