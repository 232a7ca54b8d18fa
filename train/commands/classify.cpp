// `tessera classify CKPT IMAGES.h5 --labels a,b,c`: zero-shot classification with a CLIP/SigLIP
// checkpoint: each image goes to the label whose prompt ensemble ("a photo of a {}." ...) it is
// most similar to. Prints one line per image and, when IMAGES.h5 has labels, the accuracy.
#include <fmt/format.h>

#include <sstream>

#include "autograd/ops/contrastive.h"
#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "kernels/threads.h"
#include "train/checkpoint.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/models/clip.h"

namespace tessera::cli {
namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int run_classify(const std::vector<std::string>& args) {
  std::vector<std::string> positional, labels, templates;
  int64_t batch = 256, limit = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--labels" || a == "--templates" || a == "--batch" || a == "--threads" || a == "--limit") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      const std::string& v = args[++i];
      if (a == "--labels") labels = split_commas(v);
      else if (a == "--templates") templates = split_commas(v);
      else if (a == "--batch") batch = train::parse_count(a, v, 1);
      else if (a == "--limit") limit = train::parse_count(a, v, 0);
      else kernels::set_num_threads(int(train::parse_count(a, v, 1)));
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera classify --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2 || labels.size() < 2)
    fail("give a checkpoint, an image data set and at least two --labels, e.g. "
         "tessera classify runs/clip_fmnist/last.h5 datasets/fmnist/test.h5 --labels t-shirt,trouser,bag");
  auto model = train::load_clip_checkpoint(positional[0]);
  if (!templates.empty()) {
    for (const auto& t : templates)
      if (t.find("{}") == std::string::npos) fail("--templates: '{}' has no {{}} for the label", t);
    model->zero_shot_templates = templates;
  }
  std::shared_ptr<data::Dataset> dataset = data::Dataset::open(positional[1]);
  const auto& info = dataset->info();
  const auto& shape = model->visual->config();
  if (info.channels != shape.channels || info.height != shape.image_size || info.width != shape.image_size)
    fail("{} holds {}x{}x{} images (C x H x W) but the model takes {}x{}x{}", positional[1], info.channels, info.height,
         info.width, shape.channels, shape.image_size, shape.image_size);

  const train::Recipe recipe = train::Recipe::parse(train::load_checkpoint(positional[0]).meta.recipe, positional[0]);
  data::LoaderOptions lo = train::loader_options(recipe, false);
  lo.batch_size = batch;
  lo.caption_templates.clear();
  const std::vector<std::string> recipe_names = lo.class_names;  // data.class_names of the run, if it renamed classes
  lo.class_names.clear();
  const data::Loader loader(dataset, lo);

  NoGradGuard no_grad;
  const Tensor classes = model->class_embeddings(labels);
  // Accuracy only when the file's labels name the same classes in the same order (by the file's
  // names, or by the names the run's recipe gave them).
  const bool score = info.has_labels && (info.class_names == labels ||
                                         (recipe_names == labels && recipe_names.size() == info.class_names.size()));
  int64_t shown = 0, correct = 0, total = 0;
  fmt::print("index\tlabel\tcosine{}\n", score ? "\ttrue" : "");
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const data::Batch batch_data = loader.make_batch(0, b);
    const Tensor sims = matmul(l2_normalize_rows(model->encode_image(batch_data.images)), classes.t());
    const std::vector<int64_t> best = argmax(sims, 1).to_vector<int64_t>();
    const std::vector<float> s = sims.contiguous().to_vector<float>();
    const std::vector<int64_t> truth = score ? batch_data.labels.to_vector<int64_t>() : std::vector<int64_t>{};
    for (size_t i = 0; i < best.size(); ++i) {
      if (limit < 0 || shown < limit) {
        fmt::print("{}\t{}\t{:.4f}{}\n", batch_data.indices[i], labels[size_t(best[i])],
                   s[i * labels.size() + size_t(best[i])], score ? "\t" + labels[size_t(truth[i])] : "");
        ++shown;
      }
      if (score) correct += best[i] == truth[i];
      ++total;
    }
  }
  if (score) fmt::print(stderr, "zero-shot accuracy {:.4f} ({} of {} images)\n", double(correct) / double(total), correct, total);
  return 0;
}

const CommandRegistration registration{
    {"classify", "zero-shot classification of a data set with a CLIP/SigLIP checkpoint",
     "usage: tessera classify CKPT IMAGES.h5 --labels a,b,c [--templates T1,T2] [--limit N] [--batch N] [--threads N]\n\n"
     "Embeds every label in the prompt templates (the recipe's model.zero_shot_templates unless\n"
     "--templates; each must contain {}), averages the unit text embeddings per label, and assigns each\n"
     "image of IMAGES.h5 the label of highest cosine similarity. Prints `index label cosine` per image\n"
     "(the first N with --limit); when IMAGES.h5 is labelled with exactly these class names, also the true\n"
     "label and, on stderr, the accuracy.",
     run_classify}};

}  // namespace
}  // namespace tessera::cli
