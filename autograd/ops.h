#pragma once
// Every differentiable op, one include. Each family is declared in autograd/ops/<family>.h beside
// its autograd/ops/<family>.cpp, where the op's forward and backward are implemented together;
// include a family header alone where that is all a file needs.
#include "autograd/engine.h"
#include "autograd/tensor.h"

#include "autograd/ops/attention.h"
#include "autograd/ops/contrastive.h"
#include "autograd/ops/conv.h"
#include "autograd/ops/dropout.h"
#include "autograd/ops/elementwise.h"
#include "autograd/ops/fused_linear.h"
#include "autograd/ops/group_norm.h"
#include "autograd/ops/index.h"
#include "autograd/ops/layer_norm.h"
#include "autograd/ops/losses.h"
#include "autograd/ops/matmul.h"
#include "autograd/ops/modulation.h"
#include "autograd/ops/pool.h"
#include "autograd/ops/quantize.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/shape.h"
#include "autograd/ops/sinusoidal.h"
