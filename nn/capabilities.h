#pragma once
// What a model can do, as small interfaces. A model class inherits the ones it implements, and a
// command asks the loaded model for the one it needs (`capability<ImageToTokens>(model)`) instead
// of comparing model type names: a new model that implements ImageToTokens and TokensToImage is
// tokenized and decoded by `tessera tokenize` and `tessera decode` with no edit to either.
//
//   ImageToReconstruction  images -> images through a bottleneck: what the reconstruction task
//                          trains (VAE, VQ-VAE, FSQ)
//   ImageToTokens       images -> a grid of hard codes or soft latents  (VAE, VQ-VAE, FSQ)
//   TokensToImage       that grid -> images                             (VAE, VQ-VAE, FSQ)
//   ImageToPatchTokens  images -> patch tokens and their pooled vector  (ViT)
//   ImageToEmbedding    images -> one vector per image                  (ViT, CLIP, SigLIP)
//   ImageToAttention    images -> the image tower's attention weights     (ViT, CLIP, SigLIP, VLM)
//   TextToEmbedding     texts  -> one vector per text                   (CLIP, SigLIP)
//   ImageToLogits       images -> class logits                          (ViT, MLP)
//   ImageToText         images + prompts -> generated text, boxes read from it  (VLM)
//   LabelsToImage       class labels -> new images, sampled                (latent DiT)
//
// Every method runs the model as it is (callers set eval mode and hold a NoGradGuard).
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"
#include "nn/location_tokens.h"
#include "nn/module.h"
#include "nn/generation.h"

namespace tessera::nn {

struct Reconstruction {
  Tensor images;           // f32 [N, C, H, W] in [0, 1]
  Tensor bottleneck_loss;  // scalar added to the pixel loss, already weighted (KL, VQ losses; 0 if none)
  Tensor codes;            // i64 [N, h, w], the hard tokens on the way, when the model makes them
};

class ImageToReconstruction {
 public:
  virtual ~ImageToReconstruction() = default;
  // In training mode a model may sample (a VAE draws its latent); in eval mode it is deterministic.
  virtual Reconstruction reconstruct(const Tensor& images) = 0;
};

// The grid of tokens an ImageToTokens model makes, and a TokensToImage model takes back.
struct TokenGrid {
  int64_t height = 0, width = 0;  // tokens per column and per row
  int64_t downsample = 1;         // image side / grid side
  // Hard tokens: one integer code per cell, in [0, codebook_size); channels == 0.
  // Soft tokens: `channels` floats per cell; codebook_size == 0.
  int64_t channels = 0;
  int64_t codebook_size = 0;
  std::string kind;  // what makes them ("vq", "fsq", "gaussian"): token files record it

