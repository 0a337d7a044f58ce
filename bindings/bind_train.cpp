// tse.train: the data pipeline (built-in sounds, on-the-fly mixing) and the Trainer.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

// ---- data pipeline (tse/train/data.hpp) -----------------------------------------------------

using train::ClipBank;
using ConstBank = std::shared_ptr<const ClipBank>;

std::shared_ptr<ClipBank> mutable_bank(const ConstBank& b) { return std::const_pointer_cast<ClipBank>(b); }

py::tuple split_tuple(const train::HeldOutSplit& s) { return py::make_tuple(mutable_bank(s.train), mutable_bank(s.test)); }

train::SplitOptions split_options(int64_t sample_rate, int64_t min_files_for_file_split, double file_test_fraction,
                                  double time_test_fraction, std::vector<double> train_speeds) {
  train::SplitOptions o;
  o.sample_rate = sample_rate;
  o.min_files_for_file_split = min_files_for_file_split;
  o.file_test_fraction = file_test_fraction;
  o.time_test_fraction = time_test_fraction;
  o.train_speeds = std::move(train_speeds);
  return o;
}

std::string fspath(const py::object& p) { return py::str(py::module_::import("os").attr("fspath")(p)); }

void bind_train_data(py::module_& m) {
  py::class_<train::SoundClip>(m, "SoundClip", "One labelled sound file.")
      .def(py::init([](const py::object& path, std::string label) { return train::SoundClip{fspath(path), std::move(label)}; }),
           py::arg("path"), py::arg("label"))
      .def_readonly("path", &train::SoundClip::path)
      .def_readonly("label", &train::SoundClip::label)
      .def("__repr__", [](const train::SoundClip& c) { return "SoundClip(path='" + c.path + "', label='" + c.label + "')"; });

  py::class_<train::SoundCatalog>(m, "SoundCatalog", "Labelled sound files; labels sorted and unique.")
      .def(py::init(&train::SoundCatalog::from_clips), py::arg("clips"),
           "A catalog of SoundClip(path, label)s; labels are their sorted distinct labels.")
      .def_readonly("labels", &train::SoundCatalog::labels)
      .def_readonly("clips", &train::SoundCatalog::clips)
      .def_static(
          "builtin",
          [](const py::object& root) {
            const std::string r = fspath(root);
            py::gil_scoped_release nogil;
            return train::SoundCatalog::builtin(r);
          },
          py::arg("root") = "/usr/share/sounds",
          "The built-in catalog over the Debian packages sound-icons, alsa-utils, sound-theme-freedesktop and "
          "oxygen-sounds (18 labels; regular files only). RuntimeError telling you to run scripts/setup-deps "
          "when they are missing.")
      .def_static(
          "from_csv",
          [](const py::object& path) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            return train::SoundCatalog::from_csv(p);
          },
          py::arg("path"), "A CSV with columns path,label; relative paths are relative to the CSV's folder.")
      .def("label_index", &train::SoundCatalog::label_index, py::arg("label"),
           "Index of label in labels; ValueError listing the known labels.")
      .def("__len__", [](const train::SoundCatalog& c) { return c.clips.size(); });

  py::class_<train::BankClip>(m, "BankClip", "One decoded clip (or time part of a file) of a ClipBank.")
      .def_readonly("samples", &train::BankClip::samples, "(L,) float32 at the bank's rate")
      .def_readonly("variants", &train::BankClip::variants, "one (L_k,) tensor per bank speed")
      .def_readonly("label", &train::BankClip::label)
      .def_readonly("source", &train::BankClip::source)
      .def_readonly("start", &train::BankClip::start, "first sample within the trimmed decoded file")
      .def_readonly("end", &train::BankClip::end, "one past the last sample");

  py::class_<ClipBank, std::shared_ptr<ClipBank>>(m, "ClipBank", "Decoded mono float32 clips with labels.")
      .def(py::init<std::vector<std::string>, int64_t, std::vector<double>>(), py::arg("labels"),
           py::arg("sample_rate"), py::arg("speeds") = std::vector<double>{1.0})
      .def(
          "add",
          [](ClipBank& b, int64_t label, const Tensor& samples, const std::string& source, int64_t start) {
            py::gil_scoped_release nogil;
            b.add(label, samples, source, start);
          },
          py::arg("label"), py::arg("samples"), py::arg("source") = "", py::arg("start") = 0,
          "Adds a (L,) or (1, L) float32 clip and computes its speed variants.")
      .def_static(
          "load",
          [](const train::SoundCatalog& c, int64_t sr, std::vector<double> speeds) {
            py::gil_scoped_release nogil;
            return std::make_shared<ClipBank>(ClipBank::load(c, sr, std::move(speeds)));
          },
          py::arg("catalog"), py::arg("sample_rate"), py::arg("speeds") = std::vector<double>{1.0},
          "Decodes every catalog clip (mono, at sample_rate) and trims its silence (-50 dB below the peak).")
      .def("__len__", &ClipBank::size)
      .def_property_readonly("size", &ClipBank::size)
      .def("clip", &ClipBank::clip, py::arg("index"))
      .def_property_readonly("clips", &ClipBank::clips)
      .def_property_readonly("labels", &ClipBank::labels)
      .def_property_readonly("num_labels", &ClipBank::num_labels)
      .def_property_readonly("sample_rate", &ClipBank::sample_rate)
      .def_property_readonly("speeds", &ClipBank::speeds)
      .def_property_readonly("unit_speed", &ClipBank::unit_speed)
      .def_property_readonly("present_labels", &ClipBank::present_labels)
      .def_property_readonly("total_samples", &ClipBank::total_samples)
      .def("clips_of", &ClipBank::clips_of, py::arg("label"));

  m.def("trim_silence", &train::trim_silence, py::arg("x"), py::arg("threshold_db") = -50.0, py::arg("margin") = 0,
        "[begin, end) of x (L,) without the samples <= peak * 10^(threshold_db / 20) at either end (plus margin).");

  const train::SplitOptions sd;
  m.def(
      "split",
      [](const train::SoundCatalog& c, int64_t sr, int64_t min_files, double file_frac, double time_frac,
         std::vector<double> speeds) {
        const train::SplitOptions o = split_options(sr, min_files, file_frac, time_frac, std::move(speeds));
        train::HeldOutSplit s;
        {
          py::gil_scoped_release nogil;
          s = train::split(c, o);
        }
        return split_tuple(s);
      },
      py::arg("catalog"), py::kw_only(), py::arg("sample_rate") = sd.sample_rate,
      py::arg("min_files_for_file_split") = sd.min_files_for_file_split,
      py::arg("file_test_fraction") = sd.file_test_fraction, py::arg("time_test_fraction") = sd.time_test_fraction,
      py::arg("train_speeds") = sd.train_speeds,
      "(train bank, test bank): classes with >= min_files_for_file_split files hold out whole files, smaller "
      "classes the last time_test_fraction of every file.");
  m.def(
      "split_builtin",
      [](const py::object& root, int64_t sr, int64_t min_files, double file_frac, double time_frac,
         std::vector<double> speeds) {
        const std::string r = fspath(root);
        const train::SplitOptions o = split_options(sr, min_files, file_frac, time_frac, std::move(speeds));
        train::HeldOutSplit s;
        {
          py::gil_scoped_release nogil;
          s = train::split_builtin(r, o);
        }
        return split_tuple(s);
      },
      py::arg("root") = "/usr/share/sounds", py::kw_only(), py::arg("sample_rate") = sd.sample_rate,
      py::arg("min_files_for_file_split") = sd.min_files_for_file_split,
      py::arg("file_test_fraction") = sd.file_test_fraction, py::arg("time_test_fraction") = sd.time_test_fraction,
      py::arg("train_speeds") = sd.train_speeds, "split(SoundCatalog.builtin(root), ...)");

  const train::MixtureOptions od;
  py::class_<train::MixtureOptions>(m, "MixtureOptions", "How MixtureSampler builds its mixtures.")
      .def(py::init([](int64_t sample_rate, int64_t segment_samples, double snr_db_min, double snr_db_max,
                       bool peak_normalize, int64_t num_interferers, bool augment, double gain_db_min,
                       double gain_db_max, bool speed_perturb, double loop_probability, double silence_db,
                       int64_t max_draws) {
             return train::MixtureOptions{sample_rate, segment_samples, snr_db_min,  snr_db_max,      peak_normalize,
                                          num_interferers, augment,     gain_db_min, gain_db_max, speed_perturb,
                                          loop_probability, silence_db, max_draws};
           }),
           py::kw_only(), py::arg("sample_rate") = od.sample_rate, py::arg("segment_samples") = od.segment_samples,
           py::arg("snr_db_min") = od.snr_db_min, py::arg("snr_db_max") = od.snr_db_max,
           py::arg("peak_normalize") = od.peak_normalize, py::arg("num_interferers") = od.num_interferers,
           py::arg("augment") = od.augment, py::arg("gain_db_min") = od.gain_db_min,
           py::arg("gain_db_max") = od.gain_db_max, py::arg("speed_perturb") = od.speed_perturb,
           py::arg("loop_probability") = od.loop_probability, py::arg("silence_db") = od.silence_db,
           py::arg("max_draws") = od.max_draws)
      .def_readwrite("sample_rate", &train::MixtureOptions::sample_rate)
      .def_readwrite("segment_samples", &train::MixtureOptions::segment_samples)
      .def_readwrite("snr_db_min", &train::MixtureOptions::snr_db_min)
      .def_readwrite("snr_db_max", &train::MixtureOptions::snr_db_max)
      .def_readwrite("peak_normalize", &train::MixtureOptions::peak_normalize)
      .def_readwrite("num_interferers", &train::MixtureOptions::num_interferers)
      .def_readwrite("augment", &train::MixtureOptions::augment)
      .def_readwrite("gain_db_min", &train::MixtureOptions::gain_db_min)
      .def_readwrite("gain_db_max", &train::MixtureOptions::gain_db_max)
      .def_readwrite("speed_perturb", &train::MixtureOptions::speed_perturb)
      .def_readwrite("loop_probability", &train::MixtureOptions::loop_probability)
      .def_readwrite("silence_db", &train::MixtureOptions::silence_db)
      .def_readwrite("max_draws", &train::MixtureOptions::max_draws);

  py::class_<train::MixtureBatch>(m, "MixtureBatch", "mixture = target + interference, each (B, L) float32.")
      .def_readonly("mixture", &train::MixtureBatch::mixture)
      .def_readonly("target", &train::MixtureBatch::target)
      .def_readonly("interference", &train::MixtureBatch::interference)
      .def_readonly("target_label", &train::MixtureBatch::target_label, "the query: the target's label index")
      .def_readonly("interference_label", &train::MixtureBatch::interference_label)
      .def_readonly("snr_db", &train::MixtureBatch::snr_db)
      .def("__len__", [](const train::MixtureBatch& b) { return b.target_label.size(); });

  py::class_<train::MixtureSampler, std::shared_ptr<train::MixtureSampler>>(m, "MixtureSampler",
                                    "On-the-fly mixtures; batch(index, batch_size) is a pure function of "
                                    "(seed, index, batch_size).")
      .def(py::init([](const std::shared_ptr<ClipBank>& bank, std::optional<train::MixtureOptions> o, uint64_t seed) {
             return train::MixtureSampler(bank, o.value_or(train::MixtureOptions{}), seed);
           }),
           py::arg("bank"), py::arg("options") = py::none(), py::arg("seed") = 0)
      .def(
          "batch",
          [](const train::MixtureSampler& s, int64_t index, int64_t batch_size) {
            py::gil_scoped_release nogil;
            return s.batch(index, batch_size);
          },
          py::arg("index"), py::arg("batch_size"))
      .def_property_readonly("options", &train::MixtureSampler::options)
      .def_property_readonly("seed", &train::MixtureSampler::seed)
      .def_property_readonly("bank", [](const train::MixtureSampler& s) { return mutable_bank(s.bank()); });

  m.attr("TEST_MIXTURE_SEED") = train::kTestMixtureSeed;
  m.def(
      "make_test_mixtures",
      [](const ClipBank& test, int64_t count, double snr_db, int64_t segment_samples, uint64_t seed) {
        py::gil_scoped_release nogil;
        return train::make_test_mixtures(test, count, snr_db, segment_samples, seed);
      },
      py::arg("test"), py::arg("count") = 200, py::arg("snr_db") = 0.0, py::arg("segment_samples") = 32000,
      py::arg("seed") = train::kTestMixtureSeed,
      "The fixed held-out set: no augmentation, target labels round-robin, interferer of another label.");
}

