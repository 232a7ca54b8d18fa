// Learning-rate schedules: warm-up, cosine and linear decay, against their closed forms.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numbers>

#include "autograd/error.h"
#include "train/recipe.h"
#include "train/schedule.h"

using namespace tessera;
using namespace tessera::train;

BOOST_AUTO_TEST_SUITE(schedule)

BOOST_AUTO_TEST_CASE(warmup_is_linear_and_moves_from_the_first_step) {
  const Schedule s({Decay::constant, 1.0, 0, 4, 10});
  BOOST_TEST(s.lr(0) == 0.25);
  BOOST_TEST(s.lr(1) == 0.5);
  BOOST_TEST(s.lr(3) == 1.0);
  BOOST_TEST(s.lr(9) == 1.0);
}

BOOST_AUTO_TEST_CASE(cosine_runs_from_base_to_min) {
  const Schedule s({Decay::cosine, 1.0, 0.1, 2, 12});  // decay over steps 2..11
  BOOST_TEST(s.lr(2) == 1.0);
  BOOST_TEST(std::abs(s.lr(11) - 0.1) < 1e-12);
  const double t = 3.0 / 9.0;
  BOOST_TEST(std::abs(s.lr(5) - (0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * t)))) < 1e-12);
  for (int64_t i = 3; i < 12; ++i) BOOST_TEST(s.lr(i) < s.lr(i - 1));
}

BOOST_AUTO_TEST_CASE(linear_decay_midpoint) {
  const Schedule s({Decay::linear, 2.0, 0, 0, 11});
  BOOST_TEST(s.lr(0) == 2.0);
  BOOST_TEST(std::abs(s.lr(5) - 1.0) < 1e-12);
  BOOST_TEST(s.lr(10) == 0.0);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused) {
  BOOST_CHECK_THROW(Schedule({Decay::cosine, 1.0, 0, 20, 10}), Error);
  BOOST_CHECK_THROW(Schedule({Decay::cosine, 1.0, 0, 0, 0}), Error);
}

// From a recipe, a warm-up longer than the run is shortened to the run (with a notice on stderr).
BOOST_AUTO_TEST_CASE(a_recipe_warmup_longer_than_the_run_is_shortened) {
  const Recipe r = Recipe::parse("data: {train: a.h5}\nmodel: {type: mlp}\ntrain: {steps: 20}\n"
                                 "schedule: {type: cosine, warmup_steps: 100}\n", "r.yaml");
  const Schedule s = schedules().get("cosine").make(r.section("schedule"), 1.0, 20);
  BOOST_TEST(s.lr(0) == 1.0 / 20);
  BOOST_TEST(s.lr(19) == 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
