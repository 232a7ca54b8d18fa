#pragma once
// Convolutional encoders and decoders of image tokenizers, NCHW.
//
// Residual (as taming-transformers' and diffusers' autoencoders, without attention): a 3x3 conv in,
// then per level `blocks` residual blocks (GroupNorm, SiLU, 3x3 conv, twice, plus a 1x1 skip when
// widths differ) and, between levels, a 3x3 stride-2 conv; a middle residual block; GroupNorm,
// SiLU and a 3x3 conv out. L levels downsample by 2^(L-1), so channels [64, 128, 128] maps 28x28
// to 7x7. The decoder mirrors it with nearest-neighbour upsampling followed by a 3x3 conv.
//
// Plain (the reference stack of the issue, for side-by-side comparison with PyTorch):
//   encoder Conv 4x4/2 (C->32), ReLU, Conv 4x4/2 (32->64), ReLU, Conv 3x3 (64->latent)
//   decoder Conv 3x3 (latent->64), ReLU, ConvTranspose 4x4/2 (64->32), ReLU, ConvTranspose 4x4/2 (32->C)
// Both decoders end in a sigmoid (pixels in [0, 1]) unless asked not to.
#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/random.h"
#include "nn/module.h"
#include "nn/norm.h"
#include "nn/conv.h"

namespace tessera::nn {

class ResidualBlock : public UnaryModule {
 public:
  ResidualBlock(int64_t in_channels, int64_t out_channels, int64_t groups, Generator& gen);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<GroupNorm> norm1_, norm2_;
  std::shared_ptr<Conv2d> conv1_, conv2_, skip_;  // skip_ only when the widths differ
};

struct ResidualCoderOptions {
  int64_t image_channels = 1;
  int64_t latent_channels = 4;             // encoder output / decoder input
  std::vector<int64_t> channels{64, 128};  // width per level; levels - 1 halvings
  int64_t blocks = 1;                      // residual blocks per level
  int64_t groups = 32;                     // GroupNorm groups (capped by every width, which it must divide)
  bool sigmoid_output = true;
};

// Spatial factor of a residual coder: 2^(levels - 1).
int64_t residual_downsample(const ResidualCoderOptions& options);

std::shared_ptr<UnaryModule> make_residual_encoder(const ResidualCoderOptions& options, Generator& gen);
std::shared_ptr<UnaryModule> make_residual_decoder(const ResidualCoderOptions& options, Generator& gen);

// The plain stack (downsampling 4); hidden widths {32, 64} unless given.
std::shared_ptr<UnaryModule> make_plain_encoder(int64_t image_channels, int64_t latent_channels, Generator& gen,
                                                std::vector<int64_t> hidden = {32, 64});
std::shared_ptr<UnaryModule> make_plain_decoder(int64_t image_channels, int64_t latent_channels, Generator& gen,
                                                std::vector<int64_t> hidden = {32, 64}, bool sigmoid_output = true);

}  // namespace tessera::nn
