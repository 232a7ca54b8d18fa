// `tessera decode CKPT TOKENS.h5 OUT.h5`: images from the tokens `tessera tokenize` wrote, by the
// checkpoint of any model that turns tokens into images (nn::TokensToImage: VAE, VQ-VAE, FSQ);
// OUT.h5 is a data set in the usual schema.
#include "kernels/threads.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/grid_tokens.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

int run_decode(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  int64_t batch = 0;
  bool overwrite = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--overwrite") {
      overwrite = true;
    } else if (a == "--batch" || a == "--threads") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      const int64_t v = train::parse_count(a, args[++i], 1);
      if (a == "--batch") batch = v;
      else kernels::set_num_threads(int(v));
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera decode --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 3)
    fail("give a checkpoint, a token file and an output file, e.g. "
         "tessera decode runs/vqvae_fmnist/last.h5 tokens.h5 decoded.h5");
  const train::TrainedModel model = train::TrainedModel::load(positional[0]);
  train::decode_grid_tokens(model, model.need<nn::TokensToImage>("decode tokens into images"), positional[1],
                            positional[2], batch, overwrite);
  return 0;
}

const CommandRegistration registration{
    {"decode", "turn tokens (from tessera tokenize) back into images with an image tokenizer's checkpoint (VAE, VQ-VAE, FSQ)",
     "usage: tessera decode CKPT TOKENS.h5 OUT.h5 [--batch N] [--threads N] [--overwrite]\n\n"
     "Rebuilds the model from the recipe stored in CKPT (its EMA weights when `tessera eval` uses them)\n"
     "and decodes TOKENS.h5's `tokens` (int32 [N, h, w] codes of a vqvae or fsq model, float32\n"
     "[N, h, w, c] latents of a vae) into OUT.h5, a data set (images uint8 [N, H, W, C], and labels\n"
     "when TOKENS.h5 has them). A token file of the wrong shape or type, or a code outside the\n"
     "codebook, is refused with a message.\n"
     "With the batch size tokenize used (both default to the recipe's eval.batch_size), the images\n"
     "are exactly the model's evaluation-mode reconstructions. OUT.h5 is written to a temporary file\n"
     "and renamed into place; an existing OUT.h5 is replaced only if an earlier decode wrote it (its\n"
     "written_by attribute), so a data set given by mistake is kept.\n\n"
     "  --batch N    token grids per decoder pass (default: the recipe's eval.batch_size)\n"
     "  --threads N  worker threads\n"
     "  --overwrite  replace an existing OUT.h5 whatever wrote it",
     run_decode}};

}  // namespace
}  // namespace tessera::cli
