#pragma once
// End-to-end runs of the `tessera` binary on a tiny labelled data set (6x6 images, 3 classes):
// a scratch folder holding train.h5 (40 images), eval.h5 (30) and tiny.yaml, and the checks that
// two runs ended the same.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.h"
#include "train/checkpoint.h"

namespace tessera::testing {

struct TinyRunFolder : ScratchDir {
  TinyRunFolder(const std::string& name, const std::string& recipe) : ScratchDir(name) {
    write_tiny_dataset(*this / "train.h5", 40, 1);
    write_tiny_dataset(*this / "eval.h5", 30, 2);
    write_file(*this / "tiny.yaml", recipe);
  }
  RunResult tessera(const std::string& args) const { return run_tessera(args, path.string()); }
};

// Parameters, EMA and optimizer state equal to the bit, and the same step and data position.
inline void require_identical(const std::string& a_path, const std::string& b_path) {
  const train::Checkpoint a = train::load_checkpoint(a_path), b = train::load_checkpoint(b_path);
  BOOST_TEST(a.meta.step == b.meta.step);
  for (auto group : {&train::Checkpoint::params, &train::Checkpoint::ema, &train::Checkpoint::optim}) {
    BOOST_REQUIRE_EQUAL((a.*group).size(), (b.*group).size());
    BOOST_REQUIRE(!(a.*group).empty());
    for (const auto& [name, t] : a.*group) {
      const Tensor& u = (b.*group).at(name);
      BOOST_REQUIRE(t.shape() == u.shape());
      BOOST_TEST(std::memcmp(t.raw_data(), u.raw_data(), size_t(t.numel()) * element_size(t.dtype())) == 0,
                 name << " differs between " << a_path << " and " << b_path);
    }
  }
  BOOST_TEST(a.meta.loader_position == b.meta.loader_position);
  BOOST_TEST(a.meta.best_value == b.meta.best_value);
}

// The eval lines of a metrics.jsonl (they hold no timings, so two equal runs log equal lines).
inline std::vector<std::string> eval_lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);)
    if (line.find("\"split\": \"eval\"") != std::string::npos) out.push_back(line);
  return out;
}

inline double json_number(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\": ");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, key + " not in " + json);
  return std::stod(json.substr(at + key.size() + 4));
}

}  // namespace tessera::testing
