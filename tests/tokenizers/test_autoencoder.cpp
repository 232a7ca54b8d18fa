// Conv encoders/decoders and the three autoencoders: shapes for every downsampling factor and
// channel count, the plain stack's PyTorch names, tokenize -> decode equal to the evaluation
// forward, clear errors for bad tokens, and a short training run that must learn.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops/losses.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "autograd/ops/quantize.h"
#include "nn/autoencoder.h"
#include "nn/conv_coder.h"
#include "train/optim.h"

using namespace tessera;

namespace {

nn::ResidualCoderOptions small_residual(int64_t image_channels, int64_t latent, std::vector<int64_t> channels) {
  nn::ResidualCoderOptions o;
  o.image_channels = image_channels, o.latent_channels = latent, o.channels = std::move(channels), o.groups = 4;
  return o;
}

std::shared_ptr<nn::Autoencoder> plain_model(nn::Bottleneck b, int64_t latent, Generator& gen) {
  nn::AutoencoderOptions o;
  o.bottleneck = b, o.latent_channels = latent, o.downsample = 4;
  o.vq.codebook_size = 32;
  o.fsq_levels = std::vector<int64_t>(size_t(latent), 5);
  const int64_t enc_out = b == nn::Bottleneck::gaussian ? 2 * latent : latent;
  return std::make_shared<nn::Autoencoder>(o, nn::make_plain_encoder(1, enc_out, gen), nn::make_plain_decoder(1, latent, gen), gen);
}

// Soft blobs at random places: images with structure an autoencoder can learn quickly.
Tensor blob_images(int64_t n, int64_t size, Generator& gen) {
  const auto centres = uniform({n, 2}, 0.25 * double(size), 0.75 * double(size), gen).to_vector<float>();
  std::vector<float> pixels(size_t(n * size * size));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        const float dy = float(y) - centres[2 * i], dx = float(x) - centres[2 * i + 1];
        pixels[size_t((i * size + y) * size + x)] = std::exp(-(dx * dx + dy * dy) / 8.0f);
      }
  return Tensor::from_vector(pixels, {n, 1, size, size});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conv_coders)

BOOST_AUTO_TEST_CASE(residual_coders_for_every_factor_and_channel_count) {
  Generator gen(1);
  for (int64_t channels : {1, 3})
    for (const auto& widths : std::vector<std::vector<int64_t>>{{8, 16}, {8, 16, 16}, {8, 8, 16, 16}}) {
      const auto o = small_residual(channels, 5, widths);
      const int64_t f = nn::residual_downsample(o);
      BOOST_TEST(f == (int64_t(1) << (widths.size() - 1)));
      auto enc = nn::make_residual_encoder(o, gen);
      auto dec = nn::make_residual_decoder(o, gen);
      const Tensor x = rand({2, channels, 16, 24}, gen);
      const Tensor z = enc->forward(x);
      BOOST_TEST(z.shape() == (Shape{2, 5, 16 / f, 24 / f}));
      const Tensor y = dec->forward(z);
      BOOST_TEST(y.shape() == x.shape());
      for (float v : y.to_vector<float>()) BOOST_TEST((v >= 0 && v <= 1));
    }
  BOOST_CHECK_THROW(nn::make_residual_encoder(small_residual(1, 4, {8}), gen), Error);
  BOOST_CHECK_THROW(nn::make_residual_encoder(small_residual(1, 4, {6, 8}), gen), Error);  // 6 % 4 groups
}

BOOST_AUTO_TEST_CASE(residual_block_is_identity_plus_a_residual) {
  // Zeroing the block's last conv leaves exactly the skip path.
  Generator gen(2);
  nn::ResidualBlock same(8, 8, 4, gen), widen(8, 16, 4, gen);
  for (auto* block : {&same, &widen})
    for (auto& [name, p] : block->named_parameters())
      if (name.rfind("conv2.", 0) == 0) p.fill_(0);
  const Tensor x = normal({2, 8, 5, 5}, 0, 1, gen);
  BOOST_TEST(allclose(same.forward(x), x, 0, 0));
  BOOST_TEST(widen.forward(x).shape() == (Shape{2, 16, 5, 5}));
  BOOST_TEST(same.named_parameters().size() == 8u);   // 2 norms, 2 convs, each weight + bias
  BOOST_TEST(widen.named_parameters().size() == 10u);  // + the 1x1 skip
}

