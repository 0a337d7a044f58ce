// Audio files through libsndfile, mixing at an SNR, segment helpers.
#include "tse/audio/io.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <vector>

#include "src/core/atomic_file.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/audio/resample.hpp"
#include "tse/core/error.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"

namespace tse::audio {
namespace {

using tse::detail::str_cat;

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

struct Named {
  int code;
  const char* name;
};

constexpr Named kFormats[] = {{SF_FORMAT_WAV, "WAV"},   {SF_FORMAT_FLAC, "FLAC"}, {SF_FORMAT_OGG, "OGG"},
                              {SF_FORMAT_MPEG, "MPEG"}, {SF_FORMAT_AIFF, "AIFF"}, {SF_FORMAT_W64, "W64"},
                              {SF_FORMAT_RF64, "RF64"}, {SF_FORMAT_AU, "AU"}};
constexpr Named kSubtypes[] = {{SF_FORMAT_PCM_16, "PCM_16"}, {SF_FORMAT_PCM_24, "PCM_24"},
                               {SF_FORMAT_PCM_32, "PCM_32"}, {SF_FORMAT_PCM_U8, "PCM_U8"},
                               {SF_FORMAT_PCM_S8, "PCM_S8"}, {SF_FORMAT_FLOAT, "FLOAT"},
                               {SF_FORMAT_DOUBLE, "DOUBLE"}, {SF_FORMAT_VORBIS, "VORBIS"},
                               {SF_FORMAT_OPUS, "OPUS"},     {SF_FORMAT_MPEG_LAYER_III, "MP3"},
                               {SF_FORMAT_ULAW, "ULAW"},     {SF_FORMAT_ALAW, "ALAW"}};

const char* name_of(int code, const Named* table, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (table[i].code == code) return table[i].name;
  return "OTHER";
}

SndfilePtr open_for_reading(const std::string& path, SF_INFO* sfinfo) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IOError(str_cat("audio: no such file: '", path, "'"));
  if (std::filesystem::is_directory(path, ec)) throw IOError(str_cat("audio: '", path, "' is a directory"));
  *sfinfo = SF_INFO{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, sfinfo);
  if (!f) throw IOError(str_cat("audio: cannot read '", path, "': ", sf_strerror(nullptr)));
  return SndfilePtr(f);
}

AudioInfo info_of(const SF_INFO& s) {
  AudioInfo i;
  i.sample_rate = s.samplerate;
  i.channels = s.channels;
  i.frames = s.frames;
  i.format = name_of(s.format & SF_FORMAT_TYPEMASK, kFormats, std::size(kFormats));
  i.subtype = name_of(s.format & SF_FORMAT_SUBMASK, kSubtypes, std::size(kSubtypes));
  return i;
}

/// The (container, subtype) format code for a path's extension and a subtype name.
int write_format(const std::string& path, const std::string& subtype) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  int container = 0;
  std::string sub = subtype;
  if (ext == ".wav") {
    container = SF_FORMAT_WAV;
    if (sub.empty()) sub = "FLOAT";
  } else if (ext == ".flac") {
    container = SF_FORMAT_FLAC;
    if (sub.empty()) sub = "PCM_16";
  } else if (ext == ".ogg" || ext == ".oga") {
    container = SF_FORMAT_OGG;
    if (sub.empty()) sub = "VORBIS";
  } else if (ext == ".opus") {
    container = SF_FORMAT_OGG;
    if (sub.empty()) sub = "OPUS";
  } else if (ext == ".mp3") {
    container = SF_FORMAT_MPEG;
    if (sub.empty()) sub = "MP3";
  } else {
    throw ValueError(str_cat("audio.save: unknown extension '", ext, "' of '", path,
                             "' (expected .wav, .flac, .ogg, .opus or .mp3)"));
  }
  for (const Named& s : kSubtypes)
    if (sub == s.name) {
      SF_INFO probe{};
      probe.samplerate = 48000;
      probe.channels = 1;
      probe.format = container | s.code;
      TSE_CHECK(sf_format_check(&probe), "audio.save: subtype '", sub, "' cannot be written in a ", ext, " file");
      return container | s.code;
    }
  throw ValueError(str_cat("audio.save: unknown subtype '", sub, "'"));
}

