#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <thread>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "kernels/threads.h"
#include "train/gradient_sum.h"

namespace tessera::train {

namespace {
std::map<std::string, Tensor> as_map(const nn::NamedTensors& named) { return {named.begin(), named.end()}; }

std::shared_ptr<data::Dataset> open_dataset(const std::string& key, const std::string& path) {
  try {
    return data::Dataset::open(path, int64_t(1) << 30, /*clips=*/true);  // data_shape() says which models take clips
  } catch (const Error& e) {
    fail("{} = '{}': {}", key, path, e.what());
  }
}

// When a batch is cut into parts, each part draws its random numbers (dropout, a VAE's noise, a
// codebook's restarts) from a stream of its own keyed by (run seed, step, part), so a part draws
// the same numbers whichever process runs it: the condition for N processes to equal one that
// accumulates N parts. A whole batch draws on from the run's stream, as it always has.
void key_random_stream(uint64_t seed, int64_t step, int64_t part) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * uint64_t(step + 1);  // SplitMix64 of (seed, step)
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  default_generator().set_state(z ^ (z >> 31), uint64_t(part) << 40);
}

// FNV-1a of a buffer's bytes, as a double that an ordered sum carries exactly (53 bits).
double fingerprint(const Tensor& t) {
  const Tensor c = t.contiguous();
  const auto* bytes = static_cast<const unsigned char*>(c.raw_data());
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size_t(c.numel()) * element_size(c.dtype()); ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  return double(h >> 11);
}

// The NaN/Inf guard's culprit: the first parameter whose gradient is not finite.
std::string first_non_finite_gradient(const nn::Module& model) {
  for (const auto& [name, p] : model.named_parameters())
    if (p.grad().defined() && !std::isfinite(global_grad_norm({p}))) return name;
  return "?";
}
}  // namespace

Trainer::Trainer(Recipe recipe, int threads_override)
    : recipe_(std::move(recipe)), group_(ProcessGroup::world()) {
  const Section root = recipe_.root(), train = recipe_.section("train"), eval = recipe_.section("eval"),
                data = recipe_.section("data");
  int threads = threads_override > 0 ? threads_override : int(root.integer("threads"));
  // Processes sharing a host share its cores, unless told otherwise.
  if (threads == 0 && group_.local_size() > 1 && std::getenv("TESSERA_THREADS") == nullptr)
    threads = std::max(1, int(std::thread::hardware_concurrency()) / group_.local_size());
  if (threads > 0) kernels::set_num_threads(threads);
  set_precision("train.precision", train.string("precision"));
  const uint64_t seed = uint64_t(root.integer("seed"));
  seed_ = seed;
  default_generator().set_state(seed, 0);

  train_set_ = open_dataset("data.train", data.string("train"));
  shape_ = data_shape(train_set_->info(), recipe_);
  Generator init(seed);
  model_ = build_model(recipe_, shape_, init);
  task_ = build_task(recipe_);
  metrics_ = metric_names(recipe_, *task_);

  const std::string best = recipe_.section("checkpoint").string("best_metric");
  if (!data.string("eval").empty()) eval_set_ = open_dataset("data.eval", data.string("eval"));
  else if (eval.integer("every") > 0) fail("eval.every is {} but data.eval is not set", eval.integer("every"));
  else if (!best.empty()) fail("checkpoint.best_metric is '{}' but data.eval is not set", best);
  if (!best.empty() && std::find(metrics_.begin(), metrics_.end(), best) == metrics_.end())
    fail("checkpoint.best_metric: '{}' is not among the evaluated metrics ({})", best, fmt::join(metrics_, ", "));
  best_value = std::nan("");

  // The batch is the step's, whatever the processes: cut into accumulation parts per process,
  // process r taking parts r*A .. r*A + A-1.
  accumulation_ = train.integer("accumulation");
  parts_ = accumulation_ * group_.size();
  const int64_t batch_size = train.integer("batch_size");
  if (batch_size < parts_)
    fail("train.batch_size {} cannot be cut into {} micro-batches ({} process{} x train.accumulation {})", batch_size,
         parts_, group_.size(), group_.size() == 1 ? "" : "es", accumulation_);
  data::LoaderOptions options = loader_options(recipe_, true);
  options.parts = parts_, options.take_first = group_.rank() * accumulation_, options.take_count = accumulation_;
  loader_ = std::make_unique<data::Loader>(train_set_, options);
  const int64_t steps = train.integer("steps");
  const double epochs = train.number("epochs");
  if ((steps > 0) == (epochs > 0)) fail("set exactly one of train.steps ({}) and train.epochs ({})", steps, epochs);
  const double epoch_steps = std::ceil(epochs * double(loader_->batches_per_epoch()));
  if (steps == 0 && epoch_steps > 1e12)
    fail("train.epochs {} is {:.3g} steps of {} batches; give at most 1e12 steps", epochs, epoch_steps,
         loader_->batches_per_epoch());
  total_steps_ = steps > 0 ? steps : std::max<int64_t>(1, int64_t(epoch_steps));

  optimizer_ = build_optimizer(recipe_, *model_);
  const Section sched = recipe_.section("schedule");
  schedule_ = schedules().get(sched.string("type")).make(sched, recipe_.section("optim").number("lr"), total_steps_);
  clip_ = train.number("clip_grad_norm");
  average_.emplace(*model_, train.number("ema_decay"));
}

