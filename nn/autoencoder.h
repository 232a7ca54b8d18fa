#pragma once
// An image tokenizer: encoder, bottleneck, decoder. The bottleneck makes the tokens:
//   gaussian  VAE: a diagonal Gaussian posterior; its mean is the soft token grid [N, h, w, c]
//   vq        VQ-VAE: the index of the nearest codebook entry, a hard token grid [N, h, w]
//   fsq       FSQ: per-channel rounding; the mixed-radix index of the levels, a hard token grid
// Training draws the VAE latent from the posterior; evaluation, tokenize and decode use its
// mean, so decode(tokenize(x)) is exactly the evaluation-mode reconstruction of x.
#include <cstdint>
#include <memory>
#include <string>

#include "autograd/random.h"
#include "nn/capabilities.h"
#include "nn/fsq.h"
#include "nn/gaussian.h"
#include "nn/module.h"
#include "nn/quantizer.h"

namespace tessera::nn {

enum class Bottleneck { gaussian, vq, fsq };
const char* bottleneck_name(Bottleneck b);

struct AutoencoderOutput {
  Tensor reconstruction;   // [N, C, H, W]
  Tensor bottleneck_loss;  // scalar, already weighted: kl_weight * KL (gaussian), VQ loss (vq), 0 (fsq)
  Tensor kl;               // gaussian: the unweighted KL, reduced as options.kl_reduction says
  Tensor indices;          // vq, fsq: i64 [N, h, w]
};

struct AutoencoderOptions {
  Bottleneck bottleneck = Bottleneck::gaussian;
  int64_t image_channels = 1;
  int64_t downsample = 4;        // image size / token grid size
  int64_t latent_channels = 4;   // c of a VAE latent, D of a VQ code; FSQ: the number of levels
  double kl_weight = 1e-3;       // gaussian
  KlReduction kl_reduction = KlReduction::mean;
  VectorQuantizerOptions vq;     // vq (its dim is latent_channels)
  std::vector<int64_t> fsq_levels{8, 5, 5, 5};
};

class Autoencoder : public Module, public ImageToReconstruction, public ImageToTokens, public TokensToImage {
 public:
  // encoder: images [N, C, H, W] -> [N, E, H/f, W/f] with E = 2 latent_channels (gaussian) or
  // latent_channels; decoder: [N, latent_channels, h, w] -> images.
  Autoencoder(const AutoencoderOptions& options, std::shared_ptr<UnaryModule> encoder,
              std::shared_ptr<UnaryModule> decoder, Generator& gen);

  AutoencoderOutput forward(const Tensor& images, Generator& gen = default_generator());
  Reconstruction reconstruct(const Tensor& images) override;

  // ImageToTokens, TokensToImage: hard codes [h, w] (vq, fsq) or soft latents [h, w, c]
  // (gaussian: the posterior mean), computed without gradient.
  TokenGrid token_grid(int64_t image_height, int64_t image_width) const override;
  Tensor tokenize(const Tensor& images) override;
  Tensor decode(const Tensor& tokens) override;

  const AutoencoderOptions& options() const { return options_; }
  Bottleneck bottleneck() const { return options_.bottleneck; }
  // 0 for the gaussian bottleneck.
  int64_t codebook_size() const;
  // Channels of one token: c (gaussian), 0 for the integer tokens of vq and fsq.
  int64_t token_channels() const { return options_.bottleneck == Bottleneck::gaussian ? options_.latent_channels : 0; }
  VectorQuantizer* vector_quantizer() const { return vq_.get(); }
  FiniteScalarQuantizer* fsq() const { return fsq_.get(); }

 private:
  void check_images(const Tensor& images) const;
  // The encoder's output, checked against the expected channels and grid.
  Tensor encode(const Tensor& images);

  AutoencoderOptions options_;
  std::shared_ptr<UnaryModule> encoder_, decoder_;
  std::shared_ptr<VectorQuantizer> vq_;
  std::shared_ptr<FiniteScalarQuantizer> fsq_;
};

}  // namespace tessera::nn
