#pragma once
/// \file tse.hpp
/// libtse: query-conditioned target sound extraction, natively.
///
/// This umbrella header is the manual's first page. The library is layered (see
/// ARCHITECTURE.md): core (Tensor, DType, Device, errors, threads), kernels (CPU: oneDNN, Eigen,
/// FFTW; GPU: cuBLAS, cuFFT, CUDA), ops + autograd (differentiable functions recorded on a tape),
/// then audio, io, nn, models and training on top.
///
/// Lifetime rules: a Tensor is a shared handle; views share storage with their base and keep it
/// alive. Gradients are recorded per thread while grad mode is on (NoGradGuard turns it off).
/// Errors are exceptions derived from tse::Error or std::invalid_argument / std::out_of_range;
/// the library never aborts.
///
/// Worked example:
/// \code
///   #include <tse/tse.hpp>
///   using namespace tse;
///   Tensor w = ops::randn({3, 4}).requires_grad_();
///   Tensor x = ops::ones({2, 3, 4});
///   Tensor loss = ops::sum(ops::gelu(x * w));   // broadcasting, tape recorded
///   loss.backward();                            // w.grad() now holds d loss / d w
/// \endcode
#include "tse/audio/io.hpp"
#include "tse/audio/resample.hpp"
#include "tse/audio/spectral.hpp"
#include "tse/audio/stft.hpp"
#include "tse/autograd/engine.hpp"
#include "tse/autograd/function.hpp"
#include "tse/autograd/grad_mode.hpp"
#include "tse/core/autocast.hpp"
#include "tse/core/device.hpp"
#include "tse/core/dtype.hpp"
#include "tse/core/error.hpp"
#include "tse/core/storage.hpp"
#include "tse/core/tensor.hpp"
#include "tse/core/threading.hpp"
#include "tse/io/safetensors.hpp"
#include "tse/metrics/metrics.hpp"
#include "tse/models/clapsep.hpp"
#include "tse/models/conformer_tse.hpp"
#include "tse/models/htsat.hpp"
#include "tse/models/query_encoder.hpp"
#include "tse/models/separator.hpp"
#include "tse/nn/audio.hpp"
#include "tse/nn/conformer.hpp"
#include "tse/nn/init.hpp"
#include "tse/nn/layers.hpp"
#include "tse/nn/loss.hpp"
#include "tse/nn/module.hpp"
#include "tse/nn/swin.hpp"
#include "tse/nn/transformer.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/attention.hpp"
#include "tse/ops/conv.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/indexing.hpp"
#include "tse/ops/interpolate.hpp"
#include "tse/ops/matmul.hpp"
#include "tse/ops/normalization.hpp"
#include "tse/ops/pooling.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"
#include "tse/ops/softmax.hpp"
#include "tse/optim/clip.hpp"
#include "tse/optim/optimizer.hpp"
#include "tse/optim/schedule.hpp"
#include "tse/train/data.hpp"
#include "tse/train/trainer.hpp"
