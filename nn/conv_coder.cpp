#include "nn/conv_coder.h"

#include <algorithm>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/activation.h"
#include "nn/resample.h"
#include "nn/sequential.h"

namespace tessera::nn {
namespace {

std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, Generator& gen) {
  Conv2dOptions o;
  o.stride = {stride, stride};
  o.padding = {pad, pad};
  return std::make_shared<Conv2d>(in, out, Size2{k, k}, o, true, gen);
}

std::shared_ptr<ConvTranspose2d> conv_t(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, Generator& gen) {
  ConvTranspose2dOptions o;
  o.stride = {stride, stride};
  o.padding = {pad, pad};
  return std::make_shared<ConvTranspose2d>(in, out, Size2{k, k}, o, true, gen);
}

void check_options(const ResidualCoderOptions& o) {
  if (o.channels.size() < 2 || o.channels.size() > 4)
    fail("residual coder: channels needs 2 to 4 levels (downsampling 2, 4 or 8), got {}", o.channels.size());
  if (o.image_channels < 1 || o.latent_channels < 1 || o.blocks < 0 || o.groups < 1)
    fail("residual coder: image_channels ({}), latent_channels ({}) and groups ({}) must be positive, blocks ({}) >= 0",
         o.image_channels, o.latent_channels, o.groups, o.blocks);
  for (int64_t c : o.channels)
    if (c < 1 || c % std::min(o.groups, c) != 0)
      fail("residual coder: width {} must be positive and divisible by the GroupNorm groups {}", c, std::min(o.groups, c));
}

// Pre-activation GroupNorm + SiLU: the "nonlinearity(norm(x))" of taming's blocks.
class NormAct : public UnaryModule {
 public:
  NormAct(int64_t channels, int64_t groups) {
    norm_ = register_module("norm", std::make_shared<GroupNorm>(std::min(groups, channels), channels, 1e-6));
  }
  Tensor forward(const Tensor& x) override { return silu(norm_->forward(x)); }

 private:
  std::shared_ptr<GroupNorm> norm_;
};

}  // namespace

ResidualBlock::ResidualBlock(int64_t in, int64_t out, int64_t groups, Generator& gen) {
  norm1_ = register_module("norm1", std::make_shared<GroupNorm>(std::min(groups, in), in, 1e-6));
  conv1_ = register_module("conv1", conv(in, out, 3, 1, 1, gen));
  norm2_ = register_module("norm2", std::make_shared<GroupNorm>(std::min(groups, out), out, 1e-6));
  conv2_ = register_module("conv2", conv(out, out, 3, 1, 1, gen));
  if (in != out) skip_ = register_module("skip", conv(in, out, 1, 1, 0, gen));
}

Tensor ResidualBlock::forward(const Tensor& x) {
  Tensor h = conv1_->forward(silu(norm1_->forward(x)));
  h = conv2_->forward(silu(norm2_->forward(h)));
  return (skip_ ? skip_->forward(x) : x) + h;
}

int64_t residual_downsample(const ResidualCoderOptions& options) {
  check_options(options);
  return int64_t(1) << (options.channels.size() - 1);
}

std::shared_ptr<UnaryModule> make_residual_encoder(const ResidualCoderOptions& o, Generator& gen) {
  check_options(o);
  auto net = std::make_shared<Sequential>();
  const auto& ch = o.channels;
  net->append(conv(o.image_channels, ch[0], 3, 1, 1, gen));
  int64_t width = ch[0];
  for (size_t level = 0; level < ch.size(); ++level) {
    for (int64_t b = 0; b < o.blocks; ++b) {
      net->append(std::make_shared<ResidualBlock>(width, ch[level], o.groups, gen));
      width = ch[level];
    }
    if (width != ch[level]) {  // blocks = 0: a 1x1 conv changes the width
      net->append(conv(width, ch[level], 1, 1, 0, gen));
      width = ch[level];
    }
    if (level + 1 < ch.size()) net->append(conv(width, width, 3, 2, 1, gen));  // halves an even size
  }
  net->append(std::make_shared<ResidualBlock>(width, width, o.groups, gen));
  net->append(std::make_shared<NormAct>(width, o.groups));
  net->append(conv(width, o.latent_channels, 3, 1, 1, gen));
  return net;
}

std::shared_ptr<UnaryModule> make_residual_decoder(const ResidualCoderOptions& o, Generator& gen) {
  check_options(o);
  auto net = std::make_shared<Sequential>();
  const auto& ch = o.channels;
  int64_t width = ch.back();
  net->append(conv(o.latent_channels, width, 3, 1, 1, gen));
  net->append(std::make_shared<ResidualBlock>(width, width, o.groups, gen));
  for (size_t i = ch.size(); i-- > 0;) {
    for (int64_t b = 0; b < o.blocks; ++b) {
      net->append(std::make_shared<ResidualBlock>(width, ch[i], o.groups, gen));
      width = ch[i];
    }
    if (width != ch[i]) {
      net->append(conv(width, ch[i], 1, 1, 0, gen));
      width = ch[i];
    }
    if (i > 0) {
      net->append(std::make_shared<Upsample>(2));
      net->append(conv(width, width, 3, 1, 1, gen));
    }
  }
  net->append(std::make_shared<NormAct>(width, o.groups));
  net->append(conv(width, o.image_channels, 3, 1, 1, gen));
  if (o.sigmoid_output) net->append(std::make_shared<Sigmoid>());
  return net;
}

std::shared_ptr<UnaryModule> make_plain_encoder(int64_t image_channels, int64_t latent_channels, Generator& gen,
                                                std::vector<int64_t> hidden) {
  if (hidden.size() != 2 || image_channels < 1 || latent_channels < 1)
    fail("plain encoder: needs 2 hidden widths and positive channels, got {} widths, {} image and {} latent channels",
         hidden.size(), image_channels, latent_channels);
  auto net = std::make_shared<Sequential>();
  net->append(conv(image_channels, hidden[0], 4, 2, 1, gen));
  net->append(std::make_shared<ReLU>());
  net->append(conv(hidden[0], hidden[1], 4, 2, 1, gen));
  net->append(std::make_shared<ReLU>());
  net->append(conv(hidden[1], latent_channels, 3, 1, 1, gen));
  return net;
}

std::shared_ptr<UnaryModule> make_plain_decoder(int64_t image_channels, int64_t latent_channels, Generator& gen,
                                                std::vector<int64_t> hidden, bool sigmoid_output) {
  if (hidden.size() != 2 || image_channels < 1 || latent_channels < 1)
    fail("plain decoder: needs 2 hidden widths and positive channels, got {} widths, {} image and {} latent channels",
         hidden.size(), image_channels, latent_channels);
  auto net = std::make_shared<Sequential>();
  net->append(conv(latent_channels, hidden[1], 3, 1, 1, gen));
  net->append(std::make_shared<ReLU>());
  net->append(conv_t(hidden[1], hidden[0], 4, 2, 1, gen));
  net->append(std::make_shared<ReLU>());
  net->append(conv_t(hidden[0], image_channels, 4, 2, 1, gen));
  if (sigmoid_output) net->append(std::make_shared<Sigmoid>());
  return net;
}

}  // namespace tessera::nn
