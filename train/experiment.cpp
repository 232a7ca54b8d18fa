#include "train/experiment.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <fmt/core.h>

#include "autograd/engine.h"
#include "kernels/bf16_gemm.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "train/weight_interop.h"

namespace tessera::train {

DataShape data_shape(const data::DatasetInfo& info, const Recipe& recipe) {
  DataShape shape;
  shape.channels = info.channels, shape.height = info.height, shape.width = info.width;
  shape.frames = info.frames;
  // Clips reach only a model that says how many frames it reads (a `frames` key of its own).
  const std::string type = recipe.section("model").string("type");
  if (info.frames > 1) {
    const auto& fields = models().get(type).fields;
    if (std::none_of(fields.begin(), fields.end(), [](const Field& f) { return f.key == "frames"; }))
      fail("{} holds clips of {} frames per sample, but model.type {} reads single images (model.type vlm with "
           "model.frames: {} reads clips)", info.path, info.frames, type, info.frames);
  }
  if (info.has_labels) shape.num_classes = int64_t(info.class_names.size()), shape.class_names = info.class_names;
  shape.object_class_names = info.object_class_names;
  shape.train_path = recipe.section("data").string("train");
  std::vector<std::string> names = recipe.section("data").strings("class_names");
  if (!names.empty()) {
    if (!info.has_labels) fail("data.class_names is set but {} has no labels", info.path);
    if (names.size() != info.class_names.size())
      fail("data.class_names has {} names but {} has {} classes ({})", names.size(), info.path,
           info.class_names.size(), fmt::join(info.class_names, ", "));
    shape.class_names = std::move(names);
  }
  return shape;
}

namespace {
void check_task(const std::string& what, const std::string& name, const std::string& task, const std::string& model_task,
                const std::string& model_type) {
  if (!task.empty() && task != model_task)
    fail("{} '{}' is for {} models, but model.type {} is a {} model", what, name, task, model_type, model_task);
}
}  // namespace

std::shared_ptr<nn::Module> build_model(const Recipe& recipe, const DataShape& shape, Generator& gen) {
  const Section s = recipe.section("model");
  std::shared_ptr<nn::Module> model = models().get(s.string("type")).make(s, shape, gen);
  // Weights trained elsewhere (fine-tuning); not when a checkpoint's weights replace them anyway.
  const std::string from = s.string("from");
  if (!from.empty() && !shape.weights_follow) model->load_state(read_weights_for(*model, from, "model.from"), false);
  return model;
}

std::unique_ptr<Task> build_task(const Recipe& recipe) {
  const std::string model_type = recipe.section("model").string("type");
  const auto& model = models().get(model_type);
  const Section loss = recipe.section("loss");
  const auto& loss_entry = losses().get(loss.string("type"));
  check_task("loss.type", loss_entry.name, loss_entry.task, model.task, model_type);
  return tasks().get(model.task).make(loss_entry.make(loss));
}

std::vector<std::string> metric_names(const Recipe& recipe, const Task& task) {
  std::vector<std::string> names = recipe.section("eval").strings("metrics");
  if (names.empty()) names = task.default_metrics();
  const std::string model_type = recipe.section("model").string("type");
  const std::string model_task = models().get(model_type).task;
  for (const std::string& n : names) {
    const auto* entry = metrics().find(n);
    if (!entry) {
      const std::string near = nearest_key(n, metrics().names());
      fail("eval.metrics: unknown metric '{}'{} (known: {})", n, near.empty() ? "" : " (did you mean " + near + "?)",
           fmt::join(metrics().names(), ", "));
    }
    check_task("eval.metrics:", n, entry->task, model_task, model_type);
  }
  return names;
}

std::unique_ptr<Optimizer> build_optimizer(const Recipe& recipe, const nn::Module& model) {
  const Section s = recipe.section("optim");
  auto groups = param_groups(model, s.number("weight_decay"), s.boolean("no_decay_1d"), s.strings("no_decay_names"),
                             parse_lr_scales(s.strings("lr_scales")));
  return optimizers().get(s.string("type")).make(s, std::move(groups));
}

data::LoaderOptions loader_options(const Recipe& recipe, bool training) {
  const Section d = recipe.section("data");
  data::LoaderOptions o;
  o.batch_size = training ? recipe.section("train").integer("batch_size") : recipe.section("eval").integer("batch_size");
  o.shuffle = training && d.boolean("shuffle");
  o.drop_last = training;
  o.seed = uint64_t(recipe.root().integer("seed"));
  o.mean.clear(), o.std.clear();
  for (double v : d.numbers("mean")) o.mean.push_back(float(v));
  for (double v : d.numbers("std")) o.std.push_back(float(v));
  if (training) o.augment = data::Augment{d.boolean("hflip"), d.integer("crop_padding")};
  o.prefetch = training ? int(d.integer("prefetch")) : 0;
  o.caption_templates = d.strings("caption_templates");
  o.class_names = d.strings("class_names");
  o.caption_index = training && d.string("captions") == "random" ? -1 : 0;
  return o;
}

MetricValues evaluate(nn::Module& model, Task& task, const std::vector<std::string>& names,
                      std::shared_ptr<data::Dataset> dataset, const Recipe& recipe, int64_t max_batches,
                      const ProcessGroup* group) {
  const data::Loader loader(std::move(dataset), loader_options(recipe, false));
  std::vector<std::unique_ptr<Metric>> accumulators;
  for (const std::string& n : names) accumulators.push_back(metrics().get(n).make());
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  int64_t batches = loader.batches_per_epoch();
  if (max_batches > 0) batches = std::min(batches, max_batches);
  // With several processes, process r evaluates the r-th run of consecutive batches; sums are
  // added, and stores (texts, boxes, embeddings) handed round and merged in batch order.
  const bool several = group != nullptr && group->size() > 1;
  bool shared = several;
  for (const auto& m : accumulators) shared = shared && (!m->partial_sums().empty() || task.shares_store_of(*m));
  int64_t first = 0, last = batches;
  if (shared) first = batches * group->rank() / group->size(), last = batches * (group->rank() + 1) / group->size();
  for (int64_t i = first; i < last; ++i) task.evaluate(model, loader.make_batch(0, i), accumulators);
  if (shared) {
    std::vector<double> sums;
    for (const auto& m : accumulators) {
      const std::vector<double> s = m->partial_sums();
      sums.insert(sums.end(), s.begin(), s.end());
    }
    group->ordered_sum(std::span<double>(sums));
    size_t at = 0;
    for (auto& m : accumulators) {
      const size_t n = m->partial_sums().size();
      if (n > 0) m->set_partial_sums(std::vector<double>(sums.begin() + long(at), sums.begin() + long(at + n)));
      at += n;
    }
    bool stores = false;
    for (const auto& m : accumulators) stores = stores || m->partial_sums().empty();
    if (stores) task.merge_store_parts(accumulators, group->all_gather(task.store_part(accumulators)));
  }
  model.train(was_training);
  MetricValues out;
  for (size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], accumulators[i]->value());
  return out;
}

