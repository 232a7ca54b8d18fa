#include "train/trainer.h"

#include <cmath>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "kernels/threads.h"

namespace tessera::train {

namespace {
std::map<std::string, Tensor> as_map(const nn::NamedTensors& named) { return {named.begin(), named.end()}; }

std::shared_ptr<data::Dataset> open_dataset(const std::string& key, const std::string& path) {
  try {
    return data::Dataset::open(path);
  } catch (const Error& e) {
    fail("{} = '{}': {}", key, path, e.what());
  }
}

// The NaN/Inf guard's culprit: the first parameter whose gradient is not finite.
std::string first_non_finite_gradient(const nn::Module& model) {
  for (const auto& [name, p] : model.named_parameters())
    if (p.grad().defined() && !std::isfinite(global_grad_norm({p}))) return name;
  return "?";
}
}  // namespace

Trainer::Trainer(Recipe recipe, int threads_override) : recipe_(std::move(recipe)) {
  const Section root = recipe_.root(), train = recipe_.section("train"), eval = recipe_.section("eval"),
                data = recipe_.section("data");
  const int threads = threads_override > 0 ? threads_override : int(root.integer("threads"));
  if (threads > 0) kernels::set_num_threads(threads);
  set_precision("train.precision", train.string("precision"));
  const uint64_t seed = uint64_t(root.integer("seed"));
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

  loader_ = std::make_unique<data::Loader>(train_set_, loader_options(recipe_, true));
  accumulation_ = train.integer("accumulation");
  const int64_t steps = train.integer("steps");
  const double epochs = train.number("epochs");
  if ((steps > 0) == (epochs > 0)) fail("set exactly one of train.steps ({}) and train.epochs ({})", steps, epochs);
  total_steps_ = steps > 0 ? steps
                           : std::max<int64_t>(1, int64_t(std::ceil(epochs * double(loader_->batches_per_epoch()) /
                                                                    double(accumulation_))));

  optimizer_ = build_optimizer(recipe_, *model_);
  const Section sched = recipe_.section("schedule");
  schedule_ = schedules().get(sched.string("type")).make(sched, recipe_.section("optim").number("lr"), total_steps_);
  clip_ = train.number("clip_grad_norm");
  average_.emplace(*model_, train.number("ema_decay"));
}

Trainer::~Trainer() = default;

int64_t Trainer::images_per_step() const { return recipe_.section("train").integer("batch_size") * accumulation_; }

Trainer::StepResult Trainer::step() {
  model_->train();
  StepResult r;
  const int64_t step_number = step_ + 1;
  for (int64_t micro = 0; micro < accumulation_; ++micro) {
    const data::Batch batch = loader_->next();
    r.epoch = batch.epoch;
    Tensor loss = task_->training_loss(*model_, batch);
    const double value = loss.item();
    if (!std::isfinite(value)) {
      model_->zero_grad();
      fail("step {}: the loss is {} (epoch {}, batch {} of the epoch); stopped before updating the weights",
           step_number, value, batch.epoch + 1, batch.position + 1);
    }
    if (accumulation_ > 1) loss = loss * (1.0 / double(accumulation_));
    loss.backward();
    r.loss += value / double(accumulation_);
  }

  const std::vector<Tensor> params = model_->parameters();
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
  if (!eval_set_) return;
  const data::Loader loader(eval_set_, loader_options(recipe_, false));
  if (loader.batches_per_epoch() == 0) return;
  const bool was_training = model_->is_training();
  model_->eval();
  {
    NoGradGuard no_grad;
    task_->write_samples(*model_, loader.make_batch(0, 0), run_dir, step_);
  }
  model_->train(was_training);
}

MetricValues Trainer::evaluate() {
  const Section eval = recipe_.section("eval");
  std::optional<ParameterAverage::SwappedIn> averaged;
  if (eval.boolean("use_ema")) averaged.emplace(*model_, *average_);
  return train::evaluate(*model_, *task_, metrics_, eval_set_, recipe_, eval.integer("max_batches"));
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
