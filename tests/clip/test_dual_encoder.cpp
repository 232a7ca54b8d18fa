// The text tower and the dual encoder: parameter names, what each pooling lets the output depend
// on, and an end-to-end check that both losses teach a tiny CLIP/SigLIP to classify images
// zero-shot from prompts built with the byte tokenizer.
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <set>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "data/text_tokenizer.h"
#include "nn/contrastive_metrics.h"
#include "nn/dual_encoder.h"
#include "nn/patch_targets.h"
#include "tests/support/gradcheck_helpers.h"
#include "train/optim.h"

using namespace tessera;
using nn::TextTransformerConfig;
namespace tt = boost::test_tools;

namespace {

TextTransformerConfig small_text(TextTransformerConfig::Pooling pooling, int64_t context = 16) {
  TextTransformerConfig c;
  c.context = context;
  c.width = 16;
  c.depth = 2;
  c.heads = 2;
  c.embed_dim = 8;
  c.pooling = pooling;
  return c;
}

nn::DualEncoderConfig small_clip(nn::DualEncoderConfig::Loss loss) {
  nn::DualEncoderConfig c;
  c.image.image_size = 8;
  c.image.patch_size = 4;
  c.image.width = 16;
  c.image.depth = 1;
  c.image.heads = 2;
  c.text = small_text(TextTransformerConfig::Pooling::eos, 24);
  c.embed_dim = 16;
  c.loss = loss;
  return c;
}

Tensor embed(nn::TextTransformer& t, const data::ByteTokenizer& tok, const std::vector<std::string>& texts) {
  const auto b = tok.encode_batch(texts);
  return t.forward(b.ids, b.eos_index);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dual_encoder)

BOOST_AUTO_TEST_CASE(parameter_names_follow_open_clip) {
  Generator gen(1);
  nn::DualEncoder siglip(small_clip(nn::DualEncoderConfig::Loss::sigmoid), gen);
  std::set<std::string> names;
  for (const auto& [name, p] : siglip.named_parameters()) names.insert(name);
  for (const char* expected : {"visual.cls_token", "visual.pos_embed", "visual.blocks.0.attn.qkv.weight",
                               "visual_projection.weight", "text.token_embedding.weight", "text.positional_embedding",
                               "text.blocks.1.mlp.fc2.bias", "text.ln_final.weight", "text.text_projection.weight",
                               "logit_scale", "logit_bias"})
    BOOST_TEST(names.count(expected) == 1u, expected);
  BOOST_TEST(names.count("visual.head.weight") == 0u);
  BOOST_TEST(siglip.logit_scale.item() == std::log(10.0), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(siglip.logit_bias.item() == -10.0);
  nn::DualEncoder clip(small_clip(nn::DualEncoderConfig::Loss::info_nce), gen);
  BOOST_TEST(!clip.logit_bias.defined());
  BOOST_TEST(clip.logit_scale.item() == std::log(1 / 0.07), boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(eos_pooling_is_causal_and_ignores_padding) {
  Generator gen(2);
  nn::TextTransformer t(small_text(TextTransformerConfig::Pooling::eos), gen);
  const data::ByteTokenizer tok(16);
  auto batch = tok.encode_batch({"a photo of", "a photo of"});
  // Overwrite the padding of row 1 with arbitrary bytes: the causal EOS readout cannot see it.
  int64_t* ids = batch.ids.data<int64_t>();
  for (int64_t j = batch.eos_index.data<int64_t>()[1] + 1; j < 16; ++j) ids[16 + j] = 'z';
  const Tensor y = t.forward(batch.ids, batch.eos_index);
  BOOST_TEST(y.shape() == (Shape{2, 8}));
  BOOST_TEST(max_abs_diff(y.select(0, 0), y.select(0, 1)) < 1e-6);
  // Any change before EOS does change it.
  const Tensor other = embed(t, tok, {"a photo of", "a photo if"});
  BOOST_TEST(max_abs_diff(other.select(0, 0), other.select(0, 1)) > 1e-4);
}

BOOST_AUTO_TEST_CASE(mean_pooling_masks_padding) {
  Generator gen(3);
  const auto config = small_text(TextTransformerConfig::Pooling::mean, 24);
  nn::TextTransformer t(config, gen);
  // The same text with 16 or 24 positions: only padding differs, and padding is masked out.
  const Tensor short_ctx = embed(t, data::ByteTokenizer(16), {"sneaker", "a bag"});
  const Tensor long_ctx = embed(t, data::ByteTokenizer(24), {"sneaker", "a bag"});
  BOOST_TEST(max_abs_diff(short_ctx, long_ctx) < 1e-5);
  // Bidirectional: a token's change reaches the pooled vector whichever end it is at.
  const Tensor a = embed(t, data::ByteTokenizer(24), {"xsneaker", "ysneaker"});
  BOOST_TEST(max_abs_diff(a.select(0, 0), a.select(0, 1)) > 1e-4);
}

BOOST_AUTO_TEST_CASE(bad_input_names_the_problem) {
  Generator gen(4);
  nn::TextTransformer t(small_text(TextTransformerConfig::Pooling::eos), gen);
  const data::ByteTokenizer tok(20);
  const auto b = tok.encode_batch({"too long for context 16 anyway"});
  BOOST_CHECK_THROW(t.forward(b.ids, b.eos_index), Error);  // 20 > 16
  const auto ok = data::ByteTokenizer(16).encode_batch({"x"});
  BOOST_CHECK_THROW(t.forward(ok.ids, Tensor()), Error);
  BOOST_CHECK_THROW(t.forward(ok.ids, Tensor::from_vector(std::vector<int64_t>{16}, {1})), Error);
  auto bad = small_text(TextTransformerConfig::Pooling::eos);
  bad.heads = 3;
  BOOST_CHECK_THROW(nn::TextTransformer(bad, gen), Error);
}

// Four classes of 8x8 images (a texture each, plus noise), captioned from their class names;
// after a few dozen steps the model must pick the right class for new images from prompts alone,
// with either loss. (Textures rather than positions: an average-pooled ViT at initialisation
// barely sees where things are; short captions: long shared prefixes make every caption look
// alike at initialisation and the towers collapse for a hundred steps before they recover.)
BOOST_AUTO_TEST_CASE(both_losses_learn_zero_shot_classification) {
  const std::vector<std::string> names{"stripes", "bars", "checks", "gray"};
  const std::vector<std::string> templates{"{}", "a {}", "{}!"};
  auto format = [](const std::string& t, const std::string& name) {
    std::string s = t;
    s.replace(s.find("{}"), 2, name);
    return s;
  };
  auto make_images = [](const std::vector<int64_t>& labels, Generator& gen) {
    const int64_t n = int64_t(labels.size());
    Tensor x = randn({n, 1, 8, 8}, gen) * 0.3;
    float* p = x.data<float>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < 8; ++r)
        for (int64_t c = 0; c < 8; ++c) {
          const int64_t k = labels[size_t(i)];
          const float v = k == 0 ? float(r % 2) : k == 1 ? float(c % 2) : k == 2 ? float((r + c) % 2) : 0.5f;
          p[i * 64 + r * 8 + c] += 1.5f * v;
        }
    return x;
  };
  for (auto loss : {nn::DualEncoderConfig::Loss::info_nce, nn::DualEncoderConfig::Loss::sigmoid}) {
    Generator gen(5);
    auto config = small_clip(loss);
    config.image.pooling = nn::ViTConfig::Pooling::avg;
    if (loss == nn::DualEncoderConfig::Loss::sigmoid) config.init_logit_bias = 0;  // small batch (see docs/RESULTS.md)
    nn::DualEncoder model(config, gen);
    const data::ByteTokenizer tok(config.text.context);
    auto opt = train::make_adam(train::param_groups(model, 0.0, true, {}), {0.9, 0.999, 1e-8, true});
    opt->set_lr(1e-3);
    double first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
      std::vector<int64_t> labels;
      std::vector<std::string> captions;
      const Tensor r = randint(0, 4, {32}, gen);
      for (int64_t l : r.to_vector<int64_t>()) {
        labels.push_back(l);
        captions.push_back(format(templates[size_t(randint(0, 3, {1}, gen).item())], names[size_t(l)]));
      }
      const auto tokens = tok.encode_batch(captions);
      model.zero_grad();
      Tensor l = model.loss(model.encode_image(make_images(labels, gen)), model.encode_text(tokens.ids, tokens.eos_index));
      (step == 0 ? first : last) = l.item();
      l.backward();
      opt->step();
      model.after_step();
    }
    model.eval();
    NoGradGuard no_grad;
    std::vector<std::string> prompts;
    for (const auto& n : names)
      for (const auto& t : templates) prompts.push_back(format(t, n));
    const auto pt = tok.encode_batch(prompts);
    const Tensor classes = nn::prompt_ensemble(model.encode_text(pt.ids, pt.eos_index).reshape({4, 3, -1}));
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < 200; ++i) labels.push_back(i % 4);
    const double acc = nn::zero_shot_accuracy(model.encode_image(make_images(labels, gen)), classes,
                                              Tensor::from_vector(labels, {200}));
    BOOST_TEST_MESSAGE("loss " << int(loss) << ": " << first << " -> " << last << ", zero-shot accuracy " << acc);
    BOOST_TEST(last < first);
    BOOST_TEST(acc > 0.9, "zero-shot accuracy " << acc);
  }
}

// Patch targets, on an 8-pixel image cut 4x4 (patch centres at 1, 3, 5, 7 pixels).
BOOST_AUTO_TEST_CASE(patch_targets_label_each_patch_by_the_smallest_box_holding_its_centre) {
  const int64_t bg = 5;
  // Sample 0: a whole-image box of class 3 and, on top of it, a smaller class-1 box over the
  // centres 3 and 5 of both axes; a padding slot (-1) with a box that must not count.
  // Sample 1: a class-2 box [0, 3) x [0, 3) (centre 1 inside, centre 3 on its far edge: outside),
  // and two class-4 and class-0 boxes of equal area over one patch, the later one winning.
  const std::vector<float> boxes{0, 0, 8, 8,  2, 2, 6, 6,  0, 0, 8, 8,
                                 0, 0, 3, 3,  6, 6, 8, 8,  6, 6, 8, 8};
  const std::vector<int64_t> classes{3, 1, -1, 2, 4, 0};
  const Tensor t = nn::patch_class_targets(Tensor::from_vector(boxes, {2, 3, 4}), Tensor::from_vector(classes, {2, 3}),
                                           8, 4, bg);
  BOOST_TEST_REQUIRE(t.shape() == (Shape{2, 16}));
  const std::vector<int64_t> expected{3, 3, 3, 3,  3, 1, 1, 3,  3, 1, 1, 3,  3, 3, 3, 3,
                                      2, bg, bg, bg,  bg, bg, bg, bg,  bg, bg, bg, bg,  bg, bg, bg, 0};
  BOOST_TEST(t.to_vector<int64_t>() == expected, tt::per_element());
  // The same boxes listed the other way round give the same labels: the smaller box wins by area.
  const std::vector<float> swapped{2, 2, 6, 6,  0, 0, 8, 8};
  const Tensor u = nn::patch_class_targets(Tensor::from_vector(swapped, {1, 2, 4}),
                                           Tensor::from_vector(std::vector<int64_t>{1, 3}, {1, 2}), 8, 4, bg);
  BOOST_TEST(u.to_vector<int64_t>() == std::vector<int64_t>(expected.begin(), expected.begin() + 16), tt::per_element());

  auto message = [&](const Tensor& b, const Tensor& c, int64_t size, int64_t grid) {
    try {
      nn::patch_class_targets(b, c, size, grid, bg);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const Tensor one_box = Tensor::from_vector(std::vector<float>{0, 0, 4, 4}, {1, 1, 4});
  BOOST_TEST(message(one_box, Tensor::from_vector(std::vector<int64_t>{5}, {1, 1}), 8, 4).find("class 5") !=
             std::string::npos);
  BOOST_TEST(message(one_box, Tensor::from_vector(std::vector<int64_t>{1, 1}, {1, 2}), 8, 4).find("[1, 2]") !=
             std::string::npos);
  BOOST_TEST(message(one_box, Tensor::from_vector(std::vector<int64_t>{1}, {1, 1}), 8, 3).find("3x3") !=
             std::string::npos);
}

// Centre targets on the same 8-pixel image cut 4x4 (patches span [0, 2), [2, 4), [4, 6), [6, 8)).
BOOST_AUTO_TEST_CASE(centre_targets_label_the_patch_holding_each_box_centre) {
  const int64_t bg = 5;
  // Sample 0: a whole-image class-3 box (centre (4, 4): patch row 2, column 2) and a class-1 box
  // [1, 3) x [5, 8) (centre (2, 6.5): row 1, column 3); a padding slot that must not count.
  // Sample 1: a class-2 box [0, 8) x [0, 3) (centre (4, 1.5): row 2, column 0) and two boxes whose
  // centres share patch (3, 3): class 4 the larger, class 0 the smaller, listed second and winning.
  const std::vector<float> boxes{0, 0, 8, 8,  1, 5, 3, 8,  0, 0, 8, 8,
                                 0, 0, 8, 3,  5, 5, 8, 8,  6, 6, 8, 8};
  const std::vector<int64_t> classes{3, 1, -1, 2, 4, 0};
  const Tensor t = nn::patch_centre_targets(Tensor::from_vector(boxes, {2, 3, 4}), Tensor::from_vector(classes, {2, 3}),
                                            8, 4, bg);
  BOOST_TEST_REQUIRE(t.shape() == (Shape{2, 16}));
  std::vector<int64_t> expected(32, bg);
  expected[2 * 4 + 2] = 3, expected[1 * 4 + 3] = 1, expected[16 + 2 * 4 + 0] = 2, expected[16 + 3 * 4 + 3] = 0;
  BOOST_TEST(t.to_vector<int64_t>() == expected, tt::per_element());
  // The smaller box wins whichever comes first; every object has one label, so labels count objects.
  const std::vector<float> swapped{6, 6, 8, 8,  5, 5, 8, 8};
  const Tensor u = nn::patch_centre_targets(Tensor::from_vector(swapped, {1, 2, 4}),
                                            Tensor::from_vector(std::vector<int64_t>{0, 4}, {1, 2}), 8, 4, bg);
  BOOST_TEST(u.to_vector<int64_t>()[15] == 0);
  BOOST_TEST(std::count(expected.begin(), expected.begin() + 16, bg) == 14);
  BOOST_CHECK_THROW(nn::patch_centre_targets(Tensor::from_vector(std::vector<float>{0, 0, 4, 4}, {1, 1, 4}),
                                             Tensor::from_vector(std::vector<int64_t>{5}, {1, 1}), 8, 4, bg),
                    Error);
}

// The patch loss (the head's logits, flattened to one row per patch, into cross-entropy) has the
// gradient its finite differences say, and the head sits on the tower's patch tokens.
BOOST_AUTO_TEST_CASE(patch_loss_gradcheck_and_head_shape) {
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{0, 3, 1, 2, 3, 3}, {2, 3});
  test::expect_ok([&](const std::vector<Tensor>& in) { return nn::DualEncoder::patch_class_loss(in[0], targets); },
                  {test::leaf({2, 3, 4}, 11, -2, 2)});
  BOOST_CHECK_THROW(nn::DualEncoder::patch_class_loss(test::leaf({2, 3, 4}, 1), targets.reshape({6})), Error);

  Generator gen(3);
  auto config = small_clip(nn::DualEncoderConfig::Loss::sigmoid);
  config.patch_classes = 3;
  nn::DualEncoder model(config, gen);
  BOOST_TEST_REQUIRE(model.patch_head != nullptr);
  const auto state = model.state();
  BOOST_TEST(std::count_if(state.begin(), state.end(), [](const auto& p) { return p.first == "patch_head.weight"; }) == 1);
  const auto out = model.encode_image_and_patches(randn({2, 1, 8, 8}, gen));
  BOOST_TEST(out.patch_logits.shape() == (Shape{2, 4, 4}));  // 2x2 patches, 3 classes + background
  BOOST_TEST(out.embedding.shape() == (Shape{2, 16}));
  BOOST_TEST(!out.centre_logits.defined());
  config.patch_centre_weight = 2;  // the centre head: the same shape, its own weights
  nn::DualEncoder centred(config, gen);
  BOOST_TEST_REQUIRE(centred.patch_centre_head != nullptr);
  const auto both = centred.encode_image_and_patches(randn({2, 1, 8, 8}, gen));
  BOOST_TEST(both.centre_logits.shape() == (Shape{2, 4, 4}));
  BOOST_TEST(both.centre_logits.to_vector<float>() != both.patch_logits.to_vector<float>());
  config.patch_classes = 0;  // a centre head needs the classes
  BOOST_CHECK_THROW(nn::DualEncoder(config, gen), Error);
  config.patch_classes = -1, config.patch_centre_weight = 0;
  BOOST_CHECK_THROW(nn::DualEncoder(config, gen), Error);
}

BOOST_AUTO_TEST_SUITE_END()
