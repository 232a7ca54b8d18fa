// End-to-end runs of the `tessera` binary on a tiny data set: exact resume after SIGKILL and
// after Ctrl-C, checkpoint rotation, eval and bench output, the NaN guard, and CLI errors.
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <sstream>

#include "autograd/ops/losses.h"
#include "data/hdf5_util.h"
#include "nn/capabilities.h"
#include "tests/support/cli_helpers.h"
#include "tests/support/h5_files.h"
#include "tests/support/tiny_run.h"
#include "train/checkpoint.h"
#include "train/trained_model.h"

using namespace tessera;
using namespace tessera::train;
using namespace tessera::testing;

namespace {

const char* recipe = R"(seed: 5
threads: 2
data:
  train: train.h5
  eval: eval.h5
  hflip: true
  crop_padding: 1
model:
  type: mlp
  hidden: [16, 8]
optim:
  type: adamw
  lr: 0.01
  weight_decay: 0.1
schedule:
  type: cosine
  warmup_steps: 3
train:
  steps: 24
  batch_size: 8
  accumulation: 2
  clip_grad_norm: 1.0
  ema_decay: 0.9
eval:
  every: 6
checkpoint:
  every: 5
  keep: 2
  best_metric: accuracy
log:
  every: 4
)";

// A scratch folder holding the tiny recipe and its data (40 training images: 5 batches of 8 per
// epoch, so the steps straddle epoch boundaries).
struct TinyRun : TinyRunFolder {
  explicit TinyRun(const std::string& name) : TinyRunFolder(name, recipe) {}
};

}  // namespace

BOOST_AUTO_TEST_SUITE(runs)

BOOST_AUTO_TEST_CASE(killed_and_resumed_run_is_bitwise_identical) {
  TinyRun run("resume_kill");
  const RunResult a = run.tessera("train tiny.yaml --run-dir a");
  BOOST_REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  BOOST_TEST(a.output.find("step 24/24") != std::string::npos, a.output);

  const RunResult killed = run.tessera("train tiny.yaml --run-dir b --debug-kill-after 13");
  BOOST_REQUIRE_MESSAGE(killed.signal == SIGKILL, "expected SIGKILL; got exit " << killed.exit_code << "\n" << killed.output);
  BOOST_TEST(load_checkpoint(run / "b/last.h5").meta.step == 10);  // checkpoint.every 5
  const RunResult resumed = run.tessera("train --resume b");
  BOOST_REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  BOOST_TEST(resumed.output.find("resumed at step 10 of 24") != std::string::npos, resumed.output);

  require_identical(run / "a/last.h5", run / "b/last.h5");
  require_identical(run / "a/best.h5", run / "b/best.h5");
  // The killed run's lines after step 10 were dropped, so the logs agree line for line.
  BOOST_TEST(eval_lines(run / "a/metrics.jsonl") == eval_lines(run / "b/metrics.jsonl"));
  BOOST_TEST(eval_lines(run / "a/metrics.jsonl").size() == 4u);  // steps 6, 12, 18, 24
  // keep: 2 leaves the two newest step checkpoints.
  BOOST_TEST(std::filesystem::exists(run / "a/step_0000020.h5"));
  BOOST_TEST(std::filesystem::exists(run / "a/step_0000024.h5"));
  BOOST_TEST(!std::filesystem::exists(run / "a/step_0000015.h5"));
  BOOST_TEST(read_file(run / "a/recipe.yaml").find("ema_decay: 0.9") != std::string::npos);
}

// Ctrl-C, SIGTERM (kill, a scheduler, a shutdown) and SIGHUP (a closed terminal) all save the
// step and stop; the resumed run ends bitwise where an uninterrupted one does.
BOOST_AUTO_TEST_CASE(ctrl_c_sigterm_and_sighup_save_and_resume_matches) {
  TinyRun run("resume_interrupt");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a").exit_code == 0);
  for (const std::string signal : {"INT", "TERM", "HUP"}) {
    BOOST_TEST_CONTEXT(signal) {
      const std::string dir = "c_" + signal;
      const RunResult stopped = run.tessera("train tiny.yaml --run-dir " + dir + " --debug-interrupt-after 7 --debug-signal " + signal);
      BOOST_TEST(stopped.exit_code == 130, stopped.output);
      BOOST_TEST(stopped.output.find("interrupted: saved") != std::string::npos, stopped.output);
      BOOST_TEST(load_checkpoint(run / (dir + "/last.h5")).meta.step == 7);
      BOOST_REQUIRE(run.tessera("train --resume " + dir).exit_code == 0);
      require_identical(run / "a/last.h5", run / (dir + "/last.h5"));
    }
  }
}

