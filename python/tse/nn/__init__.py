"""Neural-network building blocks, as torch.nn: ``tse.nn.Module`` and the layers (C++ modules with
PyTorch's parameter names, so ``state_dict()`` reads like PyTorch's); ``tse.nn.functional`` holds
the functional forms.

The ESPnet Conformer blocks (``RelPositionalEncoding``, ``RelPositionMultiHeadedAttention``,
``PositionwiseFeedForward``, ``ConvolutionModule``, ``ConformerLayer``) and Saijo et al.'s
``ConditioningBlock`` are here too.
"""

from .._C.nn import (
    BatchNorm1d,
    BatchNorm2d,
    CLAPSepLoss,
    ConditioningBlock,
    ConformerLayer,
    Conv1d,
    Conv2d,
    ConvolutionModule,
    ConvTranspose2d,
    Dropout,
    FiLM,
    GELU,
    GLU,
    GroupNorm,
    ISTFT,
    LayerNorm,
    LogMel,
    Linear,
    Module,
    ModuleList,
    NegSISDR,
    PositionwiseFeedForward,
    RelPositionalEncoding,
    RelPositionMultiHeadedAttention,
    SiLU,
    STFT,
)
from . import functional

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "CLAPSepLoss",
    "ConditioningBlock",
    "ConformerLayer",
    "Conv1d",
    "Conv2d",
    "ConvolutionModule",
    "ConvTranspose2d",
    "Dropout",
    "FiLM",
    "GELU",
    "GLU",
    "GroupNorm",
    "ISTFT",
    "LayerNorm",
    "LogMel",
    "Linear",
    "Module",
    "ModuleList",
    "NegSISDR",
    "PositionwiseFeedForward",
    "RelPositionalEncoding",
    "RelPositionMultiHeadedAttention",
    "SiLU",
    "STFT",
    "functional",
]
