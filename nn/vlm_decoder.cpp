#include "nn/vlm_decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {

VlmDecoder::VlmDecoder(VisionLanguageModel& model, const Tensor& image_tokens, const std::vector<std::vector<int64_t>>& prompts,
                       int64_t max_new_tokens)
    : model_(model) {
  NoGradGuard no_grad;
  const VlmConfig& c = model.config();
  const auto rows = int64_t(prompts.size());
  if (rows == 0) fail("VLM decoding: no prompts");
  const int64_t n = model.image_tokens_count(), heads = c.heads, head_dim = c.width / c.heads;
  if (model.reads_images()) {
    const int64_t m = model.memory_tokens_count();
    const int64_t width = model.dual_token ? c.image.width : c.width;  // dual tokens read the tower's own
    if (!image_tokens.defined() || image_tokens.shape() != Shape{rows, m, width})
      fail("VLM decoding: {} prompts need image tokens [{}, {}, {}], got {}", rows, rows, m, width,
           image_tokens.defined() ? image_tokens.shape_string() : "undefined");
  }
  int64_t longest = 0, shortest = c.text_context;
  for (const auto& p : prompts) {
    if (p.empty() || int64_t(p.size()) >= c.text_context)
      fail("VLM decoding: a prompt of {} tokens; the text context {} must hold it and at least one more", p.size(),
           c.text_context);
    longest = std::max(longest, int64_t(p.size())), shortest = std::min(shortest, int64_t(p.size()));
  }
  int64_t most_new = c.text_context - shortest;
  if (max_new_tokens > 0) most_new = std::min(most_new, max_new_tokens);
  capacity_ = n + longest + most_new;
  last_position_ = n + c.text_context;

  // The prompts, padded on the right; each row's prefix (image + prompt) attends both ways.
  std::vector<int64_t> ids(size_t(rows * longest), VlmVocabulary::kPad), prefix(static_cast<size_t>(rows));
  padding_ = Tensor::zeros({rows, capacity_}, DType::u8);
  uint8_t* pad = padding_.data<uint8_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& p = prompts[size_t(r)];
    std::copy(p.begin(), p.end(), ids.begin() + r * longest);
    prefix[size_t(r)] = n + int64_t(p.size());
    next_position_.push_back(n + int64_t(p.size()));
    for (int64_t col = n + int64_t(p.size()); col < n + longest; ++col) pad[r * capacity_ + col] = 1;
  }
  const int64_t t = n + longest;
  const Tensor text = model.token_embedding->forward(Tensor::from_vector(ids, {rows, longest}));
  std::vector<int64_t> prompt_lengths;
  for (const auto& p : prompts) prompt_lengths.push_back(int64_t(p.size()));
  const Tensor in_sequence =
      n > 0 ? model.sequence_image_tokens(image_tokens, text, prompt_lengths) : Tensor();
  Tensor x = (n > 0 ? concat({in_sequence, text}, 1) : text) + model.positional_embedding.slice(0, 0, t);
  AttentionOptions o;
  o.causal = true;
  o.prefix_lengths = Tensor::from_vector(prefix, {rows});
  // Block::forward, spelt out to keep each layer's keys and values.
  for (const auto& block : model.blocks->items) {
    const Tensor qkv = fused_linear(block->norm1->forward(x), block->attn->qkv->weight, block->attn->qkv->bias);
    x = x + fused_linear(self_attention_qkv(qkv, heads, o), block->attn->proj->weight, block->attn->proj->bias);
    x = x + block->mlp->forward(block->norm2->forward(x));
    if (const GatedCrossAttentionBlock* cross = model.cross_block_after(cache_.size())) {
      cross_cache_.push_back(cross->attn->keys_values(image_tokens));
      x = cross->forward(x, cross_cache_.back());
    }
    const Tensor split = qkv.reshape({rows, t, 3, heads, head_dim});
    LayerCache layer{Tensor::zeros({rows, heads, capacity_, head_dim}), Tensor::zeros({rows, heads, capacity_, head_dim})};
    layer.k.slice(2, 0, t).copy_(split.select(2, 1).permute({0, 2, 1, 3}));
    layer.v.slice(2, 0, t).copy_(split.select(2, 2).permute({0, 2, 1, 3}));
    cache_.push_back(std::move(layer));
  }
  columns_ = t;
  std::vector<int64_t> last(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) last[size_t(r)] = r * t + next_position_[size_t(r)] - 1;
  const Tensor states = index_select(x.reshape({rows * t, c.width}), 0, Tensor::from_vector(last, {rows}));
  logits_ = model.lm_head->forward(model.ln_final->forward(states));
}

