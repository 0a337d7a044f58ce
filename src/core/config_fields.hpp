#pragma once
// ConfigFields: one table of a config struct's fields drives its JSON round trip, so adding a
// field is one line and every config (models, data, trainer; TOML arrives as JSON from Python)
// rejects unknown keys and wrong types the same way, naming the key. Private to libtse.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tse/core/error.hpp"

namespace tse::detail {

template <class Config>
class ConfigFields {
 public:
  /// `who` prefixes error messages ("ConformerTSEConfig").
  explicit ConfigFields(std::string who) : who_(std::move(who)) {}
  ConfigFields(const ConfigFields&) = delete;  // the field lambdas hold `this`
  ConfigFields& operator=(const ConfigFields&) = delete;

  ConfigFields& add(const char* key, int64_t Config::*member) {
    return add_field(key, [member](const Config& c) { return nlohmann::ordered_json(c.*member); },
                     [member, this, key](Config& c, const nlohmann::json& v) {
                       check(v.is_number_integer(), key, "an integer", v);
                       c.*member = v.get<int64_t>();
                     });
  }
  ConfigFields& add(const char* key, uint64_t Config::*member) {
    return add_field(key, [member](const Config& c) { return nlohmann::ordered_json(c.*member); },
                     [member, this, key](Config& c, const nlohmann::json& v) {
                       check(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), key,
                             "a non-negative integer", v);
                       c.*member = v.get<uint64_t>();
                     });
  }
  ConfigFields& add(const char* key, double Config::*member) {
    return add_field(key, [member](const Config& c) { return nlohmann::ordered_json(c.*member); },
                     [member, this, key](Config& c, const nlohmann::json& v) {
                       check(v.is_number(), key, "a number", v);
                       c.*member = v.get<double>();
                     });
  }
  ConfigFields& add(const char* key, bool Config::*member) {
    return add_field(key, [member](const Config& c) { return nlohmann::ordered_json(c.*member); },
                     [member, this, key](Config& c, const nlohmann::json& v) {
                       check(v.is_boolean(), key, "true or false", v);
                       c.*member = v.get<bool>();
                     });
  }
  ConfigFields& add(const char* key, std::string Config::*member) {
    return add_field(key, [member](const Config& c) { return nlohmann::ordered_json(c.*member); },
                     [member, this, key](Config& c, const nlohmann::json& v) {
                       check(v.is_string(), key, "a string", v);
                       c.*member = v.get<std::string>();
                     });
  }
  ConfigFields& add(const char* key, std::vector<int64_t> Config::*member) {
    return add_field(key, [member](const Config& c) { return nlohmann::ordered_json(c.*member); },
                     [member, this, key](Config& c, const nlohmann::json& v) {
                       bool ok = v.is_array();
                       if (ok)
                         for (const auto& e : v) ok = ok && e.is_number_integer();
                       check(ok, key, "a list of integers", v);
                       c.*member = v.get<std::vector<int64_t>>();
                     });
  }
  /// An enum stored as one of the given names.
  template <class Enum>
  ConfigFields& add_enum(const char* key, Enum Config::*member, std::vector<std::pair<std::string, Enum>> names) {
    return add_field(
        key,
        [member, names](const Config& c) {
          for (const auto& [n, e] : names)
            if (e == c.*member) return nlohmann::ordered_json(n);
          return nlohmann::ordered_json(nullptr);
        },
        [member, names, this, key](Config& c, const nlohmann::json& v) {
          std::string choices;
          for (const auto& [n, e] : names) {
            if (v.is_string() && v.get<std::string>() == n) {
              c.*member = e;
              return;
            }
            choices += (choices.empty() ? "\"" : ", \"") + n + "\"";
          }
          throw ValueError(who_ + ".from_json: \"" + key + "\" must be one of " + choices + ", got " + v.dump());
        });
  }

  /// Every field, in table order.
  nlohmann::ordered_json to_json(const Config& c) const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& f : fields_) j[f.key] = f.get(c);
    return j;
  }
  /// Starts from `base` and sets the keys present; ValueError for unknown keys and wrong types.
  Config from_json(const nlohmann::json& j, Config base = {}) const {
    TSE_CHECK(j.is_object(), who_, ".from_json: expected a JSON object, got ", j.dump());
    for (auto it = j.begin(); it != j.end(); ++it) {
      const Field* field = nullptr;
      for (const auto& f : fields_)
        if (f.key == it.key()) field = &f;
      if (!field) {
        std::string known;
        for (const auto& f : fields_) known += (known.empty() ? "" : ", ") + f.key;
        throw ValueError(who_ + ".from_json: unknown key \"" + it.key() + "\" (known: " + known + ")");
      }
      field->set(base, it.value());
    }
    return base;
  }
  Config from_json_text(const std::string& text, Config base = {}) const {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw ValueError(who_ + ".from_json: not valid JSON: " + e.what());
    }
    return from_json(j, std::move(base));
  }

 private:
  struct Field {
    std::string key;
    std::function<nlohmann::ordered_json(const Config&)> get;
    std::function<void(Config&, const nlohmann::json&)> set;
  };
  ConfigFields& add_field(const char* key, std::function<nlohmann::ordered_json(const Config&)> get,
                          std::function<void(Config&, const nlohmann::json&)> set) {
    fields_.push_back({key, std::move(get), std::move(set)});
    return *this;
  }
  void check(bool ok, const char* key, const char* expected, const nlohmann::json& v) const {
    if (!ok) throw ValueError(who_ + ".from_json: \"" + key + "\" must be " + expected + ", got " + v.dump());
  }

  std::string who_;
  std::vector<Field> fields_;
};

}  // namespace tse::detail
