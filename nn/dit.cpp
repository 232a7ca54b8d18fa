#include "nn/dit.h"

#include <cmath>
#include <string>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/vit.h"  // sincos_position_embedding_2d

namespace tessera::nn {

void DiTConfig::validate() const {
  if (input_size < 1 || in_channels < 1) fail("dit: latent grid {}x{}x{} is empty", input_size, input_size, in_channels);
  if (patch_size < 1 || input_size % patch_size != 0)
    fail("dit: patch_size {} does not divide the latent grid side {}", patch_size, input_size);
  if (width < 1 || heads < 1 || width % heads != 0) fail("dit: width {} does not split into {} heads", width, heads);
  if (depth < 0) fail("dit: depth must be >= 0, got {}", depth);
  if (!(mlp_ratio > 0)) fail("dit: mlp_ratio must be > 0, got {}", mlp_ratio);
  if (num_classes < 1) fail("dit: num_classes must be >= 1, got {}", num_classes);
  if (!learned_pos_embed && width % 4 != 0) fail("dit: sin-cos positions need a width that is a multiple of 4, got {}", width);
  if (frequency_dim < 2 || frequency_dim % 2 != 0) fail("dit: frequency_dim must be even and >= 2, got {}", frequency_dim);
}

Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
  if (x.dim() != 3 || shift.dim() != 2 || scale.dim() != 2 || shift.size(0) != x.size(0) || scale.size(0) != x.size(0) ||
      shift.size(1) != x.size(2) || scale.size(1) != x.size(2))
    fail("modulate: x {} needs shift and scale [{}, {}], got {} and {}", x.shape_string(), x.dim() == 3 ? x.size(0) : 0,
         x.dim() == 3 ? x.size(2) : 0, shift.shape_string(), scale.shape_string());
  return x * (scale.unsqueeze(1) + 1.0) + shift.unsqueeze(1);
}

Tensor timestep_features(const Tensor& t, int64_t dim) { return sinusoidal_features(t, dim, 10000); }

namespace {
// DiT's basic initialisation of every Linear: xavier-uniform weights, zero biases.
void xavier_uniform_(Tensor& w, Generator& gen) {
  const auto [fan_in, fan_out] = init::fans(w);
  const double bound = std::sqrt(6.0 / double(fan_in + fan_out));
  init::uniform_(w, -bound, bound, gen);
}
void init_linear(Linear& l, Generator& gen) {
  xavier_uniform_(l.weight, gen);
  if (l.bias.defined()) init::zeros_(l.bias);
}
void zero_linear(Linear& l) {
  init::zeros_(l.weight);
  if (l.bias.defined()) init::zeros_(l.bias);
}

// A child whose own children take the names given — "0", "2" — as the layers of a PyTorch
// nn.Sequential that also holds parameterless ones (SiLU) between them.
class NamedChildren : public Module {
 public:
  template <class M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) { return register_module(name, m); }
};
}  // namespace

TimestepEmbedder::TimestepEmbedder(int64_t width, int64_t frequency_dim_, Generator& gen) : frequency_dim(frequency_dim_) {
  auto mlp = register_module("mlp", std::make_shared<NamedChildren>());
  fc1 = mlp->add("0", std::make_shared<Linear>(frequency_dim, width, true, gen));
  fc2 = mlp->add("2", std::make_shared<Linear>(width, width, true, gen));
}

Tensor TimestepEmbedder::forward(const Tensor& t) {
  return fc2->forward(silu(fc1->forward(timestep_features(t, frequency_dim))));
}

LabelEmbedder::LabelEmbedder(int64_t num_classes_, int64_t width, Generator& gen) : num_classes(num_classes_) {
  embedding_table = register_module("embedding_table", std::make_shared<Embedding>(num_classes + 1, width, gen));
  init::normal_(embedding_table->weight, 0, 0.02, gen);
}

Tensor LabelEmbedder::forward(const Tensor& labels) {
  // embedding() names a label outside the table in its error.
  return embedding_table->forward(labels);
}

AdaLNModulation::AdaLNModulation(int64_t width, int64_t chunks_, Generator& gen) : chunks(chunks_) {
  // "1": the Linear after the SiLU in DiT's nn.Sequential(SiLU, Linear).
  linear = register_module("1", std::make_shared<Linear>(width, chunks * width, true, gen));
}

std::vector<Tensor> AdaLNModulation::forward(const Tensor& c) {
  const Tensor all = linear->forward(silu(c));
  const int64_t w = all.size(1) / chunks;
  std::vector<Tensor> out;
  for (int64_t k = 0; k < chunks; ++k) out.push_back(all.slice(1, k * w, (k + 1) * w));
  return out;
}

DiTBlock::DiTBlock(int64_t width, int64_t heads, double mlp_ratio, Generator& gen) {
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(width, 1e-6, false));
  attn = register_module("attn", std::make_shared<MultiHeadSelfAttention>(width, heads, MultiHeadSelfAttention::Options{}, gen));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(width, 1e-6, false));
  const auto hidden = int64_t(double(width) * mlp_ratio);  // truncated, as DiT's int(hidden_size * mlp_ratio)
  mlp = register_module("mlp", std::make_shared<Mlp>(width, hidden, width, 0.0, gen));
  adaLN_modulation = register_module("adaLN_modulation", std::make_shared<AdaLNModulation>(width, 6, gen));
}

