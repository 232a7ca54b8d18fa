#include "nn/autoencoder.h"

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/gaussian.h"

namespace tessera::nn {

const char* bottleneck_name(Bottleneck b) {
  switch (b) {
    case Bottleneck::gaussian: return "gaussian";
    case Bottleneck::vq: return "vq";
    case Bottleneck::fsq: return "fsq";
  }
  return "?";
}

Autoencoder::Autoencoder(const AutoencoderOptions& options, std::shared_ptr<UnaryModule> encoder,
                         std::shared_ptr<UnaryModule> decoder, Generator& gen)
    : options_(options) {
  auto& o = options_;
  if (o.image_channels < 1 || o.downsample < 1 || o.latent_channels < 1)
    fail("Autoencoder: image_channels ({}), downsample ({}) and latent_channels ({}) must be positive", o.image_channels,
         o.downsample, o.latent_channels);
  if (o.kl_weight < 0) fail("Autoencoder: kl_weight must be >= 0, got {}", o.kl_weight);
  encoder_ = register_module("encoder", std::move(encoder));
  decoder_ = register_module("decoder", std::move(decoder));
  if (o.bottleneck == Bottleneck::vq) {
    o.vq.dim = o.latent_channels;
    vq_ = register_module("quantizer", std::make_shared<VectorQuantizer>(o.vq, gen));
  } else if (o.bottleneck == Bottleneck::fsq) {
    if (int64_t(o.fsq_levels.size()) != o.latent_channels)
      fail("Autoencoder: FSQ levels {} need latent_channels = {}, got {}", fmt::join(o.fsq_levels, ", "),
           o.fsq_levels.size(), o.latent_channels);
    fsq_ = register_module("quantizer", std::make_shared<FiniteScalarQuantizer>(o.fsq_levels));
  }
}

int64_t Autoencoder::codebook_size() const {
  if (vq_) return vq_->codebook_size();
  if (fsq_) return fsq_->codebook_size();
  return 0;
}

Reconstruction Autoencoder::reconstruct(const Tensor& images) {
  AutoencoderOutput out = forward(images);
  return {out.reconstruction, out.bottleneck_loss, out.indices};
}

TokenGrid Autoencoder::token_grid(int64_t image_height, int64_t image_width) const {
  const int64_t f = options_.downsample;
  return {image_height / f, image_width / f, f, token_channels(), codebook_size(), bottleneck_name(options_.bottleneck)};
}

void Autoencoder::check_images(const Tensor& images) const {
  const int64_t f = options_.downsample;
  if (images.dim() != 4 || images.size(1) != options_.image_channels || images.dtype() != DType::f32 ||
      images.size(2) % f != 0 || images.size(3) % f != 0 || images.size(2) == 0 || images.size(3) == 0)
    fail("Autoencoder: images must be f32 [N, {}, H, W] with H and W positive multiples of {}, got {} {}",
         options_.image_channels, f, dtype_name(images.dtype()), images.shape_string());
}

Tensor Autoencoder::encode(const Tensor& images) {
  check_images(images);
  Tensor h = encoder_->forward(images);
  const int64_t expected = options_.bottleneck == Bottleneck::gaussian ? 2 * options_.latent_channels : options_.latent_channels;
  const Shape want{images.size(0), expected, images.size(2) / options_.downsample, images.size(3) / options_.downsample};
  if (h.shape() != want)
    fail("Autoencoder: the encoder made {} from images {}, but the {} bottleneck expects {}", h.shape_string(),
         images.shape_string(), bottleneck_name(options_.bottleneck), shape_to_string(want));
  return h;
}

AutoencoderOutput Autoencoder::forward(const Tensor& images, Generator& gen) {
  const Tensor h = encode(images);
  AutoencoderOutput out;
  Tensor latent;
  switch (options_.bottleneck) {
    case Bottleneck::gaussian: {
      const DiagonalGaussian posterior = DiagonalGaussian::from_moments(h);
      latent = is_training() ? posterior.sample(gen) : posterior.mean;
      out.kl = posterior.kl(options_.kl_reduction);
      out.bottleneck_loss = out.kl * options_.kl_weight;
      break;
    }
    case Bottleneck::vq: {
      // Codes are vectors along channels: [N, D, h, w] -> [N, h, w, D] and back.
      const Quantized q = vq_->forward(permute(h, {0, 2, 3, 1}), gen);
      latent = permute(q.quantized, {0, 3, 1, 2});
      out.bottleneck_loss = q.loss;
      out.indices = q.indices;
      break;
    }
    case Bottleneck::fsq: {
      const Tensor codes = fsq_->forward(permute(h, {0, 2, 3, 1}));
      out.indices = fsq_->codes_to_indices(codes.detach());
      latent = permute(codes, {0, 3, 1, 2});
      out.bottleneck_loss = Tensor::scalar(0);
      break;
    }
  }
  out.reconstruction = decoder_->forward(latent);
  return out;
}

Tensor Autoencoder::tokenize(const Tensor& images) {
  NoGradGuard no_grad;
  const Tensor h = encode(images);
  const Tensor channels_last = permute(h, {0, 2, 3, 1});
  switch (options_.bottleneck) {
    case Bottleneck::gaussian: return DiagonalGaussian::from_moments(h).mean.permute({0, 2, 3, 1}).contiguous();
    case Bottleneck::vq: return vq_->codes_to_indices(channels_last);
    case Bottleneck::fsq: return fsq_->codes_to_indices(fsq_->forward(channels_last));
  }
  return Tensor();
}

Tensor Autoencoder::decode(const Tensor& tokens) {
  NoGradGuard no_grad;
  if (!tokens.defined()) fail("Autoencoder.decode: no tokens");
  Tensor latent;
  if (options_.bottleneck == Bottleneck::gaussian) {
    if (tokens.dim() != 4 || tokens.size(3) != options_.latent_channels || !is_floating(tokens.dtype()))
      fail("decode: a VAE takes float latents [N, h, w, {}], got {} {}", options_.latent_channels,
           dtype_name(tokens.dtype()), tokens.shape_string());
    latent = tokens.to(DType::f32).permute({0, 3, 1, 2});
  } else {
    if (tokens.dim() != 3 || (tokens.dtype() != DType::i32 && tokens.dtype() != DType::i64))
      fail("decode: a {} model takes integer codes [N, h, w], got {} {}", bottleneck_name(options_.bottleneck),
           dtype_name(tokens.dtype()), tokens.shape_string());
    const Tensor codes = vq_ ? vq_->indices_to_codes(tokens) : fsq_->indices_to_codes(tokens);
    latent = codes.permute({0, 3, 1, 2});
  }
  return decoder_->forward(latent);
}

}  // namespace tessera::nn
