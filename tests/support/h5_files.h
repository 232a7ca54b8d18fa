#pragma once
// Reading what the commands under test wrote: one float32 or int64 dataset of an HDF5 file.
#include <hdf5.h>

#include <boost/test/unit_test.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "data/hdf5_util.h"

namespace tessera::testing {

// Dataset `name` of `path`, flattened, with its shape in `dims` (read as float or int64).
template <class T>
std::vector<T> read_dataset(const std::string& path, const char* name, std::vector<hsize_t>& dims) {
  data::h5::Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  BOOST_TEST_REQUIRE(file.valid(), "cannot open " << path);
  data::h5::Handle ds(H5Dopen2(file.get(), name, H5P_DEFAULT));
  BOOST_TEST_REQUIRE(ds.valid(), path << " has no dataset " << name);
  data::h5::Handle space(H5Dget_space(ds.get()));
  dims.assign(size_t(H5Sget_simple_extent_ndims(space.get())), 0);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  size_t n = 1;
  for (hsize_t d : dims) n *= size_t(d);
  std::vector<T> out(n);
  const hid_t type = std::is_same_v<T, float> ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64;
  BOOST_TEST_REQUIRE(H5Dread(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0);
  return out;
}

}  // namespace tessera::testing