// SIGKILL from outside at 20 moments spread over a run (during steps, evaluations and saves):
// each time the run is continued — resumed from last.h5, or started again when the kill came
// before the first save — and ends bitwise where an uninterrupted run ends. The lock of the
// killed process must not stand in the way.
BOOST_AUTO_TEST_CASE(killed_at_twenty_moments_every_run_ends_bitwise_identical) {
  TinyRun run("kill_anywhere");
  const auto start = std::chrono::steady_clock::now();
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a").exit_code == 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int resumed = 0, restarted = 0, finished_first = 0;
  for (int k = 0; k < 20; ++k) {
    const std::string dir = "k" + std::to_string(k);
    // Moments from 5 % to 100 % of an uninterrupted run's wall time (process start included).
    const int delay_ms = int(1000 * seconds * (0.05 + 0.95 * k / 19.0));
    const RunResult killed = run_shell("cd '" + run.path.string() + "' && ('" + std::string(TESSERA_BINARY) +
                                       "' train tiny.yaml --run-dir " + dir + " > /dev/null 2>&1 & pid=$!; sleep " +
                                       fmt::format("{:.3f}", delay_ms / 1000.0) + "; kill -9 $pid 2>/dev/null; wait $pid)");
    (void)killed;
    RunResult next;
    if (std::filesystem::exists(run / (dir + "/last.h5"))) {
      if (load_checkpoint(run / (dir + "/last.h5")).meta.step == 24) ++finished_first;
      else ++resumed;
      next = run.tessera("train --resume " + dir);
    } else {
      ++restarted;
      next = run.tessera("train tiny.yaml --run-dir " + dir + " --overwrite");
    }
    BOOST_REQUIRE_MESSAGE(next.exit_code == 0, dir << ": " << next.output);
    require_identical(run / "a/last.h5", run / (dir + "/last.h5"));
  }
  BOOST_TEST_MESSAGE(fmt::format("killed 20 times over {:.2f} s: {} resumed, {} started again, {} had finished",
                                 seconds, resumed, restarted, finished_first));
  BOOST_WARN(resumed >= 2);  // on a slow machine the moments shift; the deterministic mid-run kill is the test above
}

