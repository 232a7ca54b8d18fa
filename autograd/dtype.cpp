#include "autograd/dtype.h"

#include "autograd/error.h"

namespace tessera {

void fail_unsupported_dtype(const char* op, DType t) {
  fail("{}: does not support dtype {} (expects a floating-point tensor, f32 or f64)", op, dtype_name(t));
}

}  // namespace tessera
