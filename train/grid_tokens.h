#pragma once
// Token files of image tokenizers (any model with nn::ImageToTokens: VAE, VQ-VAE, FSQ today):
// `tessera tokenize` writes them and `tessera decode` (nn::TokensToImage) turns them back into
// images. A token file (HDF5) holds
//   tokens  int32 [N, h, w] (hard tokens: codebook indices) or float32 [N, h, w, c] (soft tokens)
//   labels  int64 [N] with attribute class_names, when the tokenized data set had labels
// and attributes on the file: checkpoint (its path), step, model (the model.type), bottleneck
// (what made the tokens: vq, fsq, gaussian), codebook_size (0 for soft tokens), image_shape
// [C, H, W], downsample, and decode (the command that turns the file back into images). Decoding
// uses the same batches as tokenizing, so decode(tokenize(x)) equals the checkpoint's
// evaluation-mode reconstruction of x bit for bit.
#include <cstdint>
#include <string>

#include "nn/capabilities.h"
#include "train/trained_model.h"

namespace tessera::train {

// batch 0 = the recipe's eval.batch_size. Outputs go to a temporary file renamed into place; an
// existing output is replaced only when the same command wrote it, or with `overwrite`.
void write_grid_tokens(const TrainedModel& model, nn::ImageToTokens& tokenizer, const std::string& input,
                       const std::string& output, bool overwrite, int64_t batch);
void decode_grid_tokens(const TrainedModel& model, nn::TokensToImage& decoder, const std::string& tokens,
                        const std::string& output, int64_t batch, bool overwrite = false);

}  // namespace tessera::train
