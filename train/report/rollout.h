#pragma once
// Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", 2020): each
// block's head-averaged attention mixed half and half with the identity (the residual path),
// rows renormalised, multiplied through the blocks. The pooled output's row — the CLS token's, or
// with average pooling the mean of the patch tokens' rows — says how much each patch feeds it.
#include <cstdint>
#include <vector>

#include "nn/capabilities.h"

namespace tessera::train {

// The share of each patch (row-major, CLS excluded) in image `image`'s pooled output; sums to 1
// up to the CLS token's own share.
std::vector<double> attention_rollout(const nn::ImageAttention& attention, int64_t image);

}  // namespace tessera::train
