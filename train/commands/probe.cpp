// `tessera probe CKPT`: linear-probe accuracy of a checkpoint's frozen image embeddings — a
// multinomial logistic regression (nn::linear_probe) fit on the embeddings of a labelled training
// set and scored on a test set (by default the recipe's data.train and data.eval). For CLIP/SigLIP
// the features are the L2-normalised joint-space image embeddings (what `tessera tokenize` writes),
// for a ViT the pooled embedding.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "autograd/error.h"
#include "kernels/threads.h"
#include "nn/linear_probe.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/image_embeddings.h"
#include "train/trained_model.h"
#include "train/json.h"

namespace tessera::cli {
namespace {

struct Options {
  std::string checkpoint, train, test;
  int64_t train_limit = -1, test_limit = -1, batch = 0;
  nn::LinearProbeOptions probe;
  bool search = false;  // --weight-decay auto
  bool json = false;
};

double parse_number(const std::string& flag, const std::string& text, double min) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !(v >= min)) fail("{}: expected a number >= {}, got '{}'", flag, min, text);
  return v;
}

Options parse(const std::vector<std::string>& args) {
  Options o;
  const std::vector<std::string> valued{"--train",        "--test", "--train-limit", "--test-limit",
                                        "--steps",        "--weight-decay", "--tolerance", "--batch", "--threads"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (std::find(valued.begin(), valued.end(), a) != valued.end()) {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      const std::string& v = args[++i];
      if (a == "--train") o.train = v;
      else if (a == "--test") o.test = v;
      else if (a == "--train-limit") o.train_limit = train::parse_count(a, v, 1);
      else if (a == "--test-limit") o.test_limit = train::parse_count(a, v, 1);
      else if (a == "--steps") o.probe.steps = train::parse_count(a, v, 1);
      else if (a == "--weight-decay" && v == "auto") o.search = true;
      else if (a == "--weight-decay") o.probe.weight_decay = parse_number(a, v, 0), o.search = false;
      else if (a == "--tolerance") o.probe.tolerance = parse_number(a, v, 0);
      else if (a == "--batch") o.batch = train::parse_count(a, v, 1);
      else kernels::set_num_threads(train::parse_threads(a, v));
    } else if (a == "--json") {
      o.json = true;
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera probe --help)", a);
    } else if (o.checkpoint.empty()) {
      o.checkpoint = a;
    } else {
      fail("one checkpoint only (got '{}' and '{}')", o.checkpoint, a);
    }
  }
  if (o.checkpoint.empty()) fail("give a checkpoint, e.g. tessera probe runs/clip_fmnist/last.h5");
  return o;
}

// The features and labels of one side of the probe: an image data set embedded by the checkpoint,
// or an embeddings file `tessera tokenize` wrote from it.
struct Features {
  Tensor x, y;
  std::vector<std::string> class_names;
};

Features load_features(const train::TrainedModel& model, nn::ImageToEmbedding& embedder, const std::string& path,
                       const char* role, int64_t limit, int64_t batch) {
  if (train::is_embeddings_file(path)) {
    train::EmbeddingsFile f = train::read_embeddings_file(path, limit);
    if (!f.labels.defined()) fail("probe: the {} file {} has no labels; a linear probe needs labelled images", role, path);
    if (f.embeddings.size(0) == 0) fail("probe: the {} file {} holds no embeddings", role, path);
    if (f.class_names.empty()) fail("probe: {}: dataset 'labels' has no attribute class_names", path);
    if (f.embeddings.size(1) != embedder.image_embedding_dim() || (!f.model.empty() && f.model != model.type()))
      fail("probe: {} holds {}-d embeddings of a '{}' model, but {} gives {}-d {} embeddings", path,
           f.embeddings.size(1), f.model, model.path(), embedder.image_embedding_dim(), model.type());
    if (f.checkpoint != model.path())
      fmt::print(stderr, "note: {} says it was written from checkpoint '{}' (probing {})\n", path, f.checkpoint,
                 model.path());
    return {f.embeddings, f.labels, f.class_names};
  }
  std::shared_ptr<data::Dataset> d = data::Dataset::open(path);
  if (!d->info().has_labels) fail("probe: the {} set {} has no labels; a linear probe needs labelled images", role, path);
  if (d->size() == 0) fail("probe: the {} set {} holds no images", role, path);
  const train::EmbeddedImages e = train::embed_images(model, embedder, d, path, batch, limit);
  return {e.embeddings, e.labels, d->info().class_names};
}

