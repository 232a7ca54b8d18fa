#include "nn/contrastive_metrics.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops/contrastive.h"
#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {
namespace {

void check_matrix(const Tensor& x, const char* op, const char* what) {
  if (!x.defined() || x.dim() != 2) fail("{}: {} must be [N, D], got {}", op, what, x.defined() ? x.shape_string() : "undefined");
  if (!is_floating(x.dtype())) fail("{}: {} must be floating point, got {}", op, what, dtype_name(x.dtype()));
}

std::vector<int64_t> checked_labels(const Tensor& labels, int64_t n, const char* op) {
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != n || is_floating(labels.dtype()))
    fail("{}: labels must be integer [{}], got {}", op, n, labels.defined() ? labels.shape_string() : "undefined");
  return labels.to_vector<int64_t>();
}

// Rank of the best relevant key for each query, over all keys: the number of keys that are not
// relevant and at least as similar to the query. Similarities are cosines computed in f64 (so
// that ranks do not flip on near-ties), `chunk` queries at a time: memory stays at chunk x keys.
template <class Relevant>
std::vector<int64_t> best_relevant_ranks(const Tensor& queries, const Tensor& keys, int64_t chunk, Relevant relevant) {
  NoGradGuard no_grad;
  const Tensor q = l2_normalize_rows(queries.detach().to(DType::f64));
  const Tensor k = l2_normalize_rows(keys.detach().to(DType::f64)).t();
  const int64_t n = queries.size(0), m = keys.size(0);
  std::vector<int64_t> rank(size_t(n), 0);
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t rows = std::min(chunk, n - start);
    const Tensor s = matmul(q.slice(0, start, start + rows), k).contiguous();
    const double* p = s.data<double>();
    for (int64_t r = 0; r < rows; ++r) {
      const double* sim = p + r * m;
      const int64_t query = start + r;
      double best = -INFINITY;
      for (int64_t j = 0; j < m; ++j)
        if (relevant(query, j)) best = std::max(best, sim[j]);
      int64_t above = 0;
      for (int64_t j = 0; j < m; ++j) above += !relevant(query, j) && sim[j] >= best;
      rank[size_t(query)] = above;
    }
  }
  return rank;
}

}  // namespace

Tensor prompt_ensemble(const Tensor& text_embeddings) {
  if (!text_embeddings.defined() || text_embeddings.dim() != 3)
    fail("prompt_ensemble: expects text embeddings [classes, templates, D], got {}",
         text_embeddings.defined() ? text_embeddings.shape_string() : "undefined");
  NoGradGuard no_grad;
  return l2_normalize_rows(mean(l2_normalize_rows(text_embeddings), {1}));
}

Tensor zero_shot_class_embeddings(TextToEmbedding& model, const std::vector<std::string>& names,
                                  const std::vector<std::string>& templates) {
  if (names.empty()) fail("zero-shot classification needs class names (the data set has no class_names)");
  if (templates.empty()) fail("zero-shot classification needs at least one prompt template");
  std::vector<std::string> prompts;  // name-major: [names x templates]
  for (const std::string& name : names)
    for (const std::string& t : templates) {
      const size_t at = t.find("{}");
      if (at == std::string::npos) fail("zero-shot prompt template '{}' has no {{}} for the class name", t);
      prompts.push_back(std::string(t).replace(at, 2, name));
    }
  NoGradGuard no_grad;
  const Tensor e = model.embed_texts(prompts);
  return prompt_ensemble(e.reshape({int64_t(names.size()), int64_t(templates.size()), e.size(1)}));
}

Tensor zero_shot_predict(const Tensor& image_embeddings, const Tensor& class_embeddings) {
  check_matrix(image_embeddings, "zero_shot_predict", "image embeddings");
  check_matrix(class_embeddings, "zero_shot_predict", "class embeddings");
  if (image_embeddings.size(1) != class_embeddings.size(1))
    fail("zero_shot_predict: image embeddings {} and class embeddings {} differ in width",
         image_embeddings.shape_string(), class_embeddings.shape_string());
  if (class_embeddings.size(0) == 0) fail("zero_shot_predict: no classes");
  NoGradGuard no_grad;
  const Tensor s = matmul(l2_normalize_rows(image_embeddings), l2_normalize_rows(class_embeddings).t());
  return argmax(s, 1);
}

double zero_shot_accuracy(const Tensor& image_embeddings, const Tensor& class_embeddings, const Tensor& labels) {
  const Tensor predicted = zero_shot_predict(image_embeddings, class_embeddings);
  const std::vector<int64_t> truth = checked_labels(labels, image_embeddings.size(0), "zero_shot_accuracy");
  const std::vector<int64_t> p = predicted.to_vector<int64_t>();
  if (p.empty()) return 0;
  int64_t hits = 0;
  for (size_t i = 0; i < p.size(); ++i) hits += p[i] == truth[i];
  return double(hits) / double(p.size());
}

RecallAtK retrieval_recall(const Tensor& image_embeddings, const Tensor& text_embeddings, const std::vector<int64_t>& ks,
                           const Tensor& labels, int64_t chunk_rows) {
  const char* op = "retrieval_recall";
  check_matrix(image_embeddings, op, "image embeddings");
  check_matrix(text_embeddings, op, "text embeddings");
  if (image_embeddings.shape() != text_embeddings.shape())
    fail("{}: image embeddings {} and text embeddings {} must pair up row by row", op, image_embeddings.shape_string(),
         text_embeddings.shape_string());
  const int64_t n = image_embeddings.size(0);
  for (int64_t k : ks)
    if (k < 1) fail("{}: k must be at least 1, got {}", op, k);
  if (chunk_rows < 0) fail("{}: chunk_rows must be >= 0 (0: automatic), got {}", op, chunk_rows);
  std::vector<int64_t> cls;
  if (labels.defined()) cls = checked_labels(labels, n, op);
  // By class when labelled, else the exact pair.
  auto relevant = [&](int64_t q, int64_t j) { return cls.empty() ? q == j : cls[size_t(q)] == cls[size_t(j)]; };
  // About 4M similarities (32 MB of f64) per chunk: a 10000 x 10000 evaluation needs 400 rows at a time.
  const int64_t chunk = chunk_rows > 0 ? chunk_rows : std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(n, 1));

  const std::vector<int64_t> i2t = best_relevant_ranks(image_embeddings, text_embeddings, chunk, relevant);
  const std::vector<int64_t> t2i = best_relevant_ranks(text_embeddings, image_embeddings, chunk, relevant);
  RecallAtK r;
  r.k = ks;
  for (int64_t k : ks) {
    auto recall = [&](const std::vector<int64_t>& rank) {
      if (n == 0) return 0.0;
      return double(std::count_if(rank.begin(), rank.end(), [&](int64_t x) { return x < k; })) / double(n);
    };
    r.image_to_text.push_back(recall(i2t));
    r.text_to_image.push_back(recall(t2i));
  }
  return r;
}

}  // namespace tessera::nn
