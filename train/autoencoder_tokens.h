#pragma once
// Token files of image tokenizers (model.type vae, vqvae, fsq): `tessera tokenize` writes them and
// `tessera decode` turns them back into images. A token file (HDF5) holds
//   tokens  int32 [N, h, w] (vqvae, fsq: codebook indices) or float32 [N, h, w, c] (vae: posterior means)
//   labels  int64 [N] with attribute class_names, when the tokenized data set had labels
// and attributes on the file: checkpoint (its path), step, model (the model.type), bottleneck,
// codebook_size (0 for a VAE), image_shape [C, H, W], downsample, and decode (the command that
// turns the file back into images). Decoding uses the same batches as tokenizing, so
// decode(tokenize(x)) equals the checkpoint's evaluation-mode reconstruction of x bit for bit.
#include <cstdint>
#include <string>

namespace tessera::train {

// Whether tokenize and decode handle this model.type here.
bool is_autoencoder_type(const std::string& type);

// batch 0 = the recipe's eval.batch_size. Outputs go to a temporary file renamed into place.
void tokenize_with_autoencoder(const std::string& checkpoint, const std::string& input, const std::string& output,
                               int64_t batch);
void decode_with_autoencoder(const std::string& checkpoint, const std::string& tokens, const std::string& output,
                             int64_t batch);

}  // namespace tessera::train
