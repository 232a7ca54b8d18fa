// Data-parallel training: `mpirun -np 2 tessera train` against one process that cuts the same
// batches into the same micro-batches (train.accumulation 2), on a tiny ViT with dropout and
// stochastic depth (so the micro-batches' random streams are tested too). Runs the real binary
// under Open MPI's mpirun, as CI does.
#include <boost/test/unit_test.hpp>

#include <chrono>

#include "tests/support/tiny_run.h"
#include "train/process_group.h"

using namespace tessera;
using namespace tessera::train;
using namespace tessera::testing;

namespace {

const char* recipe = R"(seed: 3
threads: 1
data:
  train: train.h5
  eval: eval.h5
  hflip: true
model:
  type: vit
  patch_size: 3
  width: 8
  depth: 2
  heads: 2
  dropout: 0.1
  drop_path: 0.2
optim:
  type: adamw
  lr: 0.01
schedule:
  type: cosine
  warmup_steps: 2
train:
  steps: 12
  batch_size: 8
  clip_grad_norm: 1.0
  ema_decay: 0.9
eval:
  every: 4
  batch_size: 8
checkpoint:
  every: 3
  best_metric: accuracy
log:
  every: 4
)";

RunResult mpirun(const TinyRunFolder& run, int processes, const std::string& args) {
  return run_tessera_mpi(processes, args, run.path.string());
}

struct DataParallelRun : TinyRunFolder {
  explicit DataParallelRun(const std::string& name) : TinyRunFolder(name, recipe) {
    BOOST_REQUIRE_MESSAGE(mpi_missing().empty(), mpi_missing());  // under CI; elsewhere skipped
  }
};

double eval_value(const std::string& line, const std::string& key) { return json_number(line, key); }

}  // namespace

