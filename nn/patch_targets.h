#pragma once
// Dense targets for an image tower's patch tokens on scene images: each patch of a grid x grid cut
// is labelled with the class of the object whose box holds the patch's centre, the smallest such
// box when boxes overlap (scene items are composited by max, none on top, and the smaller box is
// the more specific guess), or with `background` when no box holds it. Boxes are pixel edges, half-open as docs/DATA.md says: a
// centre (cy, cx) is inside when y_min <= cy < y_max and x_min <= cx < x_max. Equal areas: the
// later object wins. Patches run row by row, as a ViT's tokens do.
#include <cstdint>

#include "autograd/tensor.h"

namespace tessera::nn {

// boxes f32 [B, K, 4] (y_min, x_min, y_max, x_max) in pixels, classes integer [B, K] (< 0: no
// object in that slot), square images of image_size pixels cut into grid x grid patches ->
// i64 [B, grid * grid]. Classes must lie in [0, background).
Tensor patch_class_targets(const Tensor& boxes, const Tensor& classes, int64_t image_size, int64_t grid,
                           int64_t background);

// The same inputs -> i64 [B, grid * grid] labelling each object once: the patch that holds its box's
// centre ((y_min + y_max) / 2, (x_min + x_max) / 2, in the patch whose half-open span holds it)
// gets its class, every other patch `background`; two centres in one patch: the smaller box wins,
// the later on equal areas, as above (0.15 % of the scenes' test objects lose their label so). So
// counting a class's labels counts its objects, and a token taught these must know where its
// object's edges lie, which boxes need (CenterNet's centres).
Tensor patch_centre_targets(const Tensor& boxes, const Tensor& classes, int64_t image_size, int64_t grid,
                            int64_t background);

}  // namespace tessera::nn
