// `tessera tokenize CKPT IN.h5 OUT.h5`: the tokens of every image of a data set, from a trained
// model, by what the model can do (nn/capabilities.h), in this order of preference:
//   grid tokens (nn::ImageToTokens: VAE, VQ-VAE, FSQ)  a token file (train/grid_tokens.h) that
//                                                      `tessera decode` turns back into images
//   patch tokens (nn::ImageToPatchTokens: ViT)         tokens float32 [N, patches, width] after the
//                                                      final norm, pooled float32 [N, width]
//   an image embedding (nn::ImageToEmbedding: CLIP,    embeddings float32 [N, dim], as the model
//   SigLIP)                                            describes them (L2-normalised for dual encoders)
// with labels int64 [N] copied from IN.h5 when it has labels (attribute class_names), and
// attributes naming the checkpoint, its step and model. Images are normalised as the recipe's
// evaluation does. OUT.h5 is written to a temporary file and renamed into place, so an existing
// OUT.h5 is never left half-written.
#include <fmt/format.h>
#include <hdf5.h>

#include <memory>

#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "kernels/threads.h"
#include "nn/capabilities.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/grid_tokens.h"
#include "train/image_rows.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

using data::h5::RowWriter;
using data::h5::write_attribute;

struct Options {
  std::string checkpoint, input, output;
  int64_t batch = 0, threads = 0;
  bool overwrite = false;
};

Options parse(const std::vector<std::string>& args) {
  Options o;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--precision") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      train::set_precision(a, args[++i]);
    } else if (a == "--batch" || a == "--threads") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      if (a == "--batch") o.batch = train::parse_count(a, args[++i], 1);
      else o.threads = train::parse_threads(a, args[++i]);
    } else if (a == "--overwrite") {
      o.overwrite = true;
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera tokenize --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 3)
    fail("give a checkpoint, an input data set and an output file, e.g. "
         "tessera tokenize runs/vit_fmnist/last.h5 datasets/fmnist/test.h5 tokens.h5");
  o.checkpoint = positional[0], o.input = positional[1], o.output = positional[2];
  return o;
}

void write_patch_tokens(const Options& o, const train::TrainedModel& model, nn::ImageToPatchTokens& vit) {
  const auto T = hsize_t(vit.num_patches()), W = hsize_t(vit.token_width());
  const data::DatasetInfo info = train::write_image_rows(
      model, o.input, o.output, "tessera tokenize", o.overwrite, o.batch, [&](hid_t file, const data::DatasetInfo&, hsize_t n) -> train::FillRows {
        auto tokens = std::make_shared<RowWriter>(file, "tokens", H5T_NATIVE_FLOAT, std::vector<hsize_t>{n, T, W}, o.output);
        auto pooled = std::make_shared<RowWriter>(file, "pooled", H5T_NATIVE_FLOAT, std::vector<hsize_t>{n, W}, o.output);
        return [&vit, tokens, pooled](const data::Batch& batch, hsize_t start, hsize_t count) {
          const nn::PatchTokens out = vit.patch_tokens(batch.images);
          tokens->write(H5T_NATIVE_FLOAT, start, count, out.tokens.contiguous().data<float>());
          pooled->write(H5T_NATIVE_FLOAT, start, count, out.pooled.contiguous().data<float>());
        };
      });
  fmt::print("wrote {}: tokens [{}, {}, {}], pooled [{}, {}]{}\n", o.output, info.size, T, W, info.size, W,
             info.has_labels ? fmt::format(", labels [{}]", info.size) : "");
}