int64_t VlmDecoder::room(int64_t row) const { return last_position_ - next_position_.at(size_t(row)); }

void VlmDecoder::append(const std::vector<int64_t>& ids) {
  NoGradGuard no_grad;
  const VlmConfig& c = model_.config();
  const int64_t rows = this->rows(), heads = c.heads, head_dim = c.width / c.heads;
  if (int64_t(ids.size()) != rows) fail("VLM decoding: {} tokens for {} rows", ids.size(), rows);
  if (columns_ >= capacity_) fail("VLM decoding: the key/value cache is full ({} columns)", capacity_);
  for (int64_t r = 0; r < rows; ++r) {
    if (room(r) <= 0) fail("VLM decoding: row {} has filled the text context {}", r, c.text_context);
    if (ids[size_t(r)] < 0 || ids[size_t(r)] >= c.vocab_size())
      fail("VLM decoding: token {} outside the vocabulary [0, {})", ids[size_t(r)], c.vocab_size());
  }
  Tensor x = model_.token_embedding->forward(Tensor::from_vector(ids, {rows, 1})) +
             index_select(model_.positional_embedding, 0, Tensor::from_vector(next_position_, {rows})).unsqueeze(1);
  const int64_t col = columns_;
  AttentionOptions o;
  o.key_padding_mask = padding_.slice(1, 0, col + 1).contiguous();
  size_t crossed = 0;
  for (size_t l = 0; l < cache_.size(); ++l) {
    const auto& block = model_.blocks->items[l];
    const Tensor split = fused_linear(block->norm1->forward(x), block->attn->qkv->weight, block->attn->qkv->bias)
                             .reshape({rows, 1, 3, heads, head_dim});
    LayerCache& layer = cache_[l];
    layer.k.slice(2, col, col + 1).copy_(split.select(2, 1).permute({0, 2, 1, 3}));
    layer.v.slice(2, col, col + 1).copy_(split.select(2, 2).permute({0, 2, 1, 3}));
    const Tensor a = scaled_dot_product_attention(split.select(2, 0).permute({0, 2, 1, 3}), layer.k.slice(2, 0, col + 1),
                                                  layer.v.slice(2, 0, col + 1), o);
    x = x + fused_linear(a.permute({0, 2, 1, 3}).reshape({rows, 1, c.width}), block->attn->proj->weight,
                         block->attn->proj->bias);
    x = x + block->mlp->forward(block->norm2->forward(x));
    if (const GatedCrossAttentionBlock* cross = model_.cross_block_after(l)) x = cross->forward(x, cross_cache_[crossed++]);
  }
  ++columns_;
  for (int64_t& p : next_position_) ++p;
  logits_ = model_.lm_head->forward(model_.ln_final->forward(x)).reshape({rows, c.vocab_size()});
}

