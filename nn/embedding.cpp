#include "nn/embedding.h"

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"

namespace tessera::nn {

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen) : num_embeddings(num), embedding_dim(dim) {
  if (num <= 0 || dim <= 0) fail("Embedding: sizes must be positive ({} embeddings of dim {})", num, dim);
  Tensor w = Tensor::empty({num, dim});
  init::normal_(w, 0, 1, gen);
  weight = register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& ids) {
  if (is_floating(ids.dtype()))
    fail("Embedding({}, {}): ids must be integers, got {} {}", num_embeddings, embedding_dim,
         dtype_name(ids.dtype()), ids.shape_string());
  return embedding(weight, ids);
}

}  // namespace tessera::nn