void write_embeddings(const Options& o, const train::TrainedModel& model, nn::ImageToEmbedding& embedder) {
  const auto E = hsize_t(embedder.image_embedding_dim());
  const data::DatasetInfo info = train::write_image_rows(
      model, o.input, o.output, "tessera tokenize", o.overwrite, o.batch,
      [&](hid_t file, const data::DatasetInfo& images, hsize_t n) -> train::FillRows {
        auto embeddings =
            std::make_shared<RowWriter>(file, "embeddings", H5T_NATIVE_FLOAT, std::vector<hsize_t>{n, E}, o.output);
        write_attribute(file, "embedding", embedder.image_embedding_description());
        write_attribute(file, "embed_dim", int64_t(E));
        write_attribute(file, "image_shape", std::vector<int64_t>{images.channels, images.height, images.width});
        write_attribute(file, "source", o.input);
        return [&embedder, embeddings](const data::Batch& batch, hsize_t start, hsize_t count) {
          embeddings->write(H5T_NATIVE_FLOAT, start, count, embedder.embed_images(batch.images).contiguous().data<float>());
        };
      });
  fmt::print("wrote {}: embeddings float32 [{}, {}] ({}){}\n", o.output, info.size, E,
             embedder.image_embedding_description(), info.has_labels ? fmt::format(", labels [{}]", info.size) : "");
}

int run_tokenize(const std::vector<std::string>& args) {
  const Options o = parse(args);
  if (o.threads > 0) kernels::set_num_threads(int(o.threads));
  const train::TrainedModel model = train::TrainedModel::load(o.checkpoint);
  if (auto* grid = model.find<nn::ImageToTokens>()) train::write_grid_tokens(model, *grid, o.input, o.output, o.overwrite, o.batch);
  else if (auto* patches = model.find<nn::ImageToPatchTokens>()) write_patch_tokens(o, model, *patches);
  else if (auto* embedder = model.find<nn::ImageToEmbedding>()) write_embeddings(o, model, *embedder);
  else
    fail("tokenize: {} holds a '{}' model, which makes no image tokens (no grid tokens, patch tokens or image "
         "embedding: nn/capabilities.h)", o.checkpoint, model.type());
  return 0;
}

const CommandRegistration registration{
    {"tokenize", "write the tokens of a data set from a checkpoint (VAE, VQ-VAE, FSQ, ViT, CLIP, SigLIP ...)",
     "usage: tessera tokenize CKPT IN.h5 OUT.h5 [--batch N] [--threads N] [--precision fp32|bf16] [--overwrite]\n\n"
     "Rebuilds the model from the recipe stored in CKPT (its EMA weights when `tessera eval` uses them)\n"
     "and runs every image of IN.h5 through it, normalised as the recipe's evaluation does. What OUT.h5\n"
     "gets depends on what the model makes:\n\n"
     "- an image tokenizer (vae, vqvae, fsq): `tokens` int32 [N, h, w] (codebook indices) or float32\n"
     "  [N, h, w, c] (VAE posterior means), and attributes naming the checkpoint and the `tessera decode`\n"
     "  command that turns the tokens back into images;\n"
     "- a ViT: `tokens` float32 [N, patches, width] (patch tokens after the final norm, CLS excluded)\n"
     "  and `pooled` float32 [N, width] (CLS token or mean of the patch tokens, as the model pools);\n"
     "- a dual encoder (clip, siglip): `embeddings` float32 [N, embed_dim] (the image tower's\n"
     "  joint-space embeddings, L2-normalised, as the model compares them) and attributes embedding,\n"
     "  embed_dim, image_shape and source (IN.h5); `tessera probe` fits a linear classifier on them.\n\n"
     "Each also gets `labels` int64 [N] with attribute class_names when IN.h5 has labels, and\n"
     "attributes checkpoint, step, model and written_by. OUT.h5 is written to a temporary file renamed\n"
     "into place at the end. It may not be IN.h5, CKPT or any image data set, and an existing OUT.h5\n"
     "is replaced only when an earlier tokenize wrote it (or with --overwrite).\n\n"
     "  --batch N    images per forward pass (default: the recipe's eval.batch_size)\n"
     "  --threads N  worker threads\n"
     "  --overwrite  replace an existing OUT.h5 that tokenize did not write (never a data set)\n"
     "  --precision  fp32 (default) or bf16: the matrix products' operands in bf16, sums in fp32",
     run_tokenize}};

}  // namespace
}  // namespace tessera::cli