Tensor DiTBlock::forward(const Tensor& x, const Tensor& c) {
  const std::vector<Tensor> m = adaLN_modulation->forward(c);  // shift, scale, gate: attention; then MLP
  // modulate(norm(x), shift, scale) and x + branch * gate, each as one fused op (the affine-free
  // norms lend only their eps): the same values as the composition, in a third of the passes.
  const Tensor h = gated_add(x, attn->forward(modulated_layer_norm(x, m[0], m[1], norm1->eps)), m[2]);
  return gated_add(h, mlp->forward(modulated_layer_norm(h, m[3], m[4], norm2->eps)), m[5]);
}

DiTFinalLayer::DiTFinalLayer(int64_t width, int64_t out_features, Generator& gen) {
  norm_final = register_module("norm_final", std::make_shared<LayerNorm>(width, 1e-6, false));
  linear = register_module("linear", std::make_shared<Linear>(width, out_features, true, gen));
  adaLN_modulation = register_module("adaLN_modulation", std::make_shared<AdaLNModulation>(width, 2, gen));
}

Tensor DiTFinalLayer::forward(const Tensor& x, const Tensor& c) {
  const std::vector<Tensor> m = adaLN_modulation->forward(c);  // shift, scale
  return linear->forward(modulated_layer_norm(x, m[0], m[1], norm_final->eps));
}

DiT::DiT(const DiTConfig& config, Generator& gen) : config_(config) {
  config.validate();
  const int64_t W = config.width, p = config.patch_size, C = config.in_channels;
  x_embedder = register_module("x_embedder", std::make_shared<PatchEmbed>(config.input_size, p, C, W, gen));
  const int64_t tokens = x_embedder->num_patches();
  if (config.learned_pos_embed) {
    Tensor t = Tensor::empty({1, tokens, W});
    init::normal_(t, 0, 0.02, gen);
    pos_embed = register_parameter("pos_embed", t);
  } else {
    pos_embed = register_buffer("pos_embed", sincos_position_embedding_2d(x_embedder->grid, W).reshape({1, tokens, W}));
  }
  t_embedder = register_module("t_embedder", std::make_shared<TimestepEmbedder>(W, config.frequency_dim, gen));
  y_embedder = register_module("y_embedder", std::make_shared<LabelEmbedder>(config.num_classes, W, gen));
  blocks = register_module("blocks", std::make_shared<DiTBlockList>());
  for (int64_t i = 0; i < config.depth; ++i) blocks->append(std::make_shared<DiTBlock>(W, config.heads, config.mlp_ratio, gen));
  final_layer = register_module("final_layer", std::make_shared<DiTFinalLayer>(W, p * p * C, gen));

  // DiT's initialisation: xavier everywhere, then the embedders' own, then adaLN-Zero — every
  // modulation and the output layer start at zero, so each block starts as the identity and the
  // untrained model predicts 0.
  for (auto& block : blocks->items) {
    init_linear(*block->attn->qkv, gen);
    init_linear(*block->attn->proj, gen);
    init_linear(*block->mlp->fc1, gen);
    init_linear(*block->mlp->fc2, gen);
    zero_linear(*block->adaLN_modulation->linear);
  }
  const double bound = std::sqrt(6.0 / double(C * p * p + W));  // xavier on the weight seen as [W, C*p*p]
  init::uniform_(x_embedder->proj->weight, -bound, bound, gen);
  init::zeros_(x_embedder->proj->bias);
  init::normal_(t_embedder->fc1->weight, 0, 0.02, gen);
  init::zeros_(t_embedder->fc1->bias);
  init::normal_(t_embedder->fc2->weight, 0, 0.02, gen);
  init::zeros_(t_embedder->fc2->bias);
  zero_linear(*final_layer->adaLN_modulation->linear);
  zero_linear(*final_layer->linear);
}

Tensor DiT::forward(const Tensor& x, const Tensor& t, const Tensor& y) {
  const DiTConfig& c = config_;
  const int64_t n = x.defined() && x.dim() == 4 ? x.size(0) : -1;
  if (n < 0 || x.size(1) != c.in_channels || x.size(2) != c.input_size || x.size(3) != c.input_size)
    fail("DiT: latents must be [N, {}, {}, {}], got {}", c.in_channels, c.input_size, c.input_size,
         x.defined() ? x.shape_string() : "undefined");
  if (!t.defined() || t.dim() != 1 || t.size(0) != n || !is_floating(t.dtype()))
    fail("DiT: timesteps must be real [{}], got {}", n, t.defined() ? t.shape_string() : "undefined");
  if (!y.defined() || y.dim() != 1 || y.size(0) != n || is_floating(y.dtype()))
    fail("DiT: labels must be integer [{}], got {}", n, y.defined() ? y.shape_string() : "undefined");
  const Tensor cond = t_embedder->forward(t) + y_embedder->forward(y);
  Tensor h = x_embedder->forward(x) + pos_embed;
  for (auto& block : blocks->items) h = block->forward(h, cond);
  h = final_layer->forward(h, cond);  // [N, T, p*p*C]
  // [N, g, g, p, p, C] -> [N, C, g, p, g, p] -> [N, C, H, W]
  const int64_t g = x_embedder->grid, p = c.patch_size;
  return h.reshape({n, g, g, p, p, c.in_channels}).permute({0, 5, 1, 3, 2, 4}).reshape({n, c.in_channels, g * p, g * p});
}

}  // namespace tessera::nn
