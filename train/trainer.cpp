#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "kernels/threads.h"
#include "train/json.h"

namespace tessera::train {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- Trainer

namespace {
std::map<std::string, Tensor> as_map(const nn::NamedTensors& named) { return {named.begin(), named.end()}; }

std::shared_ptr<data::Dataset> open_dataset(const std::string& key, const std::string& path) {
  try {
    return data::Dataset::open(path);
  } catch (const Error& e) {
    fail("{} = '{}': {}", key, path, e.what());
  }
}
}  // namespace

Trainer::Trainer(Recipe recipe, int threads_override) : recipe_(std::move(recipe)) {
  const Section root = recipe_.root(), train = recipe_.section("train"), eval = recipe_.section("eval"),
                data = recipe_.section("data");
  const int threads = threads_override > 0 ? threads_override : int(root.integer("threads"));
  if (threads > 0) kernels::set_num_threads(threads);
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
  ema_decay_ = train.number("ema_decay");
  if (ema_decay_ > 0)
    for (const auto& [name, p] : model_->named_parameters()) ema_.emplace_back(name, p.detach().clone());
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
    std::string culprit = "?";
    for (const auto& [name, p] : model_->named_parameters())
      if (p.grad().defined() && !std::isfinite(global_grad_norm({p}))) {
        culprit = name;
        break;
      }
    model_->zero_grad();
    fail("step {}: the gradient norm is {} (first non-finite gradient: '{}'); stopped before updating the weights",
         step_number, r.grad_norm, culprit);
  }
  r.lr = schedule_->lr(step_);
  optimizer_->set_lr(r.lr);
  optimizer_->step();
  model_->zero_grad();
  if (!ema_.empty()) {
    const nn::NamedTensors current = model_->named_parameters();
    for (size_t i = 0; i < ema_.size(); ++i) {
      Tensor& e = ema_[i].second;
      mul_(e, ema_decay_);
      add_(e, current[i].second.detach(), 1 - ema_decay_);
    }
  }
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
  const bool swap = !ema_.empty() && recipe_.section("eval").boolean("use_ema");
  nn::NamedTensors saved;
  if (swap)  // evaluate the EMA weights, then put the trained ones back
    for (size_t i = 0; i < ema_.size(); ++i) {
      Tensor p = model_->named_parameters()[i].second;
      saved.emplace_back(ema_[i].first, p.detach().clone());
      p.copy_(ema_[i].second);
    }
  MetricValues values =
      train::evaluate(*model_, *task_, metrics_, eval_set_, recipe_, recipe_.section("eval").integer("max_batches"));
  if (swap) {
    const nn::NamedTensors params = model_->named_parameters();
    for (size_t i = 0; i < saved.size(); ++i) {
      Tensor p = params[i].second;
      p.copy_(saved[i].second);
    }
  }
  return values;
}

Checkpoint Trainer::checkpoint() const {
  // Never write a checkpoint that could not be resumed from.
  for (const auto& [name, p] : model_->named_parameters())
    for (double v : p.to_vector<double>())
      if (!std::isfinite(v)) fail("step {}: parameter '{}' holds {}; not writing a checkpoint", step_, name, v);
  Checkpoint c;
  c.params = as_map(model_->state());
  c.ema = as_map(ema_);
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
  if (!ema_.empty()) {
    if (c.ema.empty()) fail("train.ema_decay is set but the checkpoint holds no EMA weights");
    for (auto& [name, t] : ema_) {
      const auto it = c.ema.find(name);
      if (it == c.ema.end()) fail("checkpoint: EMA weights lack '{}'", name);
      t.copy_(it->second);
    }
  }
  optimizer_->load_state(c.optim);
  loader_->restore(data::LoaderState{m.loader_epoch, m.loader_position, m.loader_seed});
  default_generator().set_state(m.rng_seed, m.rng_offset);
  step_ = m.step;
  best_value = m.best_value;
}

// ---------------------------------------------------------------- the run

namespace {

volatile std::sig_atomic_t interrupted = 0;

void on_interrupt(int) {
  interrupted = 1;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C stops at once
}

// Installs the Ctrl-C handler for the length of a run.
class InterruptScope {
 public:
  InterruptScope() {
    interrupted = 0;
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_);
  }
  ~InterruptScope() { sigaction(SIGINT, &previous_, nullptr); }

