// `tessera predict CKPT IMAGES.h5 [--out FILE.h5]`: every image's score per class — a classifier's
// logits, or a dual encoder's cosine similarities to each class's prompt ensemble (zero-shot) — as
// an HDF5 file for analysis elsewhere, or the best class per image on the console.
#include <fmt/format.h>


#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/contrastive.h"
#include "data/dataset.h"
#include "kernels/threads.h"
#include "nn/contrastive_metrics.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/image_rows.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

// What the model scores images with: logits, or similarities to prompt ensembles.
struct Scorer {
  std::string dataset;  // "logits" or "similarities"
  std::vector<std::string> classes;
  std::function<Tensor(const Tensor& images)> scores;  // [B, classes]
};

Scorer scorer_for(const train::TrainedModel& model, const data::DatasetInfo& info, std::vector<std::string> labels) {
  if (auto* classifier = model.find<nn::ImageToLogits>()) {
    if (!labels.empty()) fail("--labels names a dual encoder's classes; {} is a classifier with its own", model.path());
    const int64_t classes = model.shape().num_classes;
    std::vector<std::string> names = info.class_names;
    if (int64_t(names.size()) != classes) {  // a data set of other classes: number them
      names.clear();
      for (int64_t c = 0; c < classes; ++c) names.push_back(std::to_string(c));
    }
    return {"logits", names, [classifier](const Tensor& images) { return classifier->logits(images); }};
  }
  auto* images = model.find<nn::ImageToEmbedding>();
  auto* texts = model.find<nn::TextToEmbedding>();
  if (images == nullptr || texts == nullptr)
    fail("{} ({}) neither classifies images nor embeds both images and text; predict needs one or the other",
         model.path(), model.type());
  if (labels.empty()) {
    const std::vector<std::string> renamed = model.recipe().section("data").strings("class_names");
    labels = renamed.size() == info.class_names.size() && !renamed.empty() ? renamed : info.class_names;
  }
  if (labels.size() < 2) fail("a dual encoder needs at least two class names: give --labels a,b,... (the data set has none)");
  const Tensor classes = nn::zero_shot_class_embeddings(*texts, labels, texts->zero_shot_templates());
  return {"similarities", labels, [images, classes](const Tensor& x) {
            return matmul(l2_normalize_rows(images->embed_images(x)), classes.t());
          }};
}

int run_predict(const std::vector<std::string>& args) {
  std::vector<std::string> positional, labels;
  std::string out;
  int64_t batch = 0;
  bool overwrite = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--out" || a == "--batch" || a == "--threads" || a == "--labels") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      const std::string& v = args[++i];
      if (a == "--out") out = v;
      else if (a == "--labels") labels = train::split_commas(v);
      else if (a == "--batch") batch = train::parse_count(a, v, 1);
      else kernels::set_num_threads(train::parse_threads(a, v));
    } else if (a == "--overwrite") {
      overwrite = true;
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera predict --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) fail("give a checkpoint and an image data set, e.g. tessera predict runs/vit_fmnist/last.h5 "
                                   "datasets/fmnist/test.h5 --out predictions.h5");
  const std::string& input = positional[1];
  const train::TrainedModel model = train::TrainedModel::load(positional[0]);
  const std::shared_ptr<data::Dataset> dataset = data::Dataset::open(input);
  NoGradGuard no_grad;
  const Scorer scorer = scorer_for(model, dataset->info(), labels);
  const auto k = hsize_t(scorer.classes.size());

  if (!out.empty()) {
    train::write_image_rows(model, input, out, "tessera predict", overwrite, batch, [&](hid_t file, const data::DatasetInfo&, hsize_t rows) {
      auto writer = std::make_shared<data::h5::RowWriter>(file, scorer.dataset.c_str(), H5T_IEEE_F32LE,
                                                          std::vector<hsize_t>{rows, k}, out);
      data::h5::write_attribute(writer->id(), "class_names", scorer.classes);
      return [writer, &scorer](const data::Batch& b, hsize_t start, hsize_t count) {
        const Tensor s = scorer.scores(b.images).contiguous();
        writer->write(H5T_NATIVE_FLOAT, start, count, s.data<float>());
      };
    });
    fmt::print("{} [{}, {}] for {} images of {} written to {}\n", scorer.dataset, dataset->size(), k, dataset->size(),
               input, out);
    return 0;
  }
  fmt::print("index\tclass\t{}\n", scorer.dataset == "logits" ? "logit" : "cosine");
  model.for_each_batch(dataset, input, batch, -1, [&](const data::Batch& b) {
    const Tensor s = scorer.scores(b.images);
    const std::vector<int64_t> best = argmax(s, 1).to_vector<int64_t>();
    const std::vector<float> v = s.contiguous().to_vector<float>();
    for (size_t i = 0; i < best.size(); ++i)
      fmt::print("{}\t{}\t{}\n", b.indices[i], scorer.classes[size_t(best[i])], v[i * k + size_t(best[i])]);
  });
  return 0;
}

const CommandRegistration registration{
    {"predict", "write every image's class scores (logits or zero-shot similarities) to HDF5",
     "usage: tessera predict CKPT IMAGES.h5 [--out FILE.h5] [--labels a,b,c] [--batch N] [--threads N]\n"
     "                       [--overwrite]\n\n"
     "Scores every image of IMAGES.h5 (normalised as the recipe's evaluation does): a classifier's\n"
     "logits, or a dual encoder's (CLIP, SigLIP) cosine similarity to each class's prompt ensemble\n"
     "(the data set's class names, as the run's data.class_names renames them, or --labels).\n"
     "With --out, writes `logits` or `similarities` float32 [N, classes] with attribute class_names,\n"
     "`labels` when IMAGES.h5 has them, and attributes checkpoint, step, model and written_by (h5py\n"
     "reads it); the file goes to a temporary name renamed into place, never over IMAGES.h5, CKPT or\n"
     "any image data set, and over another existing file only when predict wrote it or --overwrite.\n"
     "Without --out, prints `index class score` for the best class of each image.",
     run_predict}};

}  // namespace
}  // namespace tessera::cli