// A checkpoint whose weights hold a NaN (a run that diverged, a damaged file) is refused by
// eval, resume and model.from, naming the tensor, instead of evaluating to nonsense.
BOOST_AUTO_TEST_CASE(checkpoints_with_non_finite_weights_are_refused) {
  TinyRun run("nan_weights");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a").exit_code == 0);
  {
    data::h5::Handle file(H5Fopen((run / "a/last.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    data::h5::Handle d(H5Dopen2(file.get(), "params/layers.0.bias", H5P_DEFAULT));
    std::vector<float> bias(16);
    H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bias.data());
    bias[3] = std::nanf("");
    BOOST_REQUIRE(H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bias.data()) >= 0);
  }
  for (const std::string command : {"eval a/last.h5", "train --resume a --set train.steps=30",
                                    "train tiny.yaml --run-dir b --set model.from=a/last.h5"}) {
    const RunResult r = run.tessera(command);
    BOOST_TEST(r.exit_code == 1, command << ": " << r.output);
    BOOST_TEST(r.output.find("a/last.h5: params/layers.0.bias holds nan at index 3; the weights are damaged") !=
               std::string::npos, command << ": " << r.output);
  }
}

// A full disk (a 32 KB tmpfs, where the machine lets the test mount one): training and writing
// outputs stop with an error that says the disk is full, and exit — no crash at exit (HDF5's
// teardown once segfaulted on a file whose close had failed), nothing left half-written.
BOOST_AUTO_TEST_CASE(a_full_disk_is_reported_as_one_and_crashes_nothing) {
  TinyRun run("full_disk");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a").exit_code == 0);
  std::filesystem::create_directories(run / "full");
  if (run_shell("mount -t tmpfs -o size=32k tmpfs '" + run / "full" + "' 2>&1").exit_code != 0) {
    BOOST_TEST_MESSAGE("SKIPPED: cannot mount a small tmpfs here (needs root and mount permission)");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { run_shell("umount '" + path + "'"); }
  } unmount{run / "full"};
  run_shell("dd if=/dev/zero of='" + run / "full/filler" + "' bs=1k 2>/dev/null");  // fills it
  for (const std::string command : {"train tiny.yaml --run-dir full/run --set train.steps=30",
                                    "predict a/last.h5 eval.h5 --out full/scores.h5"}) {
    const RunResult r = run.tessera(command);
    BOOST_TEST(r.exit_code == 1, command << ": " << r.output);
    BOOST_TEST(r.signal == 0, command << ": " << r.output);
    BOOST_TEST(r.output.find("the disk holding it is full") != std::string::npos, command << ": " << r.output);
  }
  BOOST_TEST(!std::filesystem::exists(run / "full/scores.h5"));
  BOOST_TEST(!std::filesystem::exists(run / "full/run/last.h5"));
}

// --overwrite clears a previous run only once the new one has started: a recipe that fails to
// start (a typo, a missing data set) leaves the old run as it was.
BOOST_AUTO_TEST_CASE(overwrite_loses_nothing_when_the_new_run_cannot_start) {
  TinyRun run("overwrite_safe");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a").exit_code == 0);
  const std::string before = read_file(run / "a/last.h5"), metrics = read_file(run / "a/metrics.jsonl");
  const RunResult endless = run.tessera("train tiny.yaml --run-dir a --overwrite --set train.epochs=1e300");
  BOOST_TEST(endless.output.find("train.epochs 1e+300 is 5e+300 steps of 5 batches; give at most 1e12 steps") !=
             std::string::npos, endless.output);
  for (const std::string bad : {"--set model.hiden=[4]", "--set data.train=absent.h5", "--set train.steps=-3",
                                "--set train.epochs=1e300"}) {
    const RunResult r = run.tessera("train tiny.yaml --run-dir a --overwrite " + bad);
    BOOST_TEST(r.exit_code != 0, bad << ": " << r.output);
    BOOST_TEST(read_file(run / "a/last.h5") == before, bad);
    BOOST_TEST(read_file(run / "a/metrics.jsonl") == metrics, bad);
  }
  // A stop during the first save leaves last.h5.tmp alone: resume says what happened and what to do.
  std::filesystem::create_directories(run / "torn");
  write_file(run / "torn/last.h5.tmp", "partial");
  const RunResult torn = run.tessera("train --resume torn");
  BOOST_TEST(torn.output.find("stopped during its first save (last.h5.tmp is incomplete)") != std::string::npos, torn.output);
}

BOOST_AUTO_TEST_CASE(eval_reproduces_the_final_evaluation) {
  TinyRun run("eval_cli");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a").exit_code == 0);
  const RunResult json = run.tessera("eval a/last.h5 --json");
  BOOST_REQUIRE_MESSAGE(json.exit_code == 0, json.output);
  BOOST_TEST(json.output.front() == '{', json.output);
  const std::string final_eval = eval_lines(run / "a/metrics.jsonl").back();
  BOOST_TEST(json_number(json.output, "accuracy") == json_number(final_eval, "accuracy"));
  BOOST_TEST(std::abs(json_number(json.output, "loss") - json_number(final_eval, "loss")) < 1e-9);
  BOOST_TEST(json_number(json.output, "accuracy") > 0.5);  // the classes are easy to tell apart
  const RunResult table = run.tessera("eval a/last.h5 --data train.h5");
  BOOST_TEST(table.exit_code == 0, table.output);
  BOOST_TEST(table.output.find("train.h5 (40 images)") != std::string::npos, table.output);
  BOOST_TEST(table.output.find("accuracy") != std::string::npos, table.output);
  BOOST_TEST(run.tessera("eval missing.h5").exit_code == 1);
}

// eval's "loss" is the plain cross-entropy, the label-smoothed loss trained on is "smoothed_loss":
// both recomputed here from the checkpoint's logits over the evaluation set.
BOOST_AUTO_TEST_CASE(eval_names_the_plain_and_the_smoothed_loss) {
  TinyRun run("eval_losses");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a --set loss.label_smoothing=0.3 --set train.steps=6 "
                            "--set eval.metrics=[accuracy,loss,smoothed_loss]").exit_code == 0);
  const RunResult json = run.tessera("eval a/last.h5 --json");
  BOOST_REQUIRE_MESSAGE(json.exit_code == 0, json.output);
  const TrainedModel model = TrainedModel::load(run / "a/last.h5");
  double plain = 0, smoothed = 0;
  int64_t n = 0;
  model.for_each_batch(data::Dataset::open(run / "eval.h5"), run / "eval.h5", 0, -1, [&](const data::Batch& b) {
    const Tensor logits = model.need<nn::ImageToLogits>("classify").logits(b.images);
    const auto rows = double(b.indices.size());
    plain += cross_entropy(logits, b.labels).item() * rows, smoothed += cross_entropy(logits, b.labels, 0.3).item() * rows;
    n += int64_t(b.indices.size());
  });
  BOOST_TEST(json_number(json.output, "loss") == plain / double(n), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(json_number(json.output, "smoothed_loss") == smoothed / double(n), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(std::abs(plain - smoothed) > 1e-3);
}

// predict writes every image's logits (what the model computes, to the bit), the labels and the
// class names; prints the best class without --out; never writes over its input.
BOOST_AUTO_TEST_CASE(predict_writes_logits) {
  TinyRun run("predict_cli");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir a --set train.steps=6").exit_code == 0);
  const RunResult r = run.tessera("predict a/last.h5 eval.h5 --out p.h5");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::vector<hsize_t> dims, label_dims;
  const std::vector<float> logits = read_dataset<float>(run / "p.h5", "logits", dims);
  BOOST_TEST(dims == (std::vector<hsize_t>{30, 3}), boost::test_tools::per_element());
  const std::vector<int64_t> labels = read_dataset<int64_t>(run / "p.h5", "labels", label_dims);
  BOOST_TEST(label_dims == std::vector<hsize_t>{30}, boost::test_tools::per_element());
  const TrainedModel model = TrainedModel::load(run / "a/last.h5");
  std::vector<float> expected;
  std::vector<int64_t> expected_labels;
  model.for_each_batch(data::Dataset::open(run / "eval.h5"), run / "eval.h5", 0, -1, [&](const data::Batch& b) {
    for (float v : model.need<nn::ImageToLogits>("classify").logits(b.images).to_vector<float>()) expected.push_back(v);
    for (int64_t y : b.labels.to_vector<int64_t>()) expected_labels.push_back(y);
  });
  BOOST_TEST(logits == expected, boost::test_tools::per_element());
  BOOST_TEST(labels == expected_labels, boost::test_tools::per_element());

  const RunResult printed = run.tessera("predict a/last.h5 eval.h5");
  BOOST_TEST_REQUIRE(printed.exit_code == 0, printed.output);
  BOOST_TEST(printed.output.rfind("index\tclass\tlogit\n0\t", 0) == 0, printed.output);
  BOOST_TEST(std::count(printed.output.begin(), printed.output.end(), '\n') == 31, printed.output);
  const std::string before = read_file(run / "eval.h5");
  const RunResult over = run.tessera("predict a/last.h5 eval.h5 --out eval.h5");
  BOOST_TEST(over.exit_code == 1, over.output);
  BOOST_TEST(read_file(run / "eval.h5") == before);
}

BOOST_AUTO_TEST_CASE(bench_reports_speed_and_memory) {
  TinyRun run("bench_cli");
  const RunResult r = run.tessera("bench tiny.yaml --steps 3 --warmup 1 --json");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(json_number(r.output, "steps_per_s") > 0);
  BOOST_TEST(json_number(r.output, "images_per_step") == 8);  // the batch, however accumulation cuts it
  BOOST_TEST(json_number(r.output, "peak_rss_mb") > 1);
  BOOST_TEST(!std::filesystem::exists(run / "runs"));  // bench writes nothing
}

BOOST_AUTO_TEST_CASE(bf16_precision_trains_and_its_checkpoint_loads_in_either_precision) {
  TinyRun run("bf16_cli");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir h --set train.precision=bf16").exit_code == 0);
  const std::string final_eval = eval_lines(run / "h/metrics.jsonl").back();
  const RunResult same = run.tessera("eval h/last.h5 --json --precision bf16");
  BOOST_REQUIRE_MESSAGE(same.exit_code == 0, same.output);
  BOOST_TEST(std::abs(json_number(same.output, "loss") - json_number(final_eval, "loss")) < 1e-9);
  BOOST_TEST(json_number(same.output, "accuracy") > 0.5);  // it learned
  const RunResult full = run.tessera("eval h/last.h5 --json --precision fp32");  // fp32 weights either way
  BOOST_REQUIRE_MESSAGE(full.exit_code == 0, full.output);
  BOOST_TEST(std::abs(json_number(full.output, "loss") - json_number(final_eval, "loss")) < 0.05);
  const RunResult bench = run.tessera("bench tiny.yaml --steps 2 --warmup 0 --precision bf16 --json");
  BOOST_TEST(bench.output.find("\"precision\": \"bf16\"") != std::string::npos, bench.output);
  const RunResult bad = run.tessera("train tiny.yaml --run-dir x --set train.precision=fp16");
  BOOST_TEST(bad.exit_code == 1);
  BOOST_TEST(bad.output.find("train.precision: expected fp32 or bf16, got 'fp16'") != std::string::npos, bad.output);
  const RunResult bad_flag = run.tessera("eval h/last.h5 --precision half");
  BOOST_TEST(bad_flag.exit_code == 1);
  BOOST_TEST(bad_flag.output.find("--precision: expected fp32 or bf16, got 'half'") != std::string::npos, bad_flag.output);
}

BOOST_AUTO_TEST_CASE(nan_guard_stops_and_keeps_the_last_good_checkpoint) {
  TinyRun run("nan_guard");
  const RunResult r = run.tessera(
      "train tiny.yaml --run-dir n --set optim.type=sgd --set optim.lr=1e30 --set schedule.type=constant "
      "--set schedule.warmup_steps=0 --set train.clip_grad_norm=0 --set checkpoint.every=1");
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(r.output.find("step ") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("the last good checkpoint") != std::string::npos, r.output);
  if (std::filesystem::exists(run / "n/last.h5")) {  // whatever was saved is finite
    for (const auto& [name, t] : load_checkpoint(run / "n/last.h5").params)
      for (double v : t.to_vector<double>()) BOOST_REQUIRE_MESSAGE(std::isfinite(v), name);
  }
}

BOOST_AUTO_TEST_CASE(cli_errors_are_messages_and_exit_codes) {
  {
    // Thread counts are bounded wherever they come from (a million used to crash).
    TinyRun run("threads_bound");
    const RunResult flag = run.tessera("train tiny.yaml --run-dir t --threads 1000000");
    BOOST_TEST(flag.exit_code == 1, flag.output);
    BOOST_TEST(flag.output.find("--threads: at most 1024 threads, got 1000000") != std::string::npos, flag.output);
    const RunResult env = run_shell("cd '" + run.path.string() + "' && TESSERA_THREADS=1000000 '" + TESSERA_BINARY + "' info 2>&1");
    BOOST_TEST(env.exit_code == 1, env.output);
    BOOST_TEST(env.output.find("TESSERA_THREADS: at most 1024 threads, got 1000000") != std::string::npos, env.output);
    BOOST_TEST(run.tessera("data import scenes --from x --out y --threads 5000").output.find("at most 1024 threads") !=
               std::string::npos);
  }
  TinyRun run("cli_errors");
  const RunResult typo = run.tessera("train tiny.yaml --set optim.lrr=1");
  BOOST_TEST(typo.exit_code == 1);
  BOOST_TEST(typo.output.find("optim.lrr: unknown key (did you mean optim.lr?)") != std::string::npos, typo.output);
  BOOST_TEST(run.tessera("train tiny.yaml --bogus").exit_code == 1);
  BOOST_TEST(run.tessera("train --resume nowhere").exit_code == 1);
  const RunResult no_data = run.tessera("train tiny.yaml --set data.train=absent.h5");
  BOOST_TEST(no_data.exit_code == 1);
  BOOST_TEST(no_data.output.find("data.train = 'absent.h5'") != std::string::npos, no_data.output);
  // A second run into the same folder is refused rather than overwriting it.
  BOOST_REQUIRE(run.tessera("train tiny.yaml --set train.steps=2 --set schedule.warmup_steps=0").exit_code == 0);
  BOOST_TEST(std::filesystem::exists(run / "runs/tiny/last.h5"));  // the default run folder
  const RunResult again = run.tessera("train tiny.yaml");
  BOOST_TEST(again.exit_code == 1);
  BOOST_TEST(again.output.find("--resume runs/tiny") != std::string::npos, again.output);
  const RunResult fresh = run.tessera("train tiny.yaml --set train.steps=3 --set schedule.warmup_steps=0 --overwrite");
  BOOST_TEST(fresh.exit_code == 0, fresh.output);
  BOOST_TEST(load_checkpoint(run / "runs/tiny/last.h5").meta.step == 3);
}

BOOST_AUTO_TEST_SUITE_END()