BOOST_AUTO_TEST_CASE(info_says_whether_mpi_is_built_in_and_a_build_without_refuses_mpirun) {
  const TinyRunFolder run("dp_info", recipe);
  const RunResult info = run.tessera("info");
  BOOST_REQUIRE(info.exit_code == 0);
  if (ProcessGroup::support().rfind("not built in", 0) != 0) {
    BOOST_TEST(info.output.find("mpi             Open MPI") != std::string::npos, info.output);
    return;
  }
  BOOST_TEST(info.output.find("mpi             not built in") != std::string::npos, info.output);
  // As mpirun would start it: refused, naming what to install.
  const RunResult r = run_shell("cd '" + run.path.string() + "' && OMPI_COMM_WORLD_SIZE=2 '" + TESSERA_BINARY +
                                "' train tiny.yaml --run-dir two 2>&1");
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(r.output.find("started by mpirun (-np 2) but this tessera was built without MPI") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE(data_parallel, *boost::unit_test::precondition(mpi_available))

BOOST_AUTO_TEST_CASE(two_processes_equal_one_process_accumulating_two) {
  DataParallelRun run("dp_equal");
  const RunResult one = run.tessera("train tiny.yaml --run-dir one --set train.accumulation=2");
  BOOST_REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  const RunResult two = mpirun(run, 2, "train tiny.yaml --run-dir two");
  BOOST_REQUIRE_MESSAGE(two.exit_code == 0, two.output);
  BOOST_TEST(two.output.find("data parallel: 2 processes") != std::string::npos, two.output);
  // Only process 0 reports: one progress line per log.every, not two.
  size_t lines = 0;
  for (size_t at = two.output.find("step 4/12"); at != std::string::npos; at = two.output.find("step 4/12", at + 1)) ++lines;
  BOOST_TEST(lines == 2u, two.output);  // the progress line and the eval line

  require_identical(run / "one/last.h5", run / "two/last.h5");
  require_identical(run / "one/best.h5", run / "two/best.h5");
  // The evaluation is shared out (batches 0, 2 on one process, 1, 3 on the other) and added up:
  // the same accuracy, the same mean loss up to the order of its additions.
  const auto a = eval_lines(run / "one/metrics.jsonl"), b = eval_lines(run / "two/metrics.jsonl");
  BOOST_REQUIRE_EQUAL(a.size(), 3u);
  BOOST_REQUIRE_EQUAL(b.size(), 3u);
  for (size_t i = 0; i < a.size(); ++i) {
    BOOST_TEST(eval_value(a[i], "accuracy") == eval_value(b[i], "accuracy"));
    BOOST_TEST(eval_value(a[i], "loss") == eval_value(b[i], "loss"), boost::test_tools::tolerance(1e-12));
  }

  // Three processes on the two cores: parts of 3, 3 and 2 rows, and an order of addition that
  // matters ((g0 + g1) + g2 is not g0 + (g1 + g2)).
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir one3 --set train.accumulation=3 --set train.steps=4").exit_code == 0);
  const RunResult three = mpirun(run, 3, "train tiny.yaml --run-dir three --set train.steps=4");
  BOOST_REQUIRE_MESSAGE(three.exit_code == 0, three.output);
  require_identical(run / "one3/last.h5", run / "three/last.h5");

  // And cutting the batch changes the objective not at all: without dropout, a whole batch and
  // its two halves give the same loss and gradient norm up to rounding.
  const std::string once = " --set train.steps=1 --set schedule.warmup_steps=0 --set model.dropout=0 --set model.drop_path=0";
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir whole" + once).exit_code == 0);
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir halves --set train.accumulation=2" + once).exit_code == 0);
  const std::string w = read_file(run / "whole/metrics.jsonl"), h = read_file(run / "halves/metrics.jsonl");
  BOOST_TEST(json_number(w, "loss") == json_number(h, "loss"), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(json_number(w, "grad_norm") == json_number(h, "grad_norm"), boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(stopped_on_two_processes_resumes_on_one) {
  DataParallelRun run("dp_resume");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir one --set train.accumulation=2").exit_code == 0);
  // Ctrl-C reaches both processes after step 5; they learn of it with step 6's gradients and both
  // stop after step 6, process 0 saving last.h5.
  const RunResult stopped = mpirun(run, 2, "train tiny.yaml --run-dir two --debug-interrupt-after 5");
  BOOST_TEST(stopped.exit_code != 0, stopped.output);
  BOOST_TEST(stopped.output.find("interrupted: saved") != std::string::npos, stopped.output);
  BOOST_REQUIRE_EQUAL(load_checkpoint(run / "two/last.h5").meta.step, 6);
  // One process, cutting the batch in two as the two processes did, finishes the run.
  const RunResult resumed = run.tessera("train --resume two --set train.accumulation=2");
  BOOST_REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  require_identical(run / "one/last.h5", run / "two/last.h5");
}

BOOST_AUTO_TEST_CASE(a_killed_process_stops_the_others_and_keeps_the_checkpoint) {
  DataParallelRun run("dp_kill");
  BOOST_REQUIRE(run.tessera("train tiny.yaml --run-dir one --set train.accumulation=2").exit_code == 0);
  const auto start = std::chrono::steady_clock::now();
  const RunResult killed = mpirun(run, 2, "train tiny.yaml --run-dir two --debug-kill-after 5");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST_MESSAGE("killed job, stopped after " << seconds << " s:\n" << killed.output);
  BOOST_TEST(killed.exit_code != 0, killed.output);
  BOOST_TEST(seconds < 30.0, "the job took " << seconds << " s to stop");
  BOOST_TEST(killed.output.find("rank 1") != std::string::npos, killed.output);  // mpirun names the dead process
  BOOST_REQUIRE_EQUAL(load_checkpoint(run / "two/last.h5").meta.step, 3);  // checkpoint.every 3
  const RunResult resumed = mpirun(run, 2, "train --resume two");
  BOOST_REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  require_identical(run / "one/last.h5", run / "two/last.h5");
}

BOOST_AUTO_TEST_CASE(a_batch_too_small_to_share_is_refused) {
  DataParallelRun run("dp_small");
  const RunResult r = mpirun(run, 2, "train tiny.yaml --run-dir two --set train.batch_size=1");
  BOOST_TEST(r.exit_code != 0, r.output);
  BOOST_TEST(r.output.find("train.batch_size 1 cannot be cut into 2 micro-batches (2 processes x train.accumulation 1)") !=
                 std::string::npos,
             r.output);
  BOOST_TEST(!std::filesystem::exists(run / "two/last.h5"));
}

BOOST_AUTO_TEST_SUITE_END()
