#pragma once
// The latent diffusion transformer as `tessera` runs it: nn::LatentDiffusion (a frozen VAE from
// model.vae.from, and a DiT) plus how the diffusion task evaluates it — the classifier in whose
// features generated images are compared with real ones, how many to generate, and the images
// the distance floor is measured on.
#include <string>

#include "nn/latent_diffusion.h"

namespace tessera::train {

struct DiffusionEvaluationSettings {
  std::string classifier;   // a ViT classifier checkpoint; empty: only the denoising loss is evaluated
  int64_t samples = 1000;   // images generated (and real images compared) per evaluation
  std::string train_data;   // the training set, for fd_vit_floor
  uint64_t seed = 0;        // the samples' generator seed
};

class LatentDitModel : public nn::LatentDiffusion {
 public:
  LatentDitModel(std::shared_ptr<nn::Module> vae, const nn::LatentDiffusionOptions& options,
                 DiffusionEvaluationSettings evaluation, Generator& gen)
      : nn::LatentDiffusion(std::move(vae), options, gen), evaluation_(std::move(evaluation)) {}
  const DiffusionEvaluationSettings& evaluation() const { return evaluation_; }

 private:
  DiffusionEvaluationSettings evaluation_;
};

}  // namespace tessera::train
