#pragma once
// What a dual encoder (CLIP, SigLIP) is judged by, as pure functions of embeddings:
// zero-shot classification from text prompts and image<->text retrieval recall@k (the linear
// probe on frozen image embeddings is nn/linear_probe.h). Embeddings need not be normalised;
// every function compares them by cosine similarity.
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "nn/capabilities.h"

namespace tessera::nn {

// Class embeddings from a prompt ensemble: text embeddings [C, T, D] of C classes under T
// templates are L2-normalised, averaged over templates, and normalised again (CLIP's recipe).
Tensor prompt_ensemble(const Tensor& text_embeddings);

// Unit class embeddings [names, D] for zero-shot classification: every template filled with every
// name ("a photo of a {}." -> "a photo of a bag."), embedded by `model`, and prompt-ensembled.
Tensor zero_shot_class_embeddings(TextToEmbedding& model, const std::vector<std::string>& names,
                                  const std::vector<std::string>& templates);

// Index of the most similar class embedding ([C, D]) for each image embedding ([N, D]): i64 [N].
Tensor zero_shot_predict(const Tensor& image_embeddings, const Tensor& class_embeddings);
// Fraction of images whose most similar class is their label (integer [N]).
double zero_shot_accuracy(const Tensor& image_embeddings, const Tensor& class_embeddings, const Tensor& labels);

struct RecallAtK {
  std::vector<int64_t> k;
  std::vector<double> image_to_text;  // per k
  std::vector<double> text_to_image;  // per k
};

// Image i and text i are a pair. image->text recall@k: the fraction of images whose pair is
// among the k most similar of ALL N texts; text->image the same the other way. Without labels
// the pair is exact (only text i is a hit for image i). With labels (integer [N]), any item of
// the query's class counts as a hit (class-level retrieval: captions built from class names
// repeat, so the exact pair is not identifiable). Ties are broken against the query: an item
// ranks above the hit when its similarity is greater or equal. Similarities are computed in f64,
// chunk_rows queries at a time (0: about 4M similarities per chunk), so memory stays
// O(chunk_rows x N) rather than N x N; the result does not depend on the chunk size.
RecallAtK retrieval_recall(const Tensor& image_embeddings, const Tensor& text_embeddings,
                           const std::vector<int64_t>& k = {1, 5, 10}, const Tensor& labels = {},
                           int64_t chunk_rows = 0);

}  // namespace tessera::nn
