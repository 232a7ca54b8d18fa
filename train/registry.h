#pragma once
// The machinery of registries. Recipes name models, tasks, losses, optimizers, schedules and
// metrics by `type:`; each family declares its registry beside its own code (models():
// train/models/model_registry.h; tasks(), losses(), metrics(): train/task.h; optimizers():
// train/optim.h; schedules(): train/schedule.h), and each type registers itself by name next to
// its code with a static Registration, e.g.
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
#include "train/recipe.h"

namespace tessera::train {

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

 private:
  std::string kind_;
  std::vector<Entry<Factory>> entries_;
};

template <class Factory>
struct Registration {
  Registration(Registry<Factory>& registry, Entry<Factory> entry) { registry.add(std::move(entry)); }
};

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
