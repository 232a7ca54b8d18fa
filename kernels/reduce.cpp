#include "kernels/reduce.h"

#include "kernels/reduce_ref.h"

namespace tessera::kernels {

#define TESSERA_ROWS_BOTH_TYPES(T)                                                                          \
  void sum_rows(const T* x, int64_t rows, int64_t cols, T* out) { ref::sum_rows(x, rows, cols, out); }     \
  void max_rows(const T* x, int64_t rows, int64_t cols, T* out, int64_t* argmax) {                         \
    ref::max_rows(x, rows, cols, out, argmax);                                                             \
  }                                                                                                        \
  void var_rows(const T* x, int64_t rows, int64_t cols, int64_t correction, T* var, T* mean) {             \
    ref::var_rows(x, rows, cols, correction, var, mean);                                                   \
  }                                                                                                        \
  void softmax_rows(const T* x, int64_t rows, int64_t cols, T* y) { ref::softmax_rows(x, rows, cols, y); } \
  void log_softmax_rows(const T* x, int64_t rows, int64_t cols, T* y) {                                    \
    ref::log_softmax_rows(x, rows, cols, y);                                                               \
  }                                                                                                        \
  void softmax_backward_rows(const T* y, const T* gy, int64_t rows, int64_t cols, T* gx) {                 \
    ref::softmax_backward_rows(y, gy, rows, cols, gx);                                                     \
  }                                                                                                        \
  void log_softmax_backward_rows(const T* y, const T* gy, int64_t rows, int64_t cols, T* gx) {             \
    ref::log_softmax_backward_rows(y, gy, rows, cols, gx);                                                 \
  }

TESSERA_ROWS_BOTH_TYPES(float)
TESSERA_ROWS_BOTH_TYPES(double)
#undef TESSERA_ROWS_BOTH_TYPES

}  // namespace tessera::kernels
