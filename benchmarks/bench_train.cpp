// One Trainer step (a MixtureSampler batch, forward, negative SI-SDR, backward, gradient-norm
// clipping, AdamW, schedule) on the built-in sounds (needs scripts/setup-deps), 1 s crops at
// 32 kHz (63 frames):
//   train.step_demo_b16   the demo's model (4 x 128, FFN 512, kernel 33) at batch 16; its note is
//                         the training throughput in mixtures/s (the demo's target: >= 28)
//   train.step_paper_b4   the paper size (16 x 256, FFN 1024) at batch 4
// The peer is the model's GEMMs forward and backward (dX and dW) run raw through oneDNN, so
// 1 / ratio is everything else a step costs. Tagged "model" and "long".
#include <cstdio>

#include "bench.hpp"
#include "conformer_gemms.hpp"
#include "tse/train/trainer.hpp"

namespace {

using namespace tse;

constexpr int64_t kSegment = 32000;

models::ConformerTSEConfig demo_model() {
  models::ConformerTSEConfig c;
  c.num_layers = 4;
  c.d_model = 128;
  c.ffn_dim = 512;
  return c;
}

struct Run {
  std::shared_ptr<train::Trainer> trainer;
  double last_rate = 0;
};

bench::Bench step_bench(const models::ConformerTSEConfig& config, int64_t batch, std::shared_ptr<Run> run) {
  manual_seed(0);
  auto model = std::make_shared<models::ConformerTSE>(config);
  auto split = train::split_builtin();
  train::MixtureOptions mo;
  mo.segment_samples = kSegment;
  auto data = std::make_shared<train::MixtureSampler>(split.train, mo, 0);
  auto queries = std::make_shared<models::LabelQueryEncoder>(split.train->labels(), config.query_dim, 0);
  train::TrainerConfig tc;
  tc.batch_size = batch;
  tc.max_steps = 1 << 30;
  tc.grad_clip = 5.0;
  tc.progress = false;
  run->trainer = std::make_shared<train::Trainer>(model, queries, data, tc);
  const int64_t T = 1 + kSegment / config.hop_length;
  auto peer = bench::gemm_peer(bench::model_gemms(config, batch, T), /*with_backward=*/true);
  auto out = bench::buffer(1);
  return {[run] {
            const train::StepStats s = run->trainer->train_step();
            run->last_rate = s.mixtures_per_second;
            return ops::full({1}, s.loss);
          },
          [=](int nt) { peer->run(nt); }, out};
}

const bool registered = [] {
  struct Row {
    const char* name;
    models::ConformerTSEConfig config;
    int64_t batch;
  };
  for (const Row& r : {Row{"train.step_demo_b16", demo_model(), 16}, Row{"train.step_paper_b4", {}, 4}}) {
    auto run = std::make_shared<Run>();
    const models::ConformerTSEConfig config = r.config;
    const int64_t batch = r.batch;
    bench::add({.name = r.name,
                .shape = "[" + std::to_string(batch) + ", 32000] 1 s, 63 frames",
                .tags = {"model", "long"},
                .flops = bench::model_gemm_flops(config, batch, 1 + kSegment / config.hop_length, true),
                .compare = false,
                .note = [run] {
                  char buf[96];
                  std::snprintf(buf, sizeof buf, "%.1f mixtures/s in the last step; %s", run->last_rate,
                                bench::peak_rss().c_str());
                  return std::string(buf);
                },
                .setup = [config, batch, run] { return step_bench(config, batch, run); }});
  }
  return true;
}();

}  // namespace
