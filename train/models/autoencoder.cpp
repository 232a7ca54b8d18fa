// model.type: vae | vqvae | fsq — image tokenizers (nn/autoencoder.h) with the plain reference
// conv stack or residual (GroupNorm + SiLU) encoders and decoders (nn/conv_coder.h).
#include "nn/autoencoder.h"
#include "nn/conv_coder.h"
#include "train/models/model_registry.h"

namespace tessera::train {
namespace {

std::vector<Field> coder_fields() {
  return {string("encoder", "plain", "plain: the reference stack (4x downsampling); residual: GroupNorm+SiLU blocks",
                 {"plain", "residual"}),
          integer_list("hidden", "[32, 64]", "plain: the two hidden widths", 1),
          integer_list("channels", "[64, 128, 128]", "residual: width per level; L levels downsample by 2^(L-1)", 1),
          integer("blocks", 1, "residual: blocks per level"),
          integer("groups", 32, "residual: GroupNorm groups (capped by each width)", 1)};
}

std::shared_ptr<nn::Module> build(nn::AutoencoderOptions o, const Section& s, const DataShape& data, Generator& gen) {
  o.image_channels = data.channels;
  const int64_t encoder_out = o.bottleneck == nn::Bottleneck::gaussian ? 2 * o.latent_channels : o.latent_channels;
  std::shared_ptr<nn::UnaryModule> encoder, decoder;
  if (s.string("encoder") == "plain") {
    o.downsample = 4;
    encoder = nn::make_plain_encoder(data.channels, encoder_out, gen, s.integers("hidden"));
    decoder = nn::make_plain_decoder(data.channels, o.latent_channels, gen, s.integers("hidden"));
  } else {
    nn::ResidualCoderOptions r;
    r.image_channels = data.channels, r.channels = s.integers("channels"), r.blocks = s.integer("blocks");
    r.groups = s.integer("groups");
    r.latent_channels = encoder_out;
    o.downsample = nn::residual_downsample(r);
    encoder = nn::make_residual_encoder(r, gen);
    r.latent_channels = o.latent_channels;
    decoder = nn::make_residual_decoder(r, gen);
  }
  if (data.height % o.downsample != 0 || data.width % o.downsample != 0)
    fail("{}.encoder downsamples by {}, which does not divide the data set's {}x{} images", s.path(), o.downsample,
         data.height, data.width);
  return std::make_shared<nn::Autoencoder>(o, encoder, decoder, gen);
}

std::shared_ptr<nn::Module> build_vae(const Section& s, const DataShape& data, Generator& gen) {
  nn::AutoencoderOptions o;
  o.bottleneck = nn::Bottleneck::gaussian;
  o.latent_channels = s.integer("latent_channels");
  o.kl_weight = s.number("kl_weight");
  o.kl_reduction = s.string("kl_reduction") == "sum" ? nn::KlReduction::sum : nn::KlReduction::mean;
  return build(o, s, data, gen);
}

std::shared_ptr<nn::Module> build_vqvae(const Section& s, const DataShape& data, Generator& gen) {
  nn::AutoencoderOptions o;
  o.bottleneck = nn::Bottleneck::vq;
  o.latent_channels = s.integer("code_dim");
  o.vq.codebook_size = s.integer("codebook_size");
  o.vq.commitment = s.number("commitment");
  o.vq.ema = s.string("codebook_update") == "ema";
  o.vq.decay = s.number("decay");
  o.vq.epsilon = s.number("epsilon");
  o.vq.l2_normalize = s.boolean("l2_normalize");
  o.vq.kmeans_init = s.boolean("kmeans_init");
  o.vq.kmeans_iterations = s.integer("kmeans_iterations");
  o.vq.dead_code_steps = s.integer("dead_code_steps");
  return build(o, s, data, gen);
}

std::shared_ptr<nn::Module> build_fsq(const Section& s, const DataShape& data, Generator& gen) {
  nn::AutoencoderOptions o;
  o.bottleneck = nn::Bottleneck::fsq;
  o.fsq_levels = s.integers("levels");
  o.latent_channels = int64_t(o.fsq_levels.size());
  for (int64_t l : o.fsq_levels)
    if (l < 2) fail("{}.levels: every entry must be >= 2, got {}", s.path(), fmt::join(o.fsq_levels, ", "));
  return build(o, s, data, gen);
}

std::vector<Field> with_coder(std::vector<Field> own) {
  std::vector<Field> all = coder_fields();
  all.insert(all.end(), own.begin(), own.end());
  return all;
}

const Registration<ModelFactory> vae{
    models(),
    {"vae", "variational autoencoder: soft tokens, the posterior mean [h, w, c]", "reconstruction",
     with_coder({integer("latent_channels", 4, "c: channels of the latent grid", 1),
                 number("kl_weight", 1e-3, "weight of KL(q || N(0, I))", 0),
                 string("kl_reduction", "mean",
                        "mean: KL averaged over every latent value (the scale of the pixel MSE); "
                        "sum: summed per image, averaged over the batch (the ELBO's scale)",
                        {"mean", "sum"})}),
     build_vae}};

const Registration<ModelFactory> vqvae{
    models(),
    {"vqvae", "vector-quantized autoencoder: hard tokens, codebook indices [h, w]", "reconstruction",
     with_coder({integer("code_dim", 64, "D: dimension of a code", 1),
                 integer("codebook_size", 512, "K: number of codes", 1),
                 number("commitment", 0.25, "weight of the commitment loss |z - sg(e)|^2", 0),
                 string("codebook_update", "loss", "loss: codebook loss |sg(z) - e|^2; ema: moving averages", {"loss", "ema"}),
                 number("decay", 0.99, "ema: decay of the moving averages", 0, 1),
                 number("epsilon", 1e-5, "ema: Laplace smoothing of the cluster sizes", 0),
                 boolean("l2_normalize", false, "compare and emit unit-length codes"),
                 boolean("kmeans_init", true, "initialise the codebook by k-means++ on the first batch's encoder outputs"),
                 integer("kmeans_iterations", 10, "Lloyd steps after the k-means++ seeding"),
                 integer("dead_code_steps", 0, "restart a code unused for this many steps from an encoder output (0 = never)")}),
     build_vqvae}};

const Registration<ModelFactory> fsq{
    models(),
    {"fsq", "finite scalar quantization autoencoder: hard tokens, mixed-radix level indices [h, w]", "reconstruction",
     with_coder({integer_list("levels", "[8, 5, 5, 5]", "levels per latent channel (codebook = their product)", 2)}),
     build_fsq}};

}  // namespace
}  // namespace tessera::train