Trainer::~Trainer() = default;

int64_t Trainer::images_per_step() const { return recipe_.section("train").integer("batch_size"); }

Trainer::StepResult Trainer::step(bool stop_requested) {
  model_->train();
  StepResult r;
  const int64_t step_number = step_ + 1;
  const bool split = parts_ > 1;
  std::vector<Tensor> params;
  for (const Tensor& p : model_->parameters())
    if (p.requires_grad()) params.push_back(p);
  if (split && !gradients_) gradients_ = std::make_unique<GradientSum>(params);
  GradientSum* sum = split ? gradients_.get() : nullptr;
  if (sum) sum->start();
  std::string non_finite;  // where this process's loss was NaN/Inf

  for (int64_t micro = 0; micro < accumulation_; ++micro) {
    const data::Batch batch = loader_->next();
    r.epoch = batch.epoch;
    if (batch.indices.empty()) continue;  // a last batch of the epoch with fewer rows than parts
    if (split) key_random_stream(seed_, step_number, batch.part);
    Tensor loss = task_->training_loss(*model_, batch);
    const double value = loss.item();
    if (!std::isfinite(value)) {
      non_finite = fmt::format("the loss is {} (epoch {}, batch {} of the epoch{})", value, batch.epoch + 1,
                               batch.position + 1, split ? fmt::format(", micro-batch {}", batch.part + 1) : "");
      if (group_.size() == 1) {
        model_->zero_grad();
        fail("step {}: {}; stopped before updating the weights", step_number, non_finite);
      }
      continue;  // the other processes learn of it below, and all stop together
    }
    // Each part weighs by its rows, so a split batch is the same objective as the whole one.
    const double weight = double(batch.indices.size()) / double(batch.batch_rows);
    if (split) loss = loss * weight;
    loss.backward();
    r.loss += split ? weight * value : value;
    if (split) sum->add_current(), model_->zero_grad();
  }

  r.stop_requested = stop_requested;
  if (group_.size() > 1) {
    const auto exchange_start = std::chrono::steady_clock::now();
    // Loss, stop requests, non-finite losses and the buffers' fingerprints of every process (and
    // at the first step the parameters' too: a codebook set from the first batch differs at once).
    nn::NamedTensors buffers = model_->named_buffers();
    if (!compared_parameters_) {
      const nn::NamedTensors named = model_->named_parameters();
      buffers.insert(buffers.end(), named.begin(), named.end());
      compared_parameters_ = true;
    }
    const size_t n = size_t(group_.size()), me = size_t(group_.rank()), b = buffers.size();
    std::vector<double> shared(2 + n + n * b, 0.0);
    shared[0] = r.loss, shared[1] = stop_requested ? 1 : 0, shared[2 + me] = non_finite.empty() ? 0 : 1;
    for (size_t i = 0; i < b; ++i) shared[2 + n + me * b + i] = fingerprint(buffers[i].second);
    group_.ordered_sum(std::span<double>(shared));
    r.loss = shared[0], r.stop_requested = shared[1] > 0;
    for (size_t k = 0; k < n; ++k)
      if (shared[2 + k] != 0) {
        model_->zero_grad();
        fail("step {}: process {}'s {}; stopped before updating the weights", step_number, k,
             k == me ? non_finite : std::string("loss is not finite"));
      }
    for (size_t i = 0; i < b; ++i)
      for (size_t k = 1; k < n; ++k)
        if (shared[2 + n + k * b + i] != shared[2 + n + i])
          fail("step {}: '{}' differs between process 0 and process {}: this model changes state from its batch "
               "outside the gradients (a codebook set from the first batch, its statistics or restarts), which "
               "processes with different data cannot keep equal; train it in one process (train.accumulation "
               "cuts the batch into parts the same way)",
               step_number, buffers[i].first, k);
    sum->reduce(group_);
    r.exchange_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - exchange_start).count();
  }
  if (split) sum->write_back();

  r.grad_norm = clip_ > 0 ? clip_grad_norm(params, clip_) : global_grad_norm(params);
  if (!std::isfinite(r.grad_norm)) {
    const std::string culprit = first_non_finite_gradient(*model_);
    model_->zero_grad();
    fail("step {}: the gradient norm is {} (first non-finite gradient: '{}'); stopped before updating the weights",
         step_number, r.grad_norm, culprit);
  }

  r.lr = schedule_->lr(step_);
  optimizer_->set_lr(r.lr);
  optimizer_->step();
  model_->zero_grad();
  average_->update(*model_);
  step_ = step_number;
  return r;
}