/// libsndfile shortens the frame count of a WAV/AIFF whose data chunk runs past the end of the
/// file instead of failing; its log then says "data : <header size> (should be <available>)".
void check_not_truncated(SNDFILE* f, const std::string& path) {
  char log[4096] = {0};
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof(log));
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    long long stated = 0, available = 0;
    if (std::sscanf(line.c_str(), "data : %lld (should be %lld)", &stated, &available) == 2 && available < stated)
      throw IOError(str_cat("audio.load: '", path, "' is truncated: its header states ", stated,
                            " bytes of audio data, the file holds ", available));
  }
}

bool is_pcm(int format) {
  const int sub = format & SF_FORMAT_SUBMASK;
  return sub == SF_FORMAT_PCM_16 || sub == SF_FORMAT_PCM_24 || sub == SF_FORMAT_PCM_32 || sub == SF_FORMAT_PCM_U8 ||
         sub == SF_FORMAT_PCM_S8;
}

}  // namespace

AudioInfo info(const std::string& path) {
  SF_INFO s;
  const SndfilePtr f = open_for_reading(path, &s);
  return info_of(s);
}

LoadedAudio load(const std::string& path, int64_t sr, bool mono) {
  TSE_CHECK(sr >= 0, "audio.load: sr must be >= 0 (0 keeps the file's rate), got ", sr);
  SF_INFO s;
  const SndfilePtr f = open_for_reading(path, &s);
  if (s.frames <= 0 || s.channels <= 0)
    throw IOError(str_cat("audio.load: '", path, "' holds no audio frames"));
  check_not_truncated(f.get(), path);
  const int64_t C = s.channels;
  std::vector<float> inter(static_cast<size_t>(s.frames * C));
  const sf_count_t got = sf_readf_float(f.get(), inter.data(), s.frames);
  if (got != s.frames)
    throw IOError(str_cat("audio.load: '", path, "' is truncated: its header states ", s.frames, " frames, only ", got,
                          " could be read"));
  Tensor out = Tensor::empty({mono ? 1 : C, s.frames});
  float* o = out.data<float>();
  for (int64_t i = 0; i < s.frames; ++i) {
    const float* frame = inter.data() + i * C;
    for (int64_t c = 0; c < C; ++c) {
      if (!std::isfinite(frame[c]))
        throw ValueError(str_cat("audio.load: '", path, "' holds a non-finite sample (frame ", i, ", channel ", c, ")"));
    }
    if (mono) {
      float acc = 0.f;
      for (int64_t c = 0; c < C; ++c) acc += frame[c];
      o[i] = acc / static_cast<float>(C);
    } else {
      for (int64_t c = 0; c < C; ++c) o[c * s.frames + i] = frame[c];
    }
  }
  LoadedAudio a{out, s.samplerate};
  if (sr > 0 && sr != s.samplerate) {
    a.samples = resample(out, s.samplerate, sr, "soxr_hq");
    a.sample_rate = sr;
  }
  return a;
}

int64_t save(const std::string& path, const Tensor& x, int64_t sr, const std::string& subtype) {
  ops::detail::check_defined(x, "audio.save", "x");
  ops::detail::check_floating(x, "audio.save", "x");
  TSE_CHECK(x.dim() == 1 || x.dim() == 2, "audio.save: x must be (frames) or (channels, frames), got ", x.shape_str());
  TSE_CHECK(sr > 0 && sr <= 1'000'000, "audio.save: sr must be a positive rate, got ", sr);
  const Tensor x2 = (x.dim() == 1 ? x.unsqueeze(0) : x).detach().to(DType::f32).contiguous();
  const int64_t C = x2.size(0), N = x2.size(1);
  TSE_CHECK(C >= 1 && C <= 1024 && N >= 1, "audio.save: x of shape ", x.shape_str(), " holds no frames to write");
  const int format = write_format(path, subtype);
  const bool clip = is_pcm(format);
  const float* p = x2.data<float>();
  std::vector<float> inter(static_cast<size_t>(C * N));
  int64_t clipped = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < C; ++c) {
      float v = p[c * N + i];
      TSE_CHECK(std::isfinite(v), "audio.save: x holds a non-finite sample (channel ", c, ", frame ", i, ")");
      if (clip && (v > 1.f || v < -1.f)) {
        v = std::clamp(v, -1.f, 1.f);
        ++clipped;
      }
      inter[static_cast<size_t>(i * C + c)] = v;
    }

  // Written through a temp file next to the destination, then renamed over it (AtomicFile): an
  // existing file is replaced whole or not at all.
  tse::detail::AtomicFile out(path, "audio.save");
  SF_INFO s{};
  s.samplerate = static_cast<int>(sr);
  s.channels = static_cast<int>(C);
  s.format = format;
  {
    SndfilePtr f(sf_open_fd(out.fd(), SFM_WRITE, &s, SF_FALSE));  // SF_FALSE: AtomicFile closes the fd
    if (!f) throw IOError(str_cat("audio.save: cannot write '", path, "': ", sf_strerror(nullptr)));
    // PCM conversion: full scale is 1.0, and libsndfile's own clipping saturates instead of wrapping.
    sf_command(f.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    const sf_count_t put = sf_writef_float(f.get(), inter.data(), N);
    if (put != N)
      throw IOError(str_cat("audio.save: writing '", path, "' failed after ", put, " of ", N, " frames: ",
                            sf_strerror(f.get())));
  }  // sf_close writes the final header fields
  out.commit();
  return clipped;
}

