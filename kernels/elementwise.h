#pragma once
// Elementwise kernels on contiguous runs. Broadcasting is the caller's business: an operand
// stride of 0 repeats one value, 1 walks the array; that covers the fast paths (same shape and
// tensor-with-scalar) that autograd reduces every broadcast to, one inner run at a time.
#include <cstdint>

namespace tessera::kernels {

// The ops and their parameters p0, p1 are declared in kernels/elementwise_ops.def.
enum class UnaryOp {
#define TESSERA_UNARY_OP(id, ...) id,
#include "kernels/elementwise_ops.def"
};

enum class BinaryOp {
#define TESSERA_BINARY_OP(id, ...) id,
#include "kernels/elementwise_ops.def"
};

// y[i] = f(x[i]); p0, p1 are the op's parameters (pow's exponent, clamp's bounds, ...).
void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0 = 0, float p1 = 0);
void unary(UnaryOp op, const double* x, double* y, int64_t n, double p0 = 0, double p1 = 0);

// gx[i] = gy[i] * f'(x[i]); y = f(x) is passed too because some derivatives are cheaper from it.
// With accumulate, gx += instead of =.
void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n,
                    float p0 = 0, float p1 = 0);
void unary_backward(UnaryOp op, const double* x, const double* y, const double* gy, double* gx, int64_t n,
                    double p0 = 0, double p1 = 0);

// y[i] = a[i*sa] (op) b[i*sb], with sa, sb in {0, 1}.
void binary(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n);
void binary(BinaryOp op, const double* a, int64_t sa, const double* b, int64_t sb, double* y, int64_t n);

// y[i] += alpha * x[i]
void axpy(float alpha, const float* x, float* y, int64_t n);
void axpy(double alpha, const double* x, double* y, int64_t n);

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

}  // namespace tessera::kernels
