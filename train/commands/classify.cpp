// `tessera classify CKPT IMAGES.h5 --labels a,b,c`: zero-shot classification with the checkpoint of
// a model that embeds both images and text (CLIP, SigLIP): each image goes to the label whose
// prompt ensemble ("a photo of a {}." ...) it is most similar to. Prints one line per image and, when IMAGES.h5 has labels, the accuracy.
#include <fmt/format.h>


#include "autograd/ops/contrastive.h"
#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "data/dataset.h"
#include "kernels/threads.h"
#include "nn/contrastive_metrics.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

int run_classify(const std::vector<std::string>& args) {
  std::vector<std::string> positional, labels, templates;
  int64_t batch = 256, limit = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--labels" || a == "--templates" || a == "--batch" || a == "--threads" || a == "--limit") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      const std::string& v = args[++i];
      if (a == "--labels") labels = train::split_commas(v);
      else if (a == "--templates") templates = train::split_commas(v);
      else if (a == "--batch") batch = train::parse_count(a, v, 1);
      else if (a == "--limit") limit = train::parse_count(a, v, 0);
      else kernels::set_num_threads(train::parse_threads(a, v));
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera classify --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2 || labels.size() < 2)
    fail("give a checkpoint, an image data set and at least two --labels, e.g. "
         "tessera classify runs/clip_fmnist/last.h5 datasets/fmnist/test.h5 --labels t-shirt,trouser,bag");
  const train::TrainedModel model = train::TrainedModel::load(positional[0]);
  auto& image_embedder = model.need<nn::ImageToEmbedding>("embed images (zero-shot classification compares images with prompts)");
  auto& text_embedder = model.need<nn::TextToEmbedding>("embed text (zero-shot classification embeds the label prompts)");
  if (templates.empty()) templates = text_embedder.zero_shot_templates();
  for (const auto& t : templates)
    if (t.find("{}") == std::string::npos) fail("--templates: '{}' has no {{}} for the label", t);
  std::shared_ptr<data::Dataset> dataset = data::Dataset::open(positional[1]);
  const auto& info = dataset->info();  // for_each_batch checks its image shape
  // data.class_names of the run, if it renamed the classes
  const std::vector<std::string> recipe_names = model.recipe().section("data").strings("class_names");

  NoGradGuard no_grad;
  const Tensor classes = nn::zero_shot_class_embeddings(text_embedder, labels, templates);
  // Accuracy only when the file's labels name the same classes in the same order (by the file's
  // names, or by the names the run's recipe gave them).
  const bool score = info.has_labels && (info.class_names == labels ||
                                         (recipe_names == labels && recipe_names.size() == info.class_names.size()));
  int64_t shown = 0, correct = 0, total = 0;
  fmt::print("index\tlabel\tcosine{}\n", score ? "\ttrue" : "");
  model.for_each_batch(dataset, positional[1], batch, -1, [&](const data::Batch& batch_data) {
    const Tensor sims = matmul(l2_normalize_rows(image_embedder.embed_images(batch_data.images)), classes.t());
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
  });
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