// ---- trainer (tse/train/trainer.hpp) ------------------------------------------------------

std::string trainer_config_json(const py::object& config, const py::kwargs& kwargs) {
  py::dict merged;
  if (!config.is_none()) {
    if (!py::isinstance<py::dict>(config)) throw py::type_error("Trainer: config must be a dict (or pass keyword arguments)");
    for (auto item : config.cast<py::dict>()) merged[item.first] = item.second;
  }
  for (auto item : kwargs) merged[item.first] = item.second;
  return py::module_::import("json").attr("dumps")(merged).cast<std::string>();
}

void bind_trainer(py::module_& m) {
  py::class_<train::StepStats>(m, "StepStats", "One optimiser step.")
      .def_readonly("step", &train::StepStats::step)
      .def_readonly("loss", &train::StepStats::loss)
      .def_readonly("lr", &train::StepStats::lr)
      .def_readonly("grad_norm", &train::StepStats::grad_norm)
      .def_readonly("seconds", &train::StepStats::seconds)
      .def_readonly("mixtures_per_second", &train::StepStats::mixtures_per_second);

  py::class_<train::EvalResult>(m, "EvalResult", "SI-SDR / SI-SDRi on fixed mixtures, per mixture and per class.")
      .def_readonly("labels", &train::EvalResult::labels)
      .def_readonly("target_label", &train::EvalResult::target_label)
      .def_readonly("si_sdr", &train::EvalResult::si_sdr)
      .def_readonly("si_sdri", &train::EvalResult::si_sdri)
      .def_readonly("class_count", &train::EvalResult::class_count)
      .def_readonly("class_mean", &train::EvalResult::class_mean)
      .def_readonly("class_median", &train::EvalResult::class_median)
      .def_readonly("mean", &train::EvalResult::mean)
      .def_readonly("median", &train::EvalResult::median)
      .def_readonly("seconds", &train::EvalResult::seconds);

  m.def(
      "evaluate",
      [](models::Separator& model, const models::QueryEncoder& queries, const std::vector<std::string>& labels,
         const train::MixtureBatch& mixtures, int64_t batch_size) {
        py::gil_scoped_release nogil;
        return train::evaluate(model, queries, labels, mixtures, batch_size);
      },
      py::arg("model"), py::arg("queries"), py::arg("labels"), py::arg("mixtures"), py::arg("batch_size") = 20,
      "SI-SDR and SI-SDRi of a model on fixed mixtures, each queried by its target's label");

  py::class_<train::Trainer>(m, "Trainer",
                             "Trains a Separator on MixtureSampler batches: validation, metrics CSV, progress, "
                             "atomic checkpoints and bit-exact resume")
      .def(py::init([](std::shared_ptr<models::Separator> model, std::shared_ptr<models::QueryEncoder> queries,
                       std::shared_ptr<train::MixtureSampler> data, py::object config, py::kwargs kwargs) {
             return std::make_unique<train::Trainer>(std::move(model), std::move(queries), std::move(data),
                                                     train::TrainerConfig::from_json(trainer_config_json(config, kwargs)));
           }),
           py::arg("model"), py::arg("queries"), py::arg("data"), py::arg("config") = py::none(),
           py::keep_alive<1, 2>(), py::keep_alive<1, 3>(), py::keep_alive<1, 4>())
      .def_property_readonly("config",
                             [](const train::Trainer& t) { return py::module_::import("json").attr("loads")(t.config().to_json()); })
      .def_property_readonly("step", &train::Trainer::step)
      .def_property_readonly("labels", &train::Trainer::labels)
      .def("set_validation", &train::Trainer::set_validation, py::arg("mixtures"))
      .def(
          "fit",
          [](train::Trainer& t, py::object callback) {
            // Ctrl-C reaches Python between steps: the callback checks for signals with the GIL.
            auto cb = [&callback](const train::StepStats& s) {
              py::gil_scoped_acquire gil;
              if (PyErr_CheckSignals() != 0) throw py::error_already_set();
              if (callback.is_none()) return true;
              py::object r = callback(s);
              return r.is_none() || r.cast<bool>();
            };
            py::gil_scoped_release nogil;
            return t.fit(cb);
          },
          py::arg("callback") = py::none(),
          "train to config['max_steps']; callback(StepStats) after each step may return False to stop")
      .def(
          "train_step",
          [](train::Trainer& t) {
            py::gil_scoped_release nogil;
            return t.train_step();
          })
      .def(
          "evaluate",
          [](const train::Trainer& t, const train::MixtureBatch& b) {
            py::gil_scoped_release nogil;
            return t.evaluate(b);
          },
          py::arg("mixtures"))
      .def(
          "save_checkpoint",
          [](train::Trainer& t, py::object path) {
            if (path.is_none()) {
              py::gil_scoped_release nogil;
              return t.save_checkpoint();
            }
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            t.save_checkpoint_to(p);
            return p;
          },
          py::arg("path") = py::none(), "to output_dir/checkpoints (or to path); returns the file written")
      .def(
          "load_checkpoint",
          [](train::Trainer& t, const py::object& path) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            t.load_checkpoint(p);
          },
          py::arg("path"))
      .def(
          "resume",
          [](train::Trainer& t, const py::object& path) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            return t.resume(p);
          },
          py::arg("checkpoint_or_output_dir"), "loads a checkpoint file or an output folder's newest loadable one")
      .def_static(
          "latest_checkpoint", [](const py::object& dir) { return train::Trainer::latest_checkpoint(fspath(dir)); },
          py::arg("output_dir"))
      .def(
          "export_model",
          [](const train::Trainer& t, const py::object& path) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            t.export_model(p);
          },
          py::arg("path"), "the model with its query encoder (tse.models.load_separator reads it)")
      .def(
          "queries_for", [](const train::Trainer& t, const std::vector<int64_t>& labels) { return t.queries_for(labels); },
          py::arg("labels"));
}

}  // namespace

void bind_train(py::module_& m) {
  py::module_ train = m.def_submodule("train", "Data pipeline and Trainer");
  bind_train_data(train);
  bind_trainer(train);
}

}  // namespace tse::python