 private:
  struct sigaction previous_ {};
};

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = int64_t(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp";
  {
    std::ofstream out(temp);
    out << text;
    if (!out) fail("cannot write {}", temp.string());
  }
  fs::rename(temp, path);
}

// On resume, drops the lines a killed run logged after its last checkpoint.
void keep_metrics_up_to(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    long long s = 0;
    if (std::sscanf(line.c_str(), "{\"step\": %lld", &s) == 1 && s <= step) kept += line + "\n";
  }
  write_text_atomically(path, kept);
}

class MetricsLog {
 public:
  MetricsLog(const fs::path& path, bool append) : out_(path, append ? std::ios::app : std::ios::trunc) {
    if (!out_) fail("cannot write {}", path.string());
  }
  void write(const JsonObject& line) {
    out_ << line.str() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

void rotate_step_checkpoints(const fs::path& dir, int64_t keep) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step_", 0) == 0 && e.path().extension() == ".h5") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + size_t(keep) < files.size(); ++i) fs::remove(files[i]);
}

std::string metrics_text(const MetricValues& values) {
  std::string out;
  for (const auto& [name, v] : values) out += fmt::format("{}{} {:.4f}", out.empty() ? "" : "  ", name, v);
  return out;
}

// Task::training_state for the progress line: "vq_restarts 42  " (whole numbers stay whole).
std::string state_text(const MetricValues& values) {
  std::string out;
  for (const auto& [name, v] : values) out += fmt::format("{} {:.6g}  ", name, v);
  return out;
}

// The NaN/Inf guard's exit: the cause, and which checkpoint is still good.
[[noreturn]] void stop_keeping_last_good(const Error& e, const fs::path& last_path) {
  std::string good = "none was written yet";
  if (fs::exists(last_path))
    good = fmt::format("{} (step {}) is intact", last_path.string(), load_checkpoint(last_path.string()).meta.step);
  fail("{}\nthe last good checkpoint: {}", e.what(), good);
}

}  // namespace

