#include "nn/patch_targets.h"

#include <algorithm>
#include <vector>

#include "autograd/error.h"

namespace tessera::nn {

Tensor patch_class_targets(const Tensor& boxes, const Tensor& classes, int64_t image_size, int64_t grid,
                           int64_t background) {
  if (boxes.dim() != 3 || boxes.size(2) != 4)
    fail("patch targets: boxes should be [B, K, 4], got {}", boxes.shape_string());
  if (classes.dim() != 2 || classes.size(0) != boxes.size(0) || classes.size(1) != boxes.size(1))
    fail("patch targets: classes should be [B, K] = [{}, {}] beside the boxes, got {}", boxes.size(0), boxes.size(1),
         classes.shape_string());
  if (grid < 1 || image_size < grid || image_size % grid != 0)
    fail("patch targets: a {}-pixel image cannot be cut into {}x{} equal patches", image_size, grid, grid);
  const int64_t B = boxes.size(0), K = boxes.size(1), patch = image_size / grid;
  const std::vector<float> box = boxes.to_vector<float>();
  const std::vector<int64_t> cls = classes.to_vector<int64_t>();
  std::vector<int64_t> out(size_t(B * grid * grid), background);
  std::vector<double> area(size_t(grid * grid));
  for (int64_t b = 0; b < B; ++b) {
    int64_t* labels = out.data() + b * grid * grid;
    std::fill(area.begin(), area.end(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const int64_t c = cls[size_t(b * K + k)];
      if (c < 0) continue;
      if (c >= background)
        fail("patch targets: object class {} of sample {} is not below the {} classes of the patch head", c, b,
             background);
      const float* r = box.data() + (b * K + k) * 4;
      const double y0 = r[0], x0 = r[1], y1 = r[2], x1 = r[3], a = (y1 - y0) * (x1 - x0);
      for (int64_t i = 0; i < grid; ++i) {
        const double cy = (double(i) + 0.5) * double(patch);
        if (cy < y0 || cy >= y1) continue;
        for (int64_t j = 0; j < grid; ++j) {
          const double cx = (double(j) + 0.5) * double(patch);
          if (cx < x0 || cx >= x1) continue;
          const size_t p = size_t(i * grid + j);
          if (labels[p] == background || a <= area[p]) labels[p] = c, area[p] = a;
        }
      }
    }
  }
  return Tensor::from_vector(out, {B, grid * grid});
}

}  // namespace tessera::nn
