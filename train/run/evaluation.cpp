#include "train/run/evaluation.h"

#include <cmath>

#include "train/registry.h"

namespace tessera::train {

Evaluation::Evaluation(const RunFolder& folder)
    : folder_(folder),
      every_(folder.recipe.section("eval").integer("every")),
      best_metric_(folder.recipe.section("checkpoint").string("best_metric")) {}

bool Evaluation::due(const Trainer& trainer) const {
  if (!trainer.has_eval()) return false;
  const int64_t s = trainer.steps_done();
  return (every_ > 0 && s % every_ == 0) || s == trainer.total_steps();
}

Evaluation::Result Evaluation::run(Trainer& trainer) const {
  Result result{trainer.evaluate(), false};
  trainer.write_samples(folder_.dir.string());
  for (const auto& [name, v] : result.values)
    if (name == best_metric_) {
      const bool higher = metrics().get(name).make()->higher_is_better();
      const double best = trainer.best_value;
      result.is_best = std::isnan(best) || (higher ? v > best : v < best);
      if (result.is_best) trainer.best_value = v;
    }
  return result;
}

}  // namespace tessera::train
