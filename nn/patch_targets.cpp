#include "nn/patch_targets.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/error.h"

namespace tessera::nn {

namespace {

// Checks the inputs of both target kinds; returns the patch size in pixels.
int64_t checked_patch_size(const Tensor& boxes, const Tensor& classes, int64_t image_size, int64_t grid) {
  if (boxes.dim() != 3 || boxes.size(2) != 4)
    fail("patch targets: boxes should be [B, K, 4], got {}", boxes.shape_string());
  if (classes.dim() != 2 || classes.size(0) != boxes.size(0) || classes.size(1) != boxes.size(1))
    fail("patch targets: classes should be [B, K] = [{}, {}] beside the boxes, got {}", boxes.size(0), boxes.size(1),
         classes.shape_string());
  if (grid < 1 || image_size < grid || image_size % grid != 0)
    fail("patch targets: a {}-pixel image cannot be cut into {}x{} equal patches", image_size, grid, grid);
  return image_size / grid;
}

// Calls label(b, class, box, area) for every object of every sample, checking its class.
template <class Label>
void for_each_object(const Tensor& boxes, const Tensor& classes, int64_t background, Label label) {
  const int64_t B = boxes.size(0), K = boxes.size(1);
  const std::vector<float> box = boxes.to_vector<float>();
  const std::vector<int64_t> cls = classes.to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t c = cls[size_t(b * K + k)];
      if (c < 0) continue;
      if (c >= background)
        fail("patch targets: object class {} of sample {} is not below the {} classes of the patch head", c, b,
             background);
      const float* r = box.data() + (b * K + k) * 4;
      label(b, c, r, (double(r[2]) - r[0]) * (double(r[3]) - r[1]));
    }
}

}  // namespace

Tensor patch_class_targets(const Tensor& boxes, const Tensor& classes, int64_t image_size, int64_t grid,
                           int64_t background) {
  const int64_t patch = checked_patch_size(boxes, classes, image_size, grid), B = boxes.size(0), N = grid * grid;
  std::vector<int64_t> out(size_t(B * N), background);
  std::vector<double> area(size_t(B * N), 0.0);
  for_each_object(boxes, classes, background, [&](int64_t b, int64_t c, const float* r, double a) {
    for (int64_t i = 0; i < grid; ++i) {
      const double cy = (double(i) + 0.5) * double(patch);
      if (cy < r[0] || cy >= r[2]) continue;
      for (int64_t j = 0; j < grid; ++j) {
        const double cx = (double(j) + 0.5) * double(patch);
        if (cx < r[1] || cx >= r[3]) continue;
        const size_t p = size_t(b * N + i * grid + j);
        if (out[p] == background || a <= area[p]) out[p] = c, area[p] = a;
      }
    }
  });
  return Tensor::from_vector(out, {B, N});
}

Tensor patch_centre_targets(const Tensor& boxes, const Tensor& classes, int64_t image_size, int64_t grid,
                            int64_t background) {
  const int64_t patch = checked_patch_size(boxes, classes, image_size, grid), B = boxes.size(0), N = grid * grid;
  std::vector<int64_t> out(size_t(B * N), background);
  std::vector<double> area(size_t(B * N), 0.0);
  // The patch of a centre coordinate; a box on the far edge still has its centre inside the image.
  auto cell = [&](double centre) { return std::clamp(int64_t(std::floor(centre / double(patch))), int64_t(0), grid - 1); };
  for_each_object(boxes, classes, background, [&](int64_t b, int64_t c, const float* r, double a) {
    const size_t p = size_t(b * N + cell((double(r[0]) + r[2]) / 2) * grid + cell((double(r[1]) + r[3]) / 2));
    if (out[p] == background || a <= area[p]) out[p] = c, area[p] = a;
  });
  return Tensor::from_vector(out, {B, N});
}

}  // namespace tessera::nn
