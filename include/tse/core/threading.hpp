#pragma once
// One thread pool for everything: our kernels, oneDNN and FFTW all run on OpenMP's pool (Debian's
// oneDNN uses the OpenMP runtime), sized by set_num_threads. Two pools fighting over 2 cores made
// PyTorch slower on 2 threads than on 1 here. Worker threads run with flush-to-zero and
// denormals-are-zero; the calling thread gets them only while a libtse kernel runs.
#include "tse/export.hpp"

namespace tse {

/// Threads used by every libtse kernel (>= 1). Default: TSE_NUM_THREADS, else OMP_NUM_THREADS,
/// else the number of cores.
TSE_API void set_num_threads(int n);
TSE_API int get_num_threads();

}  // namespace tse