  bool hard() const { return channels == 0; }
};

class ImageToTokens {
 public:
  virtual ~ImageToTokens() = default;
  // The grid made from images of this size.
  virtual TokenGrid token_grid(int64_t image_height, int64_t image_width) const = 0;
  // images f32 [N, C, H, W] -> i64 [N, h, w] (hard) or f32 [N, h, w, c] (soft); deterministic.
  virtual Tensor tokenize(const Tensor& images) = 0;
};

class TokensToImage {
 public:
  virtual ~TokensToImage() = default;
  virtual TokenGrid token_grid(int64_t image_height, int64_t image_width) const = 0;
  // Tokens as tokenize() makes them -> images f32 [N, C, H, W] in [0, 1]. A wrong shape or dtype,
  // or a code outside the codebook, is an error that says what was expected.
  virtual Tensor decode(const Tensor& tokens) = 0;
};

struct PatchTokens {
  Tensor tokens;  // f32 [N, patches, width]
  Tensor pooled;  // f32 [N, width]
};

class ImageToPatchTokens {
 public:
  virtual ~ImageToPatchTokens() = default;
  virtual int64_t num_patches() const = 0;
  virtual int64_t token_width() const = 0;
  virtual PatchTokens patch_tokens(const Tensor& images) = 0;
};

class ImageToEmbedding {
 public:
  virtual ~ImageToEmbedding() = default;
  virtual int64_t image_embedding_dim() const = 0;
  // What the vector is, for messages and file attributes.
  virtual std::string image_embedding_description() const = 0;
  // images f32 [N, C, H, W] -> f32 [N, dim].
  virtual Tensor embed_images(const Tensor& images) = 0;
};

class TextToEmbedding {
 public:
  virtual ~TextToEmbedding() = default;
  // texts -> f32 [N, dim], not normalised.
  virtual Tensor embed_texts(const std::vector<std::string>& texts) = 0;
  // The prompts ("a photo of a {}.") whose embeddings, averaged per class, classify zero-shot.
  virtual std::vector<std::string> zero_shot_templates() const = 0;
};

// What an image tower's tokens attend to, for attention rollout (Abnar & Zuidema 2020) in run
// reports: per block the softmax weights averaged over heads.
struct ImageAttention {
  std::vector<Tensor> layers;  // per block, f32 [N, T, T]: row = query token, column = key token
  bool cls_first = false;      // token 0 is a CLS token; the others are patches in row-major order
  int64_t grid_height = 0, grid_width = 0;  // patches per column and per row
};

class ImageToAttention {
 public:
  virtual ~ImageToAttention() = default;
  // images f32 [N, C, H, W], without gradients.
  virtual ImageAttention image_attention(const Tensor& images) = 0;
  virtual bool available() const { return true; }
};

class ImageToLogits {
 public:
  virtual ~ImageToLogits() = default;
  // images f32 [N, C, H, W] -> f32 [N, classes].
  virtual Tensor logits(const Tensor& images) = 0;
};

struct GeneratedText {
  std::string text;     // the decoded output (location tokens spelt <locNNNN>), EOS excluded
  Generation tokens;    // its ids and per-token log-probabilities
};

struct TextPrompt {
  int64_t image = 0;  // the row of the images it asks about
  std::string text;   // "caption", "detect bag ; coat", "answer how many bags are there?" ...
};

class ImageToText {
 public:
  virtual ~ImageToText() = default;
  // One generation per prompt; several prompts may ask about one image (it is encoded once).
  virtual std::vector<GeneratedText> generate_text(const Tensor& images, const std::vector<TextPrompt>& prompts,
                                                   const GenerationOptions& options) = 0;
  // The generation settings the model was trained to be evaluated with (the recipe's).
  virtual GenerationOptions default_generation() const = 0;
  // The object class names the model detects, and the grid of its location tokens.
  virtual const std::vector<std::string>& object_names() const = 0;
  virtual LocationGrid location_grid() const = 0;
};

// How a generative model samples: the number of denoising steps, the update, and the strength of
// classifier-free guidance (1 = none: the class-conditional prediction alone).
struct SamplingOptions {
  int64_t steps = 50;
  bool ddpm = false;  // ancestral DDPM updates instead of deterministic DDIM ones
  double guidance = 1;
};

class LabelsToImage {
 public:
  virtual ~LabelsToImage() = default;
  virtual int64_t num_classes() const = 0;
  virtual SamplingOptions default_sampling() const = 0;
  // One new image per label (in [0, num_classes())) -> f32 [N, C, H, W] in [0, 1]. All randomness
  // comes from `gen`, so the same generator state gives the same images.
  virtual Tensor generate_images(const std::vector<int64_t>& labels, const SamplingOptions& options, Generator& gen) = 0;
};

// The capability if `model` has it, else nullptr. A capability class may declare `bool available()
// const` for models that have it in some configurations only (a VLM without an image tower).
template <class Capability>
Capability* capability(Module& model) {
  auto* c = dynamic_cast<Capability*>(&model);
  if constexpr (requires(const Capability& k) { k.available(); }) {
    if (c && !c->available()) return nullptr;
  }
  return c;
}

}  // namespace tessera::nn