int run_probe(const std::vector<std::string>& args) {
  Options o = parse(args);
  const train::TrainedModel model = train::TrainedModel::load(o.checkpoint);
  auto& embedder = model.need<nn::ImageToEmbedding>("embed images (probe needs image embeddings)");
  const train::Recipe& recipe = model.recipe();
  if (o.train.empty()) o.train = recipe.section("data").string("train");
  if (o.test.empty()) o.test = recipe.section("data").string("eval");
  if (o.train.empty()) fail("the recipe in {} has no data.train; give --train FILE", o.checkpoint);
  if (o.test.empty()) fail("the recipe in {} has no data.eval; give --test FILE", o.checkpoint);

  const Features tr = load_features(model, embedder, o.train, "training", o.train_limit, o.batch);
  const Features te = load_features(model, embedder, o.test, "test", o.test_limit, o.batch);
  if (tr.class_names != te.class_names)
    fail("probe: the training set {} names its classes [{}] but the test set {} [{}]; they must be the same classes "
         "in the same order", o.train, fmt::join(tr.class_names, ", "), o.test, fmt::join(te.class_names, ", "));
  const int64_t classes = int64_t(tr.class_names.size());
  nn::LinearProbeSweep sweep;
  if (o.search) sweep = nn::linear_probe_sweep(tr.x, tr.y, te.x, te.y, classes, o.probe);
  else
    sweep.weight_decay = o.probe.weight_decay, sweep.result = nn::linear_probe(tr.x, tr.y, te.x, te.y, classes, o.probe);
  const nn::LinearProbeResult& r = sweep.result;

  if (o.json) {
    train::JsonObject out;
    out.add("train_accuracy", r.train_accuracy).add("test_accuracy", r.test_accuracy).add("loss", r.final_loss);
    out.add("steps", r.steps).add("converged", int64_t(r.converged)).add("weight_decay", sweep.weight_decay);
    out.add("train_images", tr.x.size(0)).add("test_images", te.x.size(0));
    fmt::print("{}\n", out.str());
  } else {
    fmt::print("checkpoint      {} (step {}): {}, {}-d\n", o.checkpoint, model.step(),
               embedder.image_embedding_description(), embedder.image_embedding_dim());
    fmt::print("train           {} ({} images)\ntest            {} ({} images)\n", o.train, tr.x.size(0), o.test,
               te.x.size(0));
    if (o.search) {
      const nn::WeightDecaySearch grid;
      fmt::print("weight decay    chosen on every {}th training image:", grid.validation_every);
      for (size_t i = 0; i < grid.grid.size(); ++i)
        fmt::print(" {:g} ({:.4f}){}", grid.grid[i], sweep.validation_accuracy[i], i + 1 < grid.grid.size() ? "," : "\n");
    }
    const std::string state =
        r.converged ? " (converged)" : fmt::format(" (NOT converged: --steps {} reached)", o.probe.steps);
    fmt::print("probe           logistic regression over {} classes, weight decay {:g}: {} L-BFGS steps{}\n", classes,
               sweep.weight_decay, r.steps, state);
    fmt::print("train_accuracy  {:.4f}\ntest_accuracy   {:.4f}\nloss            {:.4f}\n", r.train_accuracy,
               r.test_accuracy, r.final_loss);
  }
  return 0;
}

const CommandRegistration registration{
    {"probe", "linear-probe accuracy of a CLIP, SigLIP or ViT checkpoint's frozen image embeddings",
     "usage: tessera probe CKPT [--train FILE] [--test FILE] [--train-limit N] [--test-limit N] [--steps N]\n"
     "                     [--weight-decay X|auto] [--tolerance X] [--batch N] [--threads N] [--json]\n\n"
     "Embeds the images of a labelled training set and a labelled test set with CKPT (defaults: the recipe's\n"
     "data.train and data.eval) — for clip/siglip the L2-normalised joint-space image embedding, as\n"
     "`tessera tokenize` writes it; for vit the pooled embedding — then fits a multinomial logistic\n"
     "regression on the training embeddings and prints its train and test accuracy and final loss (a table,\n"
     "or one JSON object with --json).\n\n"
     "The fit (nn/linear_probe.h): features standardised by the training set's mean and std, then\n"
     "mean cross-entropy + weight_decay * |W|^2 / 2 minimised full batch by L-BFGS from zero weights, in\n"
     "f64, until the largest gradient entry is below --tolerance (as scikit-learn's LogisticRegression, CLIP's\n"
     "linear-probe protocol). It is deterministic: the same inputs, options and thread count give the same\n"
     "result. Embedding the whole Fashion-MNIST training set costs a forward pass over 60000 images;\n"
     "--train-limit takes the first N instead.\n\n"
     "  --train FILE, --test FILE    labelled data sets with the same class names (in the same order), or\n"
     "                     embeddings files written from CKPT by `tessera tokenize` (embedded once, probed often)\n"
     "  --train-limit N, --test-limit N   use the first N images of a set\n"
     "  --steps N          most L-BFGS iterations (default 1000)\n"
     "  --tolerance X      stop when the largest gradient entry is below X (default 1e-5)\n"
     "  --weight-decay X   L2 penalty on the weights, lambda above (default 1e-6; scikit-learn's C = 1 / (lambda N));\n"
     "                     auto: chosen from 0, 1e-6 ... 1 by accuracy on every 5th training image (held out),\n"
     "                     then refit on the whole training set (CLIP's protocol; costs 9 fits)\n"
     "  --batch N          images per forward pass (default: the recipe's eval.batch_size)\n"
     "  --threads N        worker threads",
     run_probe}};

}  // namespace
}  // namespace tessera::cli
