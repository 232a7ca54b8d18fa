// The vision-language model (nn/vlm.h): its vocabulary, the prefix-LM mask as the whole model sees
// it, the loss on the suffix only, the frozen image tower, and decoding with a key/value cache
// against full recomputation (greedy, beams, reordered rows).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <memory>
#include <numeric>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/init.h"
#include "nn/vlm.h"
#include "nn/vlm_decoder.h"
#include "tests/support/compare_helpers.h"

using namespace tessera;
using test::max_abs_diff;

namespace {

using Vocab = nn::VlmVocabulary;

using Fusion = nn::VlmConfig::Fusion;

nn::VlmConfig tiny_config(Fusion fusion = Fusion::prefix, int64_t cross_attention_every = 1, int64_t content_grid = 1,
                          int64_t frames = 1) {
  nn::VlmConfig c;
  c.fusion = fusion;
  c.frames = frames;
  c.cross_attention_every = cross_attention_every;
  c.content_grid = content_grid;
  c.image.image_size = 16, c.image.patch_size = 4, c.image.channels = 1;
  c.image.width = 16, c.image.depth = 1, c.image.heads = 2, c.image.num_classes = 0;
  c.image.pooling = nn::ViTConfig::Pooling::avg;
  c.width = 24, c.depth = 2, c.heads = 3, c.text_context = 24, c.location_bins = 8;
  return c;
}

// A tiny model whose projector is not zero and whose cross-attention gates are open, so that the
// image reaches the text.
std::shared_ptr<nn::VisionLanguageModel> tiny_model(const nn::VlmConfig& c = tiny_config(), uint64_t seed = 7) {
  Generator gen(seed);
  auto m = std::make_shared<nn::VisionLanguageModel>(c, gen);
  if (m->projector) nn::init::normal_(m->projector->weight, 0, 0.3, gen);
  if (m->dual_token) {
    nn::init::normal_(m->dual_token->context_projector->weight, 0, 0.3, gen);
    nn::init::normal_(m->dual_token->content_projector->weight, 0, 0.3, gen);
  }
  if (m->cross_blocks)
    for (const auto& b : m->cross_blocks->items) {
      nn::init::uniform_(b->gate_attn, 0.4, 0.9, gen);
      nn::init::uniform_(b->gate_mlp, -0.9, -0.4, gen);
    }
  m->eval();
  return m;
}

// Every way the LM may read the image, the cross-attention layers after every block and every other;
// single images and clips of 3 frames.
std::vector<nn::VlmConfig> every_fusion() {
  std::vector<nn::VlmConfig> all;
  for (int64_t frames : {1, 3})
    for (const nn::VlmConfig& c :
         {tiny_config(Fusion::prefix, 1, 1, frames), tiny_config(Fusion::cross_attention, 1, 1, frames),
          tiny_config(Fusion::cross_attention, 2, 1, frames), tiny_config(Fusion::dual_token, 1, 1, frames),
          tiny_config(Fusion::dual_token, 1, 2, frames), tiny_config(Fusion::none, 1, 1, frames)})
      all.push_back(c);
  return all;
}

std::string fusion_name(const nn::VlmConfig& c) {
  const std::string frames = c.frames > 1 ? ", " + std::to_string(c.frames) + " frames" : "";
  switch (c.fusion) {
    case Fusion::prefix: return "prefix" + frames;
    case Fusion::cross_attention: return "cross_attention every " + std::to_string(c.cross_attention_every) + frames;
    case Fusion::dual_token: return "dual_token content_grid " + std::to_string(c.content_grid) + frames;
    case Fusion::none: return "none" + frames;
  }
  return "?";
}

// What the decoder takes for these images: the projected image tokens, or nothing for a blind model.
Tensor image_input(nn::VisionLanguageModel& m, const Tensor& x) { return m.reads_images() ? m.image_tokens(x) : Tensor(); }

// n samples of `frames` images each: [n, 1, 16, 16], or [n, frames, 1, 16, 16] for clips.
Tensor images(int64_t n, uint64_t seed = 3, int64_t frames = 1) {
  Generator gen(seed);
  return frames == 1 ? uniform({n, 1, 16, 16}, -1, 1, gen) : uniform({n, frames, 1, 16, 16}, -1, 1, gen);
}

Tensor ids_tensor(const std::vector<std::vector<int64_t>>& rows) {
  const size_t t = rows[0].size();
  std::vector<int64_t> flat;
  for (const auto& r : rows) {
    BOOST_REQUIRE_EQUAL(r.size(), t);
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return Tensor::from_vector(flat, {int64_t(rows.size()), int64_t(t)});
}

// Largest |difference| of the logits of row b at text position t.
double position_change(const Tensor& a, const Tensor& b, int64_t row, int64_t t) {
  return max_abs_diff(a.select(0, row).select(0, t), b.select(0, row).select(0, t));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vlm)

BOOST_AUTO_TEST_CASE(vocabulary_reads_location_tokens_and_bytes) {
  const Vocab v(64);
  BOOST_CHECK_EQUAL(v.size(), 324);
  const std::vector<int64_t> ids = v.encode("<loc0003><loc0063> bag");
  const std::vector<int64_t> expected{Vocab::kFirstLocation + 3, Vocab::kFirstLocation + 63, ' ', 'b', 'a', 'g'};
  BOOST_CHECK_EQUAL_COLLECTIONS(ids.begin(), ids.end(), expected.begin(), expected.end());
  BOOST_CHECK_EQUAL(v.decode(ids), "<loc0003><loc0063> bag");
  // A bin past the vocabulary, or a malformed token, stays bytes (and so decodes to itself).
  for (const char* text : {"<loc0064>", "<loc12>", "<locabcd>", "<loc0001", "caf\xc3\xa9"}) {
    const std::vector<int64_t> bytes = v.encode(text);
    BOOST_CHECK_EQUAL(bytes.size(), std::string(text).size());
    BOOST_CHECK_EQUAL(v.decode(bytes), text);
  }
  const std::vector<int64_t> seq = v.sequence("count bag", "2", true);
  BOOST_CHECK_EQUAL(seq.front(), Vocab::kBos);
  BOOST_CHECK_EQUAL(seq[10], Vocab::kSep);
  BOOST_CHECK_EQUAL(seq[11], '2');
  BOOST_CHECK_EQUAL(seq.back(), Vocab::kEos);
  BOOST_CHECK_EQUAL(v.decode(seq), "count bag2");  // specials are dropped
  BOOST_CHECK_EQUAL(v.sequence("caption", "", false).size(), 9u);
}

// Sequence [16 image tokens][BOS p p p SEP][s s s EOS]: the prefix is 16 + 5 positions.
BOOST_AUTO_TEST_CASE(suffix_tokens_are_causal_prefix_tokens_are_seen_by_all) {
  for (const nn::VlmConfig& config : every_fusion()) {
  BOOST_TEST_CONTEXT("fusion " << fusion_name(config)) {
  auto m = tiny_model(config);
  NoGradGuard no_grad;
  const Tensor x = images(2, 3, config.frames);
  const int64_t n = m->image_tokens_count();  // 16 patches (per frame) in the sequence with the prefix fusion
  const std::vector<int64_t> row{Vocab::kBos, 'a', 'b', 'c', Vocab::kSep, 'x', 'y', 'z', Vocab::kEos};
  const Tensor prefix = Tensor::from_vector(std::vector<int64_t>{n + 5, n + 5}, {2});
  const Tensor base = m->logits(x, ids_tensor({row, row}), prefix);

  // A suffix token (text position 6, 'y') changes nothing before it and everything from it on.
  auto suffix_changed = row;
  suffix_changed[6] = 'q';
  const Tensor s = m->logits(x, ids_tensor({row, suffix_changed}), prefix);
  for (int64_t t = 0; t < 9; ++t) {
    BOOST_CHECK_EQUAL(position_change(base, s, 0, t), 0.0);  // the other row is untouched
    if (t < 6) BOOST_CHECK_EQUAL(position_change(base, s, 1, t), 0.0);
    else BOOST_CHECK_GT(position_change(base, s, 1, t), 1e-6);
  }
  // A prefix token (text position 2, 'b') changes every text position, before it too.
  auto prefix_changed = row;
  prefix_changed[2] = 'q';
  const Tensor p = m->logits(x, ids_tensor({row, prefix_changed}), prefix);
  for (int64_t t = 0; t < 9; ++t) BOOST_CHECK_GT(position_change(base, p, 1, t), 1e-6);
  // So does the image; with a causal model (prefix = 0 image tokens seen both ways) position 0
  // of the text would still see the whole image, so check the mask itself: with prefix n + 1
  // the prefix token at position 2 no longer reaches position 1.
  const Tensor short_prefix = Tensor::from_vector(std::vector<int64_t>{n + 2, n + 2}, {2});
  const Tensor c0 = m->logits(x, ids_tensor({row, row}), short_prefix);
  const Tensor c1 = m->logits(x, ids_tensor({row, prefix_changed}), short_prefix);
  BOOST_CHECK_EQUAL(position_change(c0, c1, 1, 1), 0.0);
  BOOST_CHECK_GT(position_change(c0, c1, 1, 2), 1e-6);
  // Another image changes every text position; nothing, for the blind model.
  const Tensor other = m->logits(images(2, 99, config.frames), ids_tensor({row, row}), prefix);
  for (int64_t t = 0; t < 9; ++t) {
    if (m->reads_images()) BOOST_CHECK_GT(position_change(base, other, 0, t), 1e-6);
    else BOOST_CHECK_EQUAL(position_change(base, other, 0, t), 0.0);
  }
  }
  }
}

// LLaMA 3.2's promise: with both gates of every cross-attention layer at zero (as built), the model
// is exactly its language model, whatever the image; the text-only LM (fusion none) with the same
// weights computes the same logits to the bit. Opening one gate lets the image in.
BOOST_AUTO_TEST_CASE(closed_gates_give_the_text_only_lm_exactly) {
  NoGradGuard no_grad;
  Generator gen(31);
  nn::VisionLanguageModel cross(tiny_config(Fusion::cross_attention, 1), gen), lm(tiny_config(Fusion::none), gen);
  cross.eval(), lm.eval();
  BOOST_TEST(lm.named_parameters().size() < cross.named_parameters().size());
  const nn::NamedTensors weights = lm.named_parameters();
  cross.load_state({weights.begin(), weights.end()}, /*strict=*/false);
  const std::vector<int64_t> row{Vocab::kBos, 'a', 'b', Vocab::kSep, 'x', 'y', Vocab::kEos};
  const Tensor ids = ids_tensor({row, row}), prefix = Tensor::from_vector(std::vector<int64_t>{4, 4}, {2});
  const Tensor want = lm.logits(Tensor(), ids, prefix);
  BOOST_CHECK_EQUAL(max_abs_diff(cross.logits(images(2), ids, prefix), want), 0.0);
  BOOST_CHECK_EQUAL(max_abs_diff(cross.logits(images(2, 77), ids, prefix), want), 0.0);
  Tensor gate = cross.cross_blocks->items[1]->gate_attn;
  gate.fill_(0.5);
  BOOST_CHECK_GT(max_abs_diff(cross.logits(images(2), ids, prefix), want), 1e-6);
  // The blind model has no tower and says so when asked for image tokens.
  BOOST_CHECK(lm.visual == nullptr && lm.projector == nullptr);
  BOOST_CHECK_THROW(lm.image_tokens(images(1)), Error);
  // A cross-attention layer after every k-th block: k must be within the depth.
  BOOST_CHECK_THROW(tiny_config(Fusion::cross_attention, 3).validate(), Error);
  BOOST_CHECK_THROW(tiny_config(Fusion::cross_attention, 0).validate(), Error);
  BOOST_CHECK_NO_THROW(tiny_config(Fusion::cross_attention, 2).validate());
  BOOST_CHECK_THROW(tiny_config(Fusion::dual_token, 1, 3).validate(), Error);  // 3 does not divide the 4x4 grid
  BOOST_CHECK_NO_THROW(tiny_config(Fusion::dual_token, 1, 4).validate());
}

// LLaMA-VID's compression: 2 tokens per image (5 with content_grid 2) in the sequence, not 16.
BOOST_AUTO_TEST_CASE(dual_tokens_put_two_or_five_image_positions_in_the_sequence) {
  for (int64_t grid : {1, 2}) {
    auto m = tiny_model(tiny_config(Fusion::dual_token, 1, grid));
    BOOST_TEST(m->image_tokens_count() == 1 + grid * grid);
    BOOST_TEST(m->positional_embedding.size(0) == 1 + grid * grid + m->config().text_context);
    BOOST_TEST(m->projector == nullptr);
    BOOST_TEST(m->image_tokens(images(2)).shape() == (Shape{2, 16, 16}));  // the tower's own tokens
  }
}

// A clip of F frames: each frame through the tower alone, its tokens plus its frame embedding, in
// frame order. The frame embedding is what gives the cross-attention memory (a set) an order.
BOOST_AUTO_TEST_CASE(clips_read_each_frame_alone_and_in_order) {
  constexpr int64_t F = 3, N = 16;
  const Tensor clip = images(2, 5, F);
  for (const nn::VlmConfig& config : {tiny_config(Fusion::prefix, 1, 1, F), tiny_config(Fusion::cross_attention, 1, 1, F),
                                      tiny_config(Fusion::dual_token, 1, 2, F)}) {
  BOOST_TEST_CONTEXT("fusion " << fusion_name(config)) {
    auto m = tiny_model(config);
    NoGradGuard no_grad;
    BOOST_TEST(m->frame_embedding.shape() == (Shape{F, config.width}));
    const int64_t per_frame = config.fusion == Fusion::prefix ? N : config.fusion == Fusion::dual_token ? 5 : 0;
    BOOST_TEST(m->image_tokens_count() == F * per_frame);
    BOOST_TEST(m->positional_embedding.size(0) == F * per_frame + config.text_context);
    const Tensor tokens = m->image_tokens(clip);
    BOOST_TEST(tokens.shape() == (Shape{2, F * N, m->projector ? config.width : config.image.width}));
    // Frame f's tokens are the tower's on that image alone (projected, plus the frame's embedding).
    for (int64_t f = 0; f < F; ++f) {
      Tensor alone = m->visual->forward(clip.select(1, f)).tokens;
      if (m->projector) alone = m->projector->forward(alone) + m->frame_embedding.select(0, f);
      BOOST_CHECK_LT(max_abs_diff(tokens.slice(1, f * N, (f + 1) * N), alone), 1e-6);
    }
    // Swapping two frames changes what the text reads; with the frame embedding all zero, the
    // cross-attention memory cannot tell (it is a set), the other fusions still can (positions).
    const std::vector<int64_t> row{Vocab::kBos, 'a', 'b', Vocab::kSep, 'x', 'y', Vocab::kEos};
    const Tensor ids = ids_tensor({row, row});
    const Tensor prefix = Tensor::from_vector(std::vector<int64_t>{m->image_tokens_count() + 4, m->image_tokens_count() + 4}, {2});
    const Tensor swapped = index_select(clip, 1, Tensor::from_vector(std::vector<int64_t>{1, 0, 2}, {3}));
    BOOST_CHECK_GT(max_abs_diff(m->logits(clip, ids, prefix), m->logits(swapped, ids, prefix)), 1e-6);
    Tensor frame_embedding = m->frame_embedding;
    frame_embedding.fill_(0);
    const double without = max_abs_diff(m->logits(clip, ids, prefix), m->logits(swapped, ids, prefix));
    if (config.fusion == Fusion::cross_attention) BOOST_CHECK_LT(without, 1e-5);
    else BOOST_CHECK_GT(without, 1e-6);
    // Single images, or clips of another length, are refused naming the shape expected.
    BOOST_CHECK_EXCEPTION(m->logits(images(2), ids, prefix), Error, [](const Error& e) {
      return std::string(e.what()).find("[2, 3, 1, 16, 16] (3 frames per sample)") != std::string::npos;
    });
    BOOST_CHECK_THROW(m->logits(images(2, 3, 2), ids, prefix), Error);
  }
  }
  // And a single-image model refuses clips.
  auto single = tiny_model(tiny_config(Fusion::prefix));
  BOOST_CHECK(!single->frame_embedding.defined());
  BOOST_CHECK_THROW(single->image_tokens(clip), Error);
  BOOST_CHECK_THROW(tiny_config(Fusion::prefix, 1, 1, 0).validate(), Error);
  BOOST_CHECK_THROW(tiny_config(Fusion::prefix, 1, 1, 65).validate(), Error);
}

// The frame embedding learns: the loss of a clip model has a gradient for it, and it matches
// central differences (the rest of the path is ops with their own gradient checks).
BOOST_AUTO_TEST_CASE(frame_embedding_gradient_matches_finite_differences) {
  for (Fusion fusion : {Fusion::prefix, Fusion::cross_attention, Fusion::dual_token}) {
  BOOST_TEST_CONTEXT("fusion " << int(fusion)) {
    nn::VlmConfig c = tiny_config(fusion, 1, 1, 2);
    auto m = tiny_model(c);
    m->train();
    const Tensor x = images(2, 11, 2);
    const std::vector<int64_t> row{Vocab::kBos, 'a', Vocab::kSep, 'x', 'y', Vocab::kEos};
    const Tensor ids = ids_tensor({row, row});
    const Tensor targets = Tensor::from_vector(std::vector<int64_t>{-1, -1, 'x', 'y', Vocab::kEos, -1, -1, -1, 'x', 'y', Vocab::kEos, -1}, {2, 6});
    const int64_t n = m->image_tokens_count();
    const Tensor prefix = Tensor::from_vector(std::vector<int64_t>{n + 3, n + 3}, {2});
    m->zero_grad();
    m->loss(x, ids, prefix, targets).backward();
    const Tensor grad = m->frame_embedding.grad().clone();
    BOOST_REQUIRE(grad.defined());
    double worst = 0, largest = 0;
    Tensor e = m->frame_embedding;
    NoGradGuard no_grad;
    for (int64_t i : {0L, 5L, 24L + 3, 24L + 23}) {
      float* p = e.data<float>() + i;
      const float keep = *p, h = 1e-2f;
      *p = keep + h;
      const double up = m->loss(x, ids, prefix, targets).item();
      *p = keep - h;
      const double down = m->loss(x, ids, prefix, targets).item();
      *p = keep;
      const double numeric = (up - down) / (2 * double(h)), analytic = grad.data<float>()[i];
      worst = std::max(worst, std::abs(numeric - analytic));
      largest = std::max(largest, std::abs(analytic));
    }
    BOOST_TEST_MESSAGE("frame embedding gradient: worst |numeric - analytic| " << worst << ", largest " << largest);
    BOOST_CHECK_GT(largest, 1e-5);
    BOOST_CHECK_LT(worst, 2e-4 * std::max(1.0, largest));
  }
  }
}

BOOST_AUTO_TEST_CASE(loss_is_cross_entropy_on_the_scored_targets_only) {
  auto m = tiny_model();
  const Tensor x = images(2);
  const std::vector<int64_t> a{Vocab::kBos, 'a', Vocab::kSep, 'x', 'y', Vocab::kEos, Vocab::kPad};
  const std::vector<int64_t> b{Vocab::kBos, 'a', 'b', 'c', Vocab::kSep, 'z', Vocab::kEos};
  const Tensor ids = ids_tensor({a, b});
  const Tensor prefix = Tensor::from_vector(std::vector<int64_t>{16 + 3, 16 + 5}, {2});
  // Position t predicts t + 1; scored where t + 1 is in the suffix or its EOS.
  const std::vector<int64_t> targets{-1, -1, 'x', 'y', Vocab::kEos, -1, -1,  //
                                     -1, -1, -1, -1, 'z', Vocab::kEos, -1};
  const Tensor loss = m->loss(x, ids, prefix, Tensor::from_vector(targets, {2, 7}));
  // The same weights, averaged per sequence.
  nn::VlmConfig c = m->config();
  c.loss_per_sequence = true;
  Generator gen(7);
  nn::VisionLanguageModel per(c, gen);
  const nn::NamedTensors weights = m->named_parameters();
  per.load_state({weights.begin(), weights.end()});
  per.eval();
  const Tensor per_loss = per.loss(x, ids, prefix, Tensor::from_vector(targets, {2, 7}));
  per_loss.backward();
  NoGradGuard no_grad;
  const std::vector<float> lp = log_softmax(m->logits(x, ids, prefix), -1).to_vector<float>();
  const int64_t v = m->config().vocab_size();
  double expected = 0;
  int n = 0;
  for (size_t i = 0; i < targets.size(); ++i)
    if (targets[i] >= 0) expected -= lp[i * size_t(v) + size_t(targets[i])], ++n;
  BOOST_CHECK_CLOSE(loss.item(), expected / n, 1e-3);
  BOOST_CHECK_THROW(m->loss(x, ids, prefix, Tensor::full({2, 7}, -1, DType::i64)), Error);

  // Per sequence: row 0's three targets and row 1's two each average first.
  double row0 = 0, row1 = 0;
  for (size_t i = 0; i < 7; ++i)
    if (targets[i] >= 0) row0 -= lp[i * size_t(v) + size_t(targets[i])];
  for (size_t i = 7; i < 14; ++i)
    if (targets[i] >= 0) row1 -= lp[i * size_t(v) + size_t(targets[i])];
  BOOST_CHECK_CLOSE(per_loss.item(), (row0 / 3 + row1 / 2) / 2, 1e-3);
  BOOST_CHECK_GT(std::abs(per_loss.item() - loss.item()), 1e-4);  // the two averages differ here
  // Its gradient through log_softmax, gather and the weights, against finite differences of the loss.
  Tensor w = per.lm_head->weight;  // the row of token 'x', a target of the short-weighted row 0
  BOOST_REQUIRE(w.grad().defined());
  const size_t at_x = size_t('x' * c.width + 5);
  const double analytic = w.grad().to_vector<double>()[at_x];
  const float saved = w.data<float>()[at_x];
  auto loss_at = [&](float value) {
    w.data<float>()[at_x] = value;
    return per.loss(x, ids, prefix, Tensor::from_vector(targets, {2, 7})).item();
  };
  const double numeric = (loss_at(saved + 1e-2f) - loss_at(saved - 1e-2f)) / 2e-2;
  w.data<float>()[at_x] = saved;
  BOOST_TEST_MESSAGE("per-sequence loss gradient " << analytic << ", finite difference " << numeric);
  BOOST_CHECK_GT(std::abs(numeric), 1e-3);
  BOOST_CHECK_SMALL(analytic - numeric, 1e-3 + 0.02 * std::abs(numeric));
}

BOOST_AUTO_TEST_CASE(frozen_image_tower_gets_no_gradient_zero_projector_does) {
  for (bool freeze : {true, false}) {
    nn::VlmConfig c = tiny_config();
    c.freeze_image = freeze;
    Generator gen(5);
    nn::VisionLanguageModel m(c, gen);  // projector at zero, as built
    BOOST_CHECK_EQUAL(sum(abs(m.projector->weight)).item(), 0.0);
    const std::vector<int64_t> row{Vocab::kBos, 'a', Vocab::kSep, 'x', Vocab::kEos};
    const Tensor targets = Tensor::from_vector(std::vector<int64_t>{-1, -1, 'x', Vocab::kEos, -1}, {1, 5});
    m.loss(images(1), ids_tensor({row}), Tensor::from_vector(std::vector<int64_t>{16 + 3}, {1}), targets).backward();
    BOOST_CHECK_GT(sum(abs(m.projector->weight.grad())).item(), 0.0);  // the image can come in
    const Tensor g = dynamic_cast<nn::PatchEmbed&>(*m.visual->patch_embed).proj->weight.grad();
    // Through a zero projector the tower's gradient is zero even when it trains.
    BOOST_CHECK(freeze ? !g.defined() : sum(abs(g)).item() == 0.0);
  }
}

// Every forced continuation through the cache gives the logits of recomputing the whole sequence.
BOOST_AUTO_TEST_CASE(kv_cache_decoding_equals_full_recomputation) {
  for (const nn::VlmConfig& config : every_fusion()) {
  BOOST_TEST_CONTEXT("fusion " << fusion_name(config)) {
  auto m = tiny_model(config);
  NoGradGuard no_grad;
  const int64_t n = m->image_tokens_count();
  const Tensor x = images(3, 3, config.frames);
  const std::vector<std::vector<int64_t>> prompts{{Vocab::kBos, 'a', Vocab::kSep},
                                                  {Vocab::kBos, 'l', 'o', 'n', 'g', 'e', 'r', Vocab::kSep},
                                                  {Vocab::kBos, Vocab::kSep}};
  const std::vector<std::vector<int64_t>> continuation{{'x', 'y', Vocab::kFirstLocation + 2, 'z', ' '},
                                                       {'1', '2', '3', '4', '5'},
                                                       {Vocab::kFirstLocation, 'q', 'r', 's', 't'}};
  nn::VlmDecoder decoder(*m, image_input(*m, x), prompts, 0);
  double worst = 0;
  for (size_t step = 0; step <= continuation[0].size(); ++step) {
    for (size_t r = 0; r < prompts.size(); ++r) {
      std::vector<int64_t> seq = prompts[r];
      seq.insert(seq.end(), continuation[r].begin(), continuation[r].begin() + std::ptrdiff_t(step));
      const Tensor prefix = Tensor::from_vector(std::vector<int64_t>{n + int64_t(prompts[r].size())}, {1});
      const Tensor full = m->logits(x.slice(0, int64_t(r), int64_t(r) + 1), ids_tensor({seq}), prefix);
      const Tensor want = full.select(0, 0).select(0, int64_t(seq.size()) - 1);
      worst = std::max(worst, max_abs_diff(decoder.logits().select(0, int64_t(r)), want));
    }
    if (step == continuation[0].size()) break;
    std::vector<int64_t> next;
    for (const auto& c : continuation) next.push_back(c[step]);
    decoder.append(next);
  }
  BOOST_TEST_MESSAGE("kv cache vs recomputation, worst logit difference " << worst);
  BOOST_CHECK_LT(worst, 2e-5);

  // Rows reordered (and one repeated, one dropped) carry their caches with them.
  nn::VlmDecoder a(*m, image_input(*m, x), prompts, 0);
  a.append({'x', '1', 'q'});
  const Tensor before = a.logits();
  a.select_rows({2, 0, 0});
  BOOST_CHECK_EQUAL(max_abs_diff(a.logits().select(0, 0), before.select(0, 2)), 0.0);
  a.append({'r', 'y', 'w'});
  nn::VlmDecoder b(*m, image_input(*m, x.slice(0, 0, 1)), {prompts[0]}, 0);
  b.append({'x'});
  b.append({'w'});
  BOOST_CHECK_LT(max_abs_diff(a.logits().select(0, 2), b.logits().select(0, 0)), 2e-5);
  }
  }
}

BOOST_AUTO_TEST_CASE(greedy_and_beam_generations_are_what_the_model_scores) {
  auto m = tiny_model();
  NoGradGuard no_grad;
  const Tensor x = images(2);
  const std::vector<std::vector<int64_t>> prompts{{Vocab::kBos, 'a', Vocab::kSep}, {Vocab::kBos, Vocab::kSep}};
  // Recomputes log p of each generated token (and of EOS when finished) with the full model.
  auto rescore = [&](size_t r, const nn::Generation& g) {
    std::vector<int64_t> seq = prompts[r];
    seq.insert(seq.end(), g.ids.begin(), g.ids.end());
    const Tensor prefix = Tensor::from_vector(std::vector<int64_t>{16 + int64_t(prompts[r].size())}, {1});
    const std::vector<float> lp =
        log_softmax(m->logits(x.slice(0, int64_t(r), int64_t(r) + 1), ids_tensor({seq}), prefix), -1).to_vector<float>();
    const int64_t v = m->config().vocab_size();
    double total = 0;
    for (size_t k = 0; k < g.ids.size(); ++k) {
      const double l = lp[(prompts[r].size() - 1 + k) * size_t(v) + size_t(g.ids[k])];
      BOOST_CHECK_SMALL(l - g.log_probs[k], 1e-4);
      total += l;
    }
    if (g.finished) total += lp[(seq.size() - 1) * size_t(v) + size_t(Vocab::kEos)];
    return total;
  };
  nn::GenerationOptions greedy;
  greedy.max_new_tokens = 6;
  const auto g = nn::generate(*m, m->image_tokens(x), prompts, greedy);
  BOOST_REQUIRE_EQUAL(g.size(), 2u);
  for (size_t r = 0; r < 2; ++r) {
    BOOST_CHECK_LE(g[r].ids.size() + (g[r].finished ? 1 : 0), 6u);
    BOOST_CHECK_SMALL(rescore(r, g[r]) - g[r].score, 1e-3);
  }
  nn::GenerationOptions beams = greedy;
  beams.beam = 3;
  beams.length_penalty = 0;  // rank by total log p
  const auto b = nn::generate(*m, m->image_tokens(x), prompts, beams);
  for (size_t r = 0; r < 2; ++r) BOOST_CHECK_SMALL(rescore(r, b[r]) - b[r].score, 1e-3);

  // With as many beams as tokens the search is exhaustive: over texts of at most two tokens, the
  // best by total log p is max over t1 of [EOS: log p(EOS)] or [log p(t1) + max over t2 log p(t2 | t1)].
  const int64_t vocab = m->config().vocab_size();
  nn::GenerationOptions all = beams;
  all.beam = vocab, all.max_new_tokens = 2;
  const auto exact = nn::generate(*m, m->image_tokens(x.slice(0, 0, 1)), {prompts[0]}, all);
  std::vector<std::vector<int64_t>> rows(size_t(vocab), prompts[0]);
  std::vector<int64_t> image_rows(static_cast<size_t>(vocab), 0), first(static_cast<size_t>(vocab));
  std::iota(first.begin(), first.end(), 0);
  const Tensor tokens = index_select(m->image_tokens(x.slice(0, 0, 1)), 0, Tensor::from_vector(image_rows, {vocab}));
  nn::VlmDecoder d(*m, tokens, rows, 0);
  const std::vector<float> lp1 = log_softmax(d.logits(), 1).to_vector<float>();
  d.append(first);
  const std::vector<float> lp2 = log_softmax(d.logits(), 1).to_vector<float>();
  double best = lp1[size_t(Vocab::kEos)];
  for (int64_t t1 = 0; t1 < vocab; ++t1) {
    if (t1 == Vocab::kEos) continue;
    const float* next = lp2.data() + t1 * vocab;
    best = std::max(best, double(lp1[size_t(t1)]) + double(*std::max_element(next, next + vocab)));
  }
  BOOST_CHECK_SMALL(exact[0].score - best, 1e-4);
  beams.beam = 1;
  const auto one = nn::generate(*m, m->image_tokens(x), prompts, beams);
  for (size_t r = 0; r < 2; ++r) BOOST_CHECK(one[r].ids == g[r].ids);
}

BOOST_AUTO_TEST_SUITE_END()
