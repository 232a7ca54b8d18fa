#pragma once
// Embedding: a [num_embeddings, dim] table looked up by integer ids, initialised N(0, 1) as
// PyTorch's nn.Embedding.
#include "autograd/random.h"
#include "nn/module.h"

namespace tessera::nn {

class Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen);
  // ids: integer tensor [...] -> [..., embedding_dim]
  Tensor forward(const Tensor& ids) override;

  Tensor weight;
  int64_t num_embeddings, embedding_dim;
};

}  // namespace tessera::nn
