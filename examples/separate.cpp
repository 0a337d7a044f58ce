// Separates a sound from a file by query, from a checkpoint, like `python -m tse separate`:
//
//   example_separate CHECKPOINT IN.wav LABEL OUT.wav
//
// CHECKPOINT is a model file written by the Trainer (`python -m tse demo` or `train` write
// <output>/model.safetensors); it names its query encoder, so LABEL is one of its class labels.
// IN.wav may have any rate and channel count; OUT.wav has the same. Without arguments (as the
// tests run it) the example makes its own untrained checkpoint and a 44.1 kHz stereo mixture in a
// temporary folder and separates that, checking the result's shape, rate and finiteness.
#include <tse/tse.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

static int separate_file(const std::string& checkpoint, const std::string& in, const std::string& label,
                         const std::string& out) {
  using namespace tse;
  models::LoadedSeparator loaded = models::load_separator(checkpoint);
  if (!loaded.queries) {
    std::fprintf(stderr, "%s names no query encoder\n", checkpoint.c_str());
    return 2;
  }
  const audio::LoadedAudio mixture = audio::load(in);  // (channels, frames) at the file's rate
  const Tensor query = loaded.queries->encode_text({label});
  const Tensor estimate = models::separate_waveform(*loaded.model, mixture.samples, mixture.sample_rate, query);
  const int64_t clipped = audio::save(out, estimate, mixture.sample_rate, "FLOAT");
  std::printf("separated \"%s\" from %s (%lld ch, %lld Hz, %.2f s) -> %s%s\n", label.c_str(), in.c_str(),
              static_cast<long long>(mixture.samples.size(0)), static_cast<long long>(mixture.sample_rate),
              static_cast<double>(mixture.samples.size(1)) / static_cast<double>(mixture.sample_rate), out.c_str(),
              clipped ? " (some samples clipped)" : "");
  return 0;
}

static int self_test() {
  using namespace tse;
  const fs::path dir = fs::temp_directory_path() / ("tse-example-separate-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(0);
  models::ConformerTSEConfig config;
  config.num_layers = 2;
  config.d_model = 64;
  config.ffn_dim = 128;
  config.conv_kernel = 15;
  auto model = std::make_shared<models::ConformerTSE>(config);
  models::LabelQueryEncoder queries({"speech", "trumpet"});
  const std::string checkpoint = (dir / "model.safetensors").string();
  model->save(checkpoint, {{"query_encoder", queries.to_json()}});

  // 1.5 s of a stereo 44.1 kHz "mixture": a tone and noise.
  const int64_t sr = 44100, n = sr * 3 / 2;
  Tensor t = ops::arange(0, n, 1, DType::f32) / static_cast<double>(sr);
  Tensor tone = ops::sin(t * (2 * M_PI * 440.0)) * 0.3;
  Tensor stereo = ops::stack({tone + ops::randn({n}) * 0.05, tone * 0.5 + ops::randn({n}) * 0.05}, 0);
  const std::string in = (dir / "mixture.wav").string(), out = (dir / "estimate.wav").string();
  audio::save(in, stereo, sr, "PCM_16");

  int rc = separate_file(checkpoint, in, "trumpet", out);
  const audio::LoadedAudio result = audio::load(out);
  const bool ok = rc == 0 && result.sample_rate == sr && result.samples.size(0) == 2 && result.samples.size(1) == n &&
                  std::isfinite(ops::sum(result.samples).item());
  std::printf("%s: output %lld ch x %lld frames at %lld Hz (expected 2 x %lld at %lld)\n", ok ? "ok" : "FAILED",
              static_cast<long long>(result.samples.size(0)), static_cast<long long>(result.samples.size(1)),
              static_cast<long long>(result.sample_rate), static_cast<long long>(n), static_cast<long long>(sr));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    if (argc == 5) return separate_file(argv[1], argv[2], argv[3], argv[4]);
    if (argc == 1) return self_test();
    std::fprintf(stderr, "usage: %s CHECKPOINT IN.wav LABEL OUT.wav\n", argv[0]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
