// im2col / col2im against the element-by-element reference (strides, padding, dilation, odd
// sizes), their adjointness, geometry errors; transpose and copy on every path at the tail sizes
// with leading dimensions and unaligned pointers.
#include <boost/test/unit_test.hpp>

#include <stdexcept>

#include "kernels/im2col.h"
#include "kernels/im2col_ref.h"
#include "kernels/transpose.h"
#include "kernels/transpose_ref.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using namespace tessera::kernels::testing;

namespace {

std::vector<Conv2dGeometry> geometries() {
  std::vector<Conv2dGeometry> out;
  // channels, h, w, kh, kw, sh, sw, ph, pw, dh, dw
  const int64_t cases[][11] = {{1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},  {3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},
                               {2, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1},  {2, 9, 7, 3, 2, 2, 3, 0, 1, 1, 1},
                               {3, 11, 13, 3, 3, 1, 2, 2, 2, 2, 2}, {1, 5, 5, 5, 5, 1, 1, 0, 0, 1, 1},
                               {4, 16, 17, 4, 4, 4, 4, 0, 0, 1, 1}, {2, 6, 6, 1, 1, 1, 1, 3, 3, 1, 1},
                               {2, 33, 31, 7, 7, 2, 2, 3, 3, 1, 1}};
  for (const auto& c : cases) {
    Conv2dGeometry g;
    g.channels = c[0], g.height = c[1], g.width = c[2], g.kernel_h = c[3], g.kernel_w = c[4];
    g.stride_h = c[5], g.stride_w = c[6], g.pad_h = c[7], g.pad_w = c[8], g.dilation_h = c[9], g.dilation_w = c[10];
    out.push_back(g);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layout_kernels)

BOOST_AUTO_TEST_CASE(im2col_col2im_match_reference) {
  for (const Conv2dGeometry& g : geometries()) {
    const int64_t image = g.channels * g.height * g.width;
    const int64_t col = g.channels * g.kernel_h * g.kernel_w * g.out_h() * g.out_w();
    const auto x = random_vector(image, 200 + image);
    const auto c = random_vector(col, 201 + col);
    std::vector<float> got(size_t(col) + 1, 7.0f), want(static_cast<size_t>(col));
    std::vector<float> img(size_t(image) + 1, 7.0f), want_img(static_cast<size_t>(image));
    BOOST_TEST_CONTEXT("C=" << g.channels << " H=" << g.height << " W=" << g.width << " K=" << g.kernel_h << "x"
                            << g.kernel_w << " S=" << g.stride_h << "," << g.stride_w << " P=" << g.pad_h << ","
                            << g.pad_w << " D=" << g.dilation_h << "," << g.dilation_w) {
      for (int64_t offset : {0, 1}) {
        im2col(g, x.data() + offset, got.data() + offset);
        ref::im2col(g, x.data() + offset, want.data());
        check_close(got.data() + offset, want.data(), col, 0, 0, "im2col");
        col2im(g, c.data() + offset, img.data() + offset);
        ref::col2im(g, c.data() + offset, want_img.data());
        check_close(img.data() + offset, want_img.data(), image, 1e-6, 1e-6, "col2im");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(col2im_is_the_adjoint_of_im2col) {
  // <im2col(x), y> == <x, col2im(y)>, in f64
  for (const Conv2dGeometry& g : geometries()) {
    const int64_t image = g.channels * g.height * g.width;
    const int64_t col = g.channels * g.kernel_h * g.kernel_w * g.out_h() * g.out_w();
    const auto x = random_vector<double>(image, 300), y = random_vector<double>(col, 301);
    std::vector<double> cx(static_cast<size_t>(col)), ty(static_cast<size_t>(image));
    im2col(g, x.data(), cx.data());
    col2im(g, y.data(), ty.data());
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < col; ++i) lhs += cx[size_t(i)] * y[size_t(i)];
    for (int64_t i = 0; i < image; ++i) rhs += x[size_t(i)] * ty[size_t(i)];
    BOOST_TEST(lhs == rhs, boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(bad_geometry_is_refused_by_name) {
  Conv2dGeometry g;
  g.channels = 1, g.height = 4, g.width = 4, g.kernel_h = 6, g.kernel_w = 3;
  std::vector<float> x(16), c(1000);
  try {
    im2col(g, x.data(), c.data());
    BOOST_ERROR("a kernel larger than the image was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("kernel_h") != std::string::npos, e.what());
  }
  g.kernel_h = 3, g.stride_w = 0;
  BOOST_CHECK_THROW(col2im(g, c.data(), x.data()), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(transpose_and_copy_match_reference) {
  for_each_simd_path([](SimdPath) {
    for (int64_t rows : {0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 130, 1000, 4097})
      for (int64_t cols : tail_sizes())
        for (int64_t offset : {0, 1}) {
          if (rows * cols > 200000) continue;
          const int64_t ld_in = cols + 3, ld_out = rows + 2;
          const auto in = random_vector(rows * ld_in, 400 + rows + cols);
          std::vector<float> out(size_t(cols * ld_out) + 1, 9.0f), want(size_t(cols * ld_out) + 1, 9.0f);
          BOOST_TEST_CONTEXT("rows=" << rows << " cols=" << cols << " offset=" << offset) {
            transpose(in.data() + offset, rows, cols, ld_in, out.data() + offset, ld_out);
            ref::transpose(in.data() + offset, rows, cols, ld_in, want.data() + offset, ld_out);
            check_close(out.data(), want.data(), int64_t(out.size()), 0, 0, "transpose");  // padding untouched too
            std::vector<float> c(size_t(rows * ld_in) + 1, 9.0f), wc(size_t(rows * ld_in) + 1, 9.0f);
            copy_2d(in.data() + offset, rows, cols, ld_in, c.data() + offset, ld_in);
            ref::copy_2d(in.data() + offset, rows, cols, ld_in, wc.data() + offset, ld_in);
            check_close(c.data(), wc.data(), int64_t(c.size()), 0, 0, "copy");
          }
        }
  });
}

BOOST_AUTO_TEST_SUITE_END()
