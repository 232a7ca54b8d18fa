#pragma once
// Registries: recipes name models, tasks, losses, optimizers, schedules and metrics by `type:`,
// and each one is registered by name next to its code with a static Registration, e.g.
//
//   const Registration<ModelFactory> mlp{models(), {"mlp", "multilayer perceptron", "classification",
//                                         {integer_list("hidden", "[256]", "widths")}, build_mlp}};
//
// The entry's fields become that type's keys in the recipe (validated like any other key), and
// the factory gets them back as a validated Section. See docs/EXTENDING.md.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "autograd/random.h"
#include "nn/module.h"
#include "train/optim.h"
#include "train/recipe.h"
#include "train/schedule.h"
#include "train/task.h"

namespace tessera::train {

// What a model builder may know about the data, so recipes need not repeat it.
struct DataShape {
  int64_t channels = 0, height = 0, width = 0;
  int64_t num_classes = 0;  // 0 when the data set has no labels
  std::vector<std::string> class_names;  // the labels' names (zero-shot prompts of dual encoders)
};

using ModelFactory = std::function<std::shared_ptr<nn::Module>(const Section& model, const DataShape& data, Generator& gen)>;
using TaskFactory = std::function<std::unique_ptr<Task>(LossFn loss)>;
using LossFactory = std::function<LossFn(const Section& loss)>;
using OptimizerFactory = std::function<std::unique_ptr<Optimizer>(const Section& optim, std::vector<ParamGroup> groups)>;
using ScheduleFactory = std::function<Schedule(const Section& schedule, double base_lr, int64_t total_steps)>;
using MetricFactory = std::function<std::unique_ptr<Metric>()>;

template <class Factory>
struct Entry {
  std::string name;
  std::string summary;
  std::string task;           // models, losses, metrics: the task they serve ("" = any)
  std::vector<Field> fields;  // recipe keys this type adds to its section
  Factory make;
};

template <class Factory>
class Registry {
 public:
  explicit Registry(std::string kind) : kind_(std::move(kind)) {}
  void add(Entry<Factory> entry) {
    if (find(entry.name)) fail("{} '{}' is registered twice", kind_, entry.name);
    entries_.push_back(std::move(entry));
  }
  const Entry<Factory>* find(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }
  // Throws naming the unknown name, the nearest known one and the list.
  const Entry<Factory>& get(const std::string& name) const {
    if (const auto* e = find(name)) return *e;
    const std::string near = nearest_key(name, names());
    fail("unknown {} '{}'{} (known: {})", kind_, name, near.empty() ? "" : " (did you mean " + near + "?)",
         fmt::join(names(), ", "));
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }
  const std::vector<Entry<Factory>>& entries() const { return entries_; }
  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
  std::vector<Entry<Factory>> entries_;
};

template <class Factory>
struct Registration {
  Registration(Registry<Factory>& registry, Entry<Factory> entry) { registry.add(std::move(entry)); }
};

Registry<ModelFactory>& models();
Registry<TaskFactory>& tasks();
Registry<LossFactory>& losses();
Registry<OptimizerFactory>& optimizers();
Registry<ScheduleFactory>& schedules();
Registry<MetricFactory>& metrics();

// A recipe section whose keys depend on its `type:`, drawing that type's fields from `registry`.
template <class Factory>
Field typed_section(std::string key, std::string help, std::vector<Field> common, Registry<Factory>& (*registry)()) {
  Field f = section(std::move(key), std::move(help), std::move(common));
  f.typed_fields = [registry](const std::string& type) -> const std::vector<Field>* {
    const auto* e = registry().find(type);
    return e ? &e->fields : nullptr;
  };
  f.type_names = [registry] { return registry().names(); };
  return f;
}

}  // namespace tessera::train