MetricValues Trainer::training_state() const { return task_->training_state(*model_); }

void Trainer::write_samples(const std::string& run_dir) {
  if (!eval_set_ || !group_.is_writer()) return;
  const data::Loader loader(eval_set_, loader_options(recipe_, false));
  if (loader.batches_per_epoch() == 0) return;
  const bool was_training = model_->is_training();
  model_->eval();
  {
    // The weights the evaluation used (the EMA when eval.use_ema), so pictures and figures agree.
    std::optional<ParameterAverage::SwappedIn> averaged;
    if (recipe_.section("eval").boolean("use_ema")) averaged.emplace(*model_, *average_);
    NoGradGuard no_grad;
    task_->write_samples(*model_, loader.make_batch(0, 0), run_dir, step_);
  }
  model_->train(was_training);
}

MetricValues Trainer::evaluate() {
  const Section eval = recipe_.section("eval");
  std::optional<ParameterAverage::SwappedIn> averaged;
  if (eval.boolean("use_ema")) averaged.emplace(*model_, *average_);
  return train::evaluate(*model_, *task_, metrics_, eval_set_, recipe_, eval.integer("max_batches"), &group_);
}

Checkpoint Trainer::checkpoint() const {
  for (const auto& [name, p] : model_->named_parameters())
    for (double v : p.to_vector<double>())
      if (!std::isfinite(v)) fail("step {}: parameter '{}' holds {}; not writing a checkpoint", step_, name, v);
  Checkpoint c;
  c.params = as_map(model_->state());
  c.ema = as_map(average_->weights());
  c.optim = as_map(optimizer_->state());
  CheckpointMeta& m = c.meta;
  m.step = step_;
  const data::LoaderState ls = loader_->state();
  m.epoch = ls.epoch;
  m.loader_epoch = ls.epoch, m.loader_position = ls.position, m.loader_seed = ls.seed;
  m.rng_seed = default_generator().seed(), m.rng_offset = default_generator().offset();
  m.best_value = best_value;
  m.recipe = recipe_.text();
  m.recipe_name = recipe_.name();
  m.input_shape = {shape_.channels, shape_.height, shape_.width};
  m.num_classes = shape_.num_classes;
  return c;
}

void Trainer::restore(const Checkpoint& c) {
  const CheckpointMeta& m = c.meta;
  if (m.input_shape != std::vector<int64_t>{shape_.channels, shape_.height, shape_.width} || m.num_classes != shape_.num_classes)
    fail("the checkpoint was trained on data of shape [{}] with {} classes, but data.train has [{}, {}, {}] with {}",
         fmt::join(m.input_shape, ", "), m.num_classes, shape_.channels, shape_.height, shape_.width, shape_.num_classes);
  model_->load_state(c.params);
  average_->restore(c.ema);
  optimizer_->load_state(c.optim);
  loader_->restore(data::LoaderState{m.loader_epoch, m.loader_position, m.loader_seed});
  default_generator().set_state(m.rng_seed, m.rng_offset);
  step_ = m.step;
  best_value = m.best_value;
}

}  // namespace tessera::train
