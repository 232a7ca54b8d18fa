#pragma once
// Reconstruction metrics of an image tokenizer, as pure functions and one accumulator that
// gathers them over an eval set batch by batch. Pixels are in [0, 1].
//   MSE  mean squared error over every pixel and channel of the whole set;
//   PSNR 10 log10(1 / MSE) of that set-wide MSE (not a mean of per-image PSNRs);
//   SSIM Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1,
//        over the window positions fully inside the image; averaged over channels, then images.
#include <cstdint>

#include <vector>

#include "autograd/tensor.h"

namespace tessera::nn {

double psnr_from_mse(double mse);

// SSIM of one single-channel image pair, row-major h x w (h and w >= 11).
double ssim_plane(const float* a, const float* b, int64_t h, int64_t w);

// Mean SSIM of image batches [N, C, H, W] (f32).
double ssim(const Tensor& a, const Tensor& b);

// Bits to store one image's tokens: tokens * log2(codebook size).
double bits_per_image(int64_t tokens, int64_t codebook_size);

class ReconstructionMetrics {
 public:
  // original and reconstruction: f32 [N, C, H, W] in [0, 1], the same shape.
  void add(const Tensor& original, const Tensor& reconstruction);
  int64_t images() const { return images_; }
  double mse() const;
  double psnr() const { return psnr_from_mse(mse()); }
  double ssim() const;  // 0 when the images are smaller than the window
  // The running sums, to add up the shares of an evaluation split among processes.
  std::vector<double> sums() const {
    return {squared_error_, double(values_), ssim_sum_, double(images_), double(ssim_images_)};
  }
  void set_sums(const std::vector<double>& s) {
    squared_error_ = s[0], values_ = int64_t(s[1]), ssim_sum_ = s[2], images_ = int64_t(s[3]), ssim_images_ = int64_t(s[4]);
  }

 private:
  double squared_error_ = 0;
  int64_t values_ = 0;
  double ssim_sum_ = 0;
  int64_t images_ = 0;
  int64_t ssim_images_ = 0;
};

}  // namespace tessera::nn