int run_training(const RunOptions& options) {
  std::optional<Checkpoint> resume;
  std::optional<Recipe> recipe;
  fs::path run_dir;
  if (!options.resume_dir.empty()) {
    run_dir = options.resume_dir;
    const fs::path last = run_dir / "last.h5";
    if (!fs::exists(last)) fail("--resume {}: no last.h5 there, nothing to resume", run_dir.string());
    resume = load_checkpoint(last.string());
    recipe = Recipe::parse(resume->meta.recipe, last.string() + " (stored recipe)", options.overrides);
    recipe->set_name(resume->meta.recipe_name);
  } else {
    if (options.recipe_path.empty()) fail("give a recipe (tessera train RECIPE) or --resume DIR");
    recipe = Recipe::load(options.recipe_path, options.overrides);
    run_dir = options.run_dir.empty() ? fs::path("runs") / recipe->name() : fs::path(options.run_dir);
    if (fs::exists(run_dir / "last.h5"))
      fail("{} already holds a run (last.h5); continue it with 'tessera train --resume {}', start afresh with "
           "--overwrite, or pick another --run-dir",
           run_dir.string(), run_dir.string());
  }

  fmt::print("tessera train: {} -> {}\n---\n{}---\n", resume ? "resuming " + run_dir.string() : options.recipe_path,
             run_dir.string(), recipe->text());
  Trainer trainer(*recipe, options.threads);
  if (resume) trainer.restore(*resume);
  fs::create_directories(run_dir);
  write_text_atomically(run_dir / "recipe.yaml", recipe->text());
  if (resume) keep_metrics_up_to(run_dir / "metrics.jsonl", trainer.steps_done());
  MetricsLog log(run_dir / "metrics.jsonl", bool(resume));

  const Section ckpt = recipe->section("checkpoint");
  const int64_t total = trainer.total_steps(), log_every = recipe->section("log").integer("every"),
                eval_every = recipe->section("eval").integer("every"), ckpt_every = ckpt.integer("every"),
                keep = ckpt.integer("keep");
  const std::string best_metric = ckpt.string("best_metric");
  fmt::print("model: {} ({} parameters); {} steps of {} images; threads {}\n", recipe->section("model").string("type"),
             trainer.model().parameter_count(), total, trainer.images_per_step(), kernels::num_threads());
  if (resume) fmt::print("resumed at step {} of {}\n", trainer.steps_done(), total);
  std::fflush(stdout);

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto interval_start = start;
  int64_t interval_steps = 0;
  double interval_loss = 0;
  const fs::path last_path = run_dir / "last.h5";
  InterruptScope interrupt_scope;

  auto save = [&](const fs::path& path, const Checkpoint& c) { save_checkpoint(path.string(), c); };

  while (trainer.steps_done() < total) {
    if (interrupted) {
      save(last_path, trainer.checkpoint());
      fmt::print("\ninterrupted: saved {} at step {}; continue with: tessera train --resume {}\n", last_path.string(),
                 trainer.steps_done(), run_dir.string());
      return 130;
    }
    Trainer::StepResult r;
    try {
      r = trainer.step();
    } catch (const Error& e) {
      stop_keeping_last_good(e, last_path);
    }
    const int64_t s = trainer.steps_done();
    interval_loss += r.loss, ++interval_steps;

    if (s % log_every == 0 || s == total) {
      const auto now = clock::now();
      const double seconds = std::chrono::duration<double>(now - interval_start).count();
      const double rate = interval_steps / std::max(seconds, 1e-9);
      const double loss = interval_loss / double(interval_steps);
      const MetricValues state = trainer.training_state();
      fmt::print("epoch {}  step {}/{}  loss {:.4f}  lr {:.3e}  {}{:.1f} it/s  {:.0f} img/s  ETA {}\n", r.epoch + 1, s,
                 total, loss, r.lr, state_text(state), rate,
                 rate * double(trainer.images_per_step()), duration(double(total - s) / rate));
      std::fflush(stdout);
      JsonObject line;
      line.add("step", s)
          .add("epoch", r.epoch)
          .add("split", "train")
          .add("loss", loss)
          .add("lr", r.lr)
          .add("grad_norm", r.grad_norm)
          .add("steps_per_s", rate)
          .add("images_per_s", rate * double(trainer.images_per_step()))
          .add("elapsed_s", std::chrono::duration<double>(now - start).count());
      for (const auto& [name, v] : state) line.add(name, v);
      log.write(line);
      interval_start = clock::now(), interval_steps = 0, interval_loss = 0;
    }

    bool is_best = false;
    if (trainer.has_eval() && ((eval_every > 0 && s % eval_every == 0) || s == total)) {
      const auto eval_start = clock::now();
      const MetricValues values = trainer.evaluate();
      trainer.write_samples(run_dir.string());
      JsonObject line;
      line.add("step", s).add("epoch", r.epoch).add("split", "eval");
      for (const auto& [name, v] : values) {
        line.add(name, v);
        if (name == best_metric) {
          const bool higher = metrics().get(name).make()->higher_is_better();
          is_best = std::isnan(trainer.best_value) || (higher ? v > trainer.best_value : v < trainer.best_value);
          if (is_best) trainer.best_value = v;
        }
      }
      log.write(line);
      fmt::print("eval  step {}/{}  {}{}\n", s, total, metrics_text(values), is_best ? "  (best so far)" : "");
      std::fflush(stdout);
      interval_start += clock::now() - eval_start;  // evaluation time is not training speed
    }

    const bool periodic = (ckpt_every > 0 && s % ckpt_every == 0) || s == total;
    if (periodic || is_best) {
      Checkpoint c;
      try {
        c = trainer.checkpoint();
      } catch (const Error& e) {
        stop_keeping_last_good(e, last_path);
      }
      if (periodic) {
        save(last_path, c);
        if (keep > 0) {
          save(run_dir / fmt::format("step_{:07}.h5", s), c);
          rotate_step_checkpoints(run_dir, keep);
        }
      }
      if (is_best) save(run_dir / "best.h5", c);
    }
    if (options.debug_kill_after == s) std::raise(SIGKILL);
    if (options.debug_interrupt_after == s) std::raise(SIGINT);
  }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  fmt::print("done: {} steps in {}; checkpoints and metrics.jsonl in {}\n", total, duration(seconds), run_dir.string());
  return 0;
}

}  // namespace tessera::train