void set_precision(const std::string& where, const std::string& text) {
  if (text != "fp32" && text != "bf16") fail("{}: expected fp32 or bf16, got '{}'", where, text);
  kernels::set_matmul_precision(kernels::parse_matmul_precision(text));
  // Without AMX or AVX512-BF16 the operands are still rounded to bf16, but the products run at fp32
  // speed after that extra pass: bf16 is slower than fp32 there. Said once, so nobody waits for a
  // speed-up (on a CPU that has either, a forced convert path was chosen knowingly: no note).
  static bool said = false;
  if (text == "bf16" && !said && kernels::best_bf16_path() == kernels::Bf16Path::convert) {
    said = true;
    fmt::print(stderr, "note: this CPU has neither AMX nor AVX512-BF16; bf16 rounds the operands and "
                       "multiplies them in fp32 (bf16's numerics), which is slower than fp32 here\n");
  }
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int parse_threads(const std::string& flag, const std::string& text) {
  const int64_t n = parse_count(flag, text, 1);
  if (n > kernels::kMaxThreads) fail("{}: at most {} threads, got {}", flag, kernels::kMaxThreads, text);
  return int(n);
}

void check_thread_environment() {
  if (const char* env = std::getenv("TESSERA_THREADS"); env != nullptr && *env != '\0')
    parse_threads("TESSERA_THREADS", env);
}

int64_t parse_count(const std::string& flag, const std::string& text, int64_t min) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || v < min) fail("{}: expected an integer >= {}, got '{}'", flag, min, text);
  return v;
}

}  // namespace tessera::train