void VlmDecoder::select_rows(const std::vector<int64_t>& order) {
  for (int64_t r : order)
    if (r < 0 || r >= rows()) fail("VLM decoding: row {} outside [0, {})", r, rows());
  const Tensor index = Tensor::from_vector(order, {int64_t(order.size())});
  for (LayerCache& layer : cache_) layer.k = index_select(layer.k, 0, index), layer.v = index_select(layer.v, 0, index);
  for (auto& layer : cross_cache_) layer.k = index_select(layer.k, 0, index), layer.v = index_select(layer.v, 0, index);
  padding_ = index_select(padding_, 0, index);
  logits_ = index_select(logits_, 0, index);
  std::vector<int64_t> positions;
  for (int64_t r : order) positions.push_back(next_position_[size_t(r)]);
  next_position_ = std::move(positions);
}

namespace {

// Tokens (EOS included) a row may generate: what is left of its text context, and the caller's cap.
int64_t token_limit(const VisionLanguageModel& model, const std::vector<int64_t>& prompt, const GenerationOptions& o) {
  const int64_t room = model.config().text_context - int64_t(prompt.size());
  return o.max_new_tokens > 0 ? std::min(room, o.max_new_tokens) : room;
}

std::vector<float> log_probabilities(const Tensor& logits) { return log_softmax(logits, 1).contiguous().to_vector<float>(); }

std::vector<Generation> greedy(VisionLanguageModel& model, const Tensor& image_tokens, const std::vector<std::vector<int64_t>>& prompts,
                               const GenerationOptions& options) {
  VlmDecoder decoder(model, image_tokens, prompts, options.max_new_tokens);
  const int64_t vocab = model.config().vocab_size();
  std::vector<Generation> out(prompts.size());
  std::vector<int64_t> sample(prompts.size());  // the sample each decoder row generates for
  for (size_t i = 0; i < sample.size(); ++i) sample[i] = int64_t(i);
  while (decoder.rows() > 0) {
    const std::vector<float> lp = log_probabilities(decoder.logits());
    std::vector<int64_t> keep, tokens;
    for (int64_t r = 0; r < decoder.rows(); ++r) {
      const float* row = lp.data() + r * vocab;
      const auto token = int64_t(std::max_element(row, row + vocab) - row);
      Generation& g = out[size_t(sample[size_t(r)])];
      g.score += row[token];
      if (token == VlmVocabulary::kEos) {
        g.finished = true;
        continue;
      }
      g.ids.push_back(token), g.log_probs.push_back(row[token]);
      // No room left for another token (not even EOS): the text is cut here.
      if (int64_t(g.ids.size()) >= token_limit(model, prompts[size_t(sample[size_t(r)])], options)) continue;
      keep.push_back(r), tokens.push_back(token);
    }
    if (keep.empty()) break;
    if (int64_t(keep.size()) != decoder.rows()) {
      decoder.select_rows(keep);
      std::vector<int64_t> kept;
      for (int64_t r : keep) kept.push_back(sample[size_t(r)]);
      sample = std::move(kept);
    }
    decoder.append(tokens);
  }
  return out;
}

struct Beam {
  std::vector<int64_t> ids;
  std::vector<double> log_probs;
  double total = 0;
};

std::vector<Generation> beam_search(VisionLanguageModel& model, const Tensor& image_tokens,
                                    const std::vector<std::vector<int64_t>>& prompts, const GenerationOptions& options) {
  const int64_t k = options.beam, vocab = model.config().vocab_size(), samples = int64_t(prompts.size());
  VlmDecoder decoder(model, image_tokens, prompts, options.max_new_tokens);
  std::vector<int64_t> expand;
  for (int64_t s = 0; s < samples; ++s)
    for (int64_t j = 0; j < k; ++j) expand.push_back(s);
  decoder.select_rows(expand);
  // Live beams of each sample; they start as one empty beam (k copies would only repeat it).
  std::vector<std::vector<Beam>> beams(static_cast<size_t>(samples), std::vector<Beam>(1));
  std::vector<std::vector<Generation>> finished(static_cast<size_t>(samples));
  std::vector<int64_t> live(static_cast<size_t>(samples));  // samples still searching, in decoder row order
  for (int64_t s = 0; s < samples; ++s) live[size_t(s)] = s;
  auto normalised = [&](double total, size_t length) { return total / std::pow(double(length), options.length_penalty); };

  while (!live.empty()) {
    const std::vector<float> lp = log_probabilities(decoder.logits());
    std::vector<int64_t> order, tokens, still_live;
    for (size_t i = 0; i < live.size(); ++i) {
      const int64_t s = live[i];
      const std::vector<Beam>& current = beams[size_t(s)];
      struct Candidate {
        double total;
        int64_t beam, token;
      };
      std::vector<Candidate> candidates;
      for (size_t j = 0; j < current.size(); ++j) {
        const float* row = lp.data() + (int64_t(i) * k + int64_t(j)) * vocab;
        for (int64_t v = 0; v < vocab; ++v) candidates.push_back({current[j].total + row[v], int64_t(j), v});
      }
      const auto best = std::min<size_t>(candidates.size(), size_t(2 * k));
      std::partial_sort(candidates.begin(), candidates.begin() + std::ptrdiff_t(best), candidates.end(),
                        [](const Candidate& a, const Candidate& b) { return a.total > b.total; });
      const int64_t limit = token_limit(model, prompts[size_t(s)], options);
      std::vector<Beam> next;
      for (size_t c = 0; c < best && int64_t(next.size()) < k; ++c) {
        const Candidate& cand = candidates[c];
        const Beam& parent = current[size_t(cand.beam)];
        const double step = cand.total - parent.total;
        if (cand.token == VlmVocabulary::kEos) {
          finished[size_t(s)].push_back({parent.ids, parent.log_probs, normalised(cand.total, parent.ids.size() + 1), true});
          continue;
        }
        Beam b = parent;
        b.ids.push_back(cand.token), b.log_probs.push_back(step), b.total = cand.total;
        if (int64_t(b.ids.size()) >= limit) {  // no room for more: a cut text, ranked with the finished
          finished[size_t(s)].push_back({b.ids, b.log_probs, normalised(b.total, b.ids.size()), false});
          continue;
        }
        order.push_back(int64_t(i) * k + cand.beam);
        tokens.push_back(cand.token);
        next.push_back(std::move(b));
      }
      // Done when k texts have ended (HF's early stopping) or nothing is left to extend.
      if (int64_t(finished[size_t(s)].size()) >= k || next.empty()) {
        order.resize(order.size() - next.size()), tokens.resize(tokens.size() - next.size());
        beams[size_t(s)].clear();
        continue;
      }
      while (int64_t(next.size()) < k) {  // pad with copies of the last beam, never extended
        order.push_back(order.back()), tokens.push_back(tokens.back());
        Beam dead = next.back();
        dead.total = -std::numeric_limits<double>::infinity();
        next.push_back(std::move(dead));
      }
      beams[size_t(s)] = std::move(next);
      still_live.push_back(s);
    }
    live = std::move(still_live);
    if (live.empty()) break;
    decoder.select_rows(order);
    decoder.append(tokens);
  }
  std::vector<Generation> out(static_cast<size_t>(samples));
  for (int64_t s = 0; s < samples; ++s) {
    auto& f = finished[size_t(s)];
    if (f.empty()) continue;  // cannot happen: a search ends with a finished or cut text
    out[size_t(s)] = *std::max_element(f.begin(), f.end(), [](const Generation& a, const Generation& b) { return a.score < b.score; });
  }
  return out;
}

}  // namespace

std::vector<Generation> generate(VisionLanguageModel& model, const Tensor& image_tokens,
                                 const std::vector<std::vector<int64_t>>& prompts, const GenerationOptions& options) {
  if (options.beam < 1) fail("VLM generation: beam must be >= 1, got {}", options.beam);
  if (prompts.empty()) return {};
  return options.beam == 1 ? greedy(model, image_tokens, prompts, options)
                           : beam_search(model, image_tokens, prompts, options);
}

}  // namespace tessera::nn