BOOST_AUTO_TEST_CASE(plain_stack_matches_the_reference_layout) {
  Generator gen(3);
  auto model = plain_model(nn::Bottleneck::vq, 64, gen);
  std::vector<std::string> names;
  for (auto& [name, t] : model->named_parameters()) names.push_back(name + shape_to_string(t.shape()));
  const std::vector<std::string> expected{
      "encoder.0.weight[32, 1, 4, 4]", "encoder.0.bias[32]",   "encoder.2.weight[64, 32, 4, 4]",
      "encoder.2.bias[64]",            "encoder.4.weight[64, 64, 3, 3]", "encoder.4.bias[64]",
      "decoder.0.weight[64, 64, 3, 3]", "decoder.0.bias[64]",  "decoder.2.weight[64, 32, 4, 4]",
      "decoder.2.bias[32]",            "decoder.4.weight[32, 1, 4, 4]", "decoder.4.bias[1]",
      "quantizer.codebook[32, 64]"};
  BOOST_TEST(names == expected, boost::test_tools::per_element());
  const auto out = model->forward(rand({3, 1, 28, 28}, gen), gen);
  BOOST_TEST(out.reconstruction.shape() == (Shape{3, 1, 28, 28}));
  BOOST_TEST(out.indices.shape() == (Shape{3, 7, 7}));
  BOOST_CHECK_THROW(model->forward(rand({3, 1, 30, 30}, gen), gen), Error);
  BOOST_CHECK_THROW(model->forward(rand({3, 3, 28, 28}, gen), gen), Error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(autoencoders)

BOOST_AUTO_TEST_CASE(tokenize_then_decode_equals_the_evaluation_forward) {
  for (auto b : {nn::Bottleneck::gaussian, nn::Bottleneck::vq, nn::Bottleneck::fsq}) {
    Generator gen(4);
    auto model = plain_model(b, 4, gen);
    const Tensor x = rand({5, 1, 28, 28}, gen);
    model->forward(x, gen);  // a training step initialises the VQ codebook from the data
    model->eval();
    NoGradGuard no_grad;
    const auto out = model->forward(x, gen);
    const Tensor tokens = model->tokenize(x);
    if (b == nn::Bottleneck::gaussian) {
      BOOST_TEST(tokens.shape() == (Shape{5, 7, 7, 4}));
      BOOST_TEST((tokens.dtype() == DType::f32));
    } else {
      BOOST_TEST(tokens.shape() == (Shape{5, 7, 7}));
      BOOST_TEST(allclose(tokens, out.indices, 0, 0));
    }
    const Tensor decoded = model->decode(tokens);
    BOOST_TEST(allclose(decoded, out.reconstruction, 0, 0), nn::bottleneck_name(b));
    // the evaluation forward is deterministic, and the VAE's differs from a training sample
    BOOST_TEST(allclose(model->forward(x, gen).reconstruction, out.reconstruction, 0, 0));
  }
}

BOOST_AUTO_TEST_CASE(bad_tokens_get_clear_errors) {
  Generator gen(5);
  auto vq = plain_model(nn::Bottleneck::vq, 4, gen);
  auto fsq = plain_model(nn::Bottleneck::fsq, 4, gen);
  auto vae = plain_model(nn::Bottleneck::gaussian, 4, gen);
  BOOST_CHECK_THROW(vq->decode(Tensor::full({1, 7, 7}, 32, DType::i64)), Error);   // outside 32 codes
  BOOST_CHECK_THROW(vq->decode(Tensor::full({1, 7, 7}, -1, DType::i32)), Error);
  BOOST_CHECK_THROW(fsq->decode(Tensor::full({1, 7, 7}, 625, DType::i64)), Error);  // 5^4 codes
  BOOST_CHECK_THROW(vq->decode(Tensor::zeros({1, 7, 7})), Error);                   // float codes
  BOOST_CHECK_THROW(vq->decode(Tensor::zeros({7, 7}, DType::i64)), Error);          // no batch dim
  BOOST_CHECK_THROW(vae->decode(Tensor::zeros({1, 7, 7, 3})), Error);               // 3 != 4 channels
  BOOST_CHECK_THROW(vae->decode(Tensor::zeros({1, 7, 7}, DType::i64)), Error);
  try {
    vq->decode(Tensor::full({1, 7, 7}, 40, DType::i64));
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("40") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(short_training_learns) {
  // 60 Adam steps on 64 blob images: for every bottleneck the reconstruction error must fall well
  // below both the start and the error of the best constant output (the mean image), which a
  // decoder that ignored its tokens could at most reach; the VQ model must use several codes.
  for (auto b : {nn::Bottleneck::gaussian, nn::Bottleneck::vq, nn::Bottleneck::fsq}) {
    Generator gen(6);
    nn::AutoencoderOptions o;
    o.bottleneck = b, o.latent_channels = 4, o.downsample = 2, o.kl_weight = 1e-4;
    o.vq.codebook_size = 16, o.vq.dead_code_steps = 10;
    o.fsq_levels = {5, 5, 5, 5};
    const auto ro = small_residual(1, b == nn::Bottleneck::gaussian ? 8 : 4, {8, 16});
    auto dec_o = ro;
    dec_o.latent_channels = 4;
    nn::Autoencoder model(o, nn::make_residual_encoder(ro, gen), nn::make_residual_decoder(dec_o, gen), gen);
    const Tensor x = blob_images(64, 12, gen);
    auto optimizer = train::make_adam(train::param_groups(model, 0, false, {}), {});
    optimizer->set_lr(3e-3);
    auto recon_error = [&] {
      NoGradGuard no_grad;
      model.eval();
      const double e = mse_loss(model.forward(x, gen).reconstruction, x).item();
      model.train();
      return e;
    };
    const double before = recon_error();
    const double mean_image_error = mse_loss(x, mean(x, {0}, true).expand(x.shape())).item();
    for (int step = 0; step < 60; ++step) {
      const Tensor batch = x.slice(0, (step % 4) * 16, (step % 4) * 16 + 16);
      const auto out = model.forward(batch, gen);
      const Tensor loss = mse_loss(out.reconstruction, batch) + out.bottleneck_loss;
      model.zero_grad();
      loss.backward();
      optimizer->step();
    }
    const double after = recon_error();
    BOOST_TEST_MESSAGE(nn::bottleneck_name(b) << ": reconstruction MSE " << before << " -> " << after
                                              << " (mean image " << mean_image_error << ")");
    BOOST_TEST(after < 0.1 * before, nn::bottleneck_name(b) << ": " << before << " -> " << after);
    BOOST_TEST(after < 0.5 * mean_image_error, nn::bottleneck_name(b) << ": " << after << " vs " << mean_image_error);
    if (b == nn::Bottleneck::vq) {
      model.eval();
      const auto counts = code_counts(model.tokenize(x), 16);
      BOOST_TEST(nn::codebook_usage(counts) > 0.25);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
