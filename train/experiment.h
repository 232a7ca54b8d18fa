#pragma once
// Turning a validated recipe into the objects of a run — model, task, metrics, loaders,
// optimizer, schedule — shared by `tessera train`, `eval` and `bench`.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "train/process_group.h"
#include "train/recipe.h"
#include "train/models/model_registry.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/task.h"

namespace tessera::train {

using MetricValues = std::vector<std::pair<std::string, double>>;

// The data set's shape and class names; data.class_names, when set, renames the classes (it must
// give one name per class of the set).
DataShape data_shape(const data::DatasetInfo& info, const Recipe& recipe);
// Builds recipe.model, checking that the loss and metrics serve the same task as the model.
std::shared_ptr<nn::Module> build_model(const Recipe& recipe, const DataShape& shape, Generator& gen);
std::unique_ptr<Task> build_task(const Recipe& recipe);
// eval.metrics, or the task's defaults; each name checked against the registry.
std::vector<std::string> metric_names(const Recipe& recipe, const Task& task);
std::unique_ptr<Optimizer> build_optimizer(const Recipe& recipe, const nn::Module& model);
data::LoaderOptions loader_options(const Recipe& recipe, bool training);

// Runs the model (in eval mode, without gradients) over `dataset` and returns each metric.
// max_batches 0 = the whole set. Restores the model's previous mode.
// With a group of several processes, they share the batches out when every metric can be added
// up over shares (Metric::partial_sums), and each evaluates all of them otherwise; either way
// every process returns the same values.
MetricValues evaluate(nn::Module& model, Task& task, const std::vector<std::string>& metrics,
                      std::shared_ptr<data::Dataset> dataset, const Recipe& recipe, int64_t max_batches = 0,
                      const ProcessGroup* group = nullptr);

// "a,b,c" -> {"a", "b", "c"} (empty items dropped), for list options such as --labels.
std::vector<std::string> split_commas(const std::string& text);

// "--threads N": an integer in [1, kernels::kMaxThreads], or an error naming the flag.
int parse_threads(const std::string& flag, const std::string& text);
// TESSERA_THREADS, when set, must be such an integer too (checked before any command runs).
void check_thread_environment();

// Parses "--threads N"-style integers with a message naming the flag.
int64_t parse_count(const std::string& flag, const std::string& text, int64_t min = 0);

// Sets the process's matrix-product precision from "fp32" or "bf16" (train.precision, --precision),
// failing with a message that names `where` otherwise.
void set_precision(const std::string& where, const std::string& text);

}  // namespace tessera::train