Mixture mix_at_snr(const Tensor& target, const Tensor& noise, double snr_db, bool peak_normalize) {
  ops::detail::check_defined(target, "mix_at_snr", "target");
  ops::detail::check_defined(noise, "mix_at_snr", "noise");
  ops::detail::check_floating(target, "mix_at_snr", "target");
  TSE_CHECK(target.sizes() == noise.sizes() && target.dtype() == noise.dtype() && target.dim() >= 1,
            "mix_at_snr: target ", target.shape_str(), " and noise ", noise.shape_str(),
            " must be (..., L) of one shape and dtype");
  TSE_CHECK(std::isfinite(snr_db), "mix_at_snr: snr_db must be finite, got ", snr_db);
  const int64_t last = target.dim() - 1;
  const Tensor ps = ops::mean(target * target, {last}, true), pn = ops::mean(noise * noise, {last}, true);
  // n <- n sqrt(P_s / (10^(snr/10) P_n)); a silent noise stays silent (scale 0, not NaN).
  const Tensor safe_pn = ops::where(ops::gt(pn, 0.0), pn, ops::ones_like(pn));
  const Tensor scale = ops::where(ops::gt(pn, 0.0), ops::sqrt(ops::div(ps, ops::mul(safe_pn, std::pow(10.0, snr_db / 10)))),
                                  ops::zeros_like(pn));
  Mixture m;
  m.noise = ops::mul(noise, scale);
  m.target = target;
  m.mixture = ops::add(target, m.noise);
  m.gain = ops::ones_like(ps);
  if (peak_normalize) {
    const Tensor peak = ops::amax(ops::abs(m.mixture), {last}, true);
    m.gain = ops::where(ops::gt(peak, 1.0), ops::rdiv(peak, 0.9), m.gain);
    m.mixture = ops::mul(m.mixture, m.gain);
    m.target = ops::mul(m.target, m.gain);
    m.noise = ops::mul(m.noise, m.gain);
  }
  m.gain = m.gain.squeeze(last);
  return m;
}

Tensor pad_or_trim(const Tensor& x, int64_t length) {
  ops::detail::check_defined(x, "pad_or_trim", "input");
  TSE_CHECK(x.dim() >= 1 && length >= 0, "pad_or_trim: needs (..., L) input and length >= 0, got ", x.shape_str(),
            " and ", length);
  const int64_t L = x.size(x.dim() - 1);
  return L >= length ? x.narrow(x.dim() - 1, 0, length) : ops::pad(x, {0, length - L});
}

Tensor random_segment(const Tensor& x, int64_t length) {
  ops::detail::check_defined(x, "random_segment", "input");
  TSE_CHECK(x.dim() >= 1 && length >= 1, "random_segment: needs (..., L) input and length >= 1, got ", x.shape_str(),
            " and ", length);
  const int64_t L = x.size(x.dim() - 1);
  if (L <= length) return pad_or_trim(x, length);
  const int64_t start = static_cast<int64_t>(ops::randint(0, L - length + 1, {1}).item());
  return x.narrow(x.dim() - 1, start, length);
}

}  // namespace tse::audio
