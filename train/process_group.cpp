#include "train/process_group.h"

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "autograd/error.h"

#ifdef TESSERA_HAVE_MPI
#include <mpi.h>
#endif

namespace tessera::train {

namespace {

[[maybe_unused]] int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

#ifdef TESSERA_HAVE_MPI
template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("{} failed: {}", what, std::string(text, size_t(length)));
}

// A bucket at a time, so the scratch stays small whatever the model's size.
constexpr size_t kBucket = size_t(1) << 21;

template <typename T>
void ordered_sum_mpi(std::span<T> values, int size, int rank) {
  const auto n_ranks = static_cast<size_t>(size);
  std::vector<int> counts(n_ranks), offsets(n_ranks);
  std::vector<T> gathered, slice;
  for (size_t begin = 0; begin < values.size(); begin += kBucket) {
    const size_t n = std::min(kBucket, values.size() - begin);
    T* bucket = values.data() + begin;
    // Rank k owns slice k of the bucket.
    for (int k = 0; k < size; ++k) {
      const size_t lo = n * size_t(k) / size_t(size), hi = n * size_t(k + 1) / size_t(size);
      counts[size_t(k)] = int(hi - lo), offsets[size_t(k)] = int(lo);
    }
    const int mine = counts[size_t(rank)];
    // Every rank's copy of my slice, rank after rank.
    gathered.resize(size_t(mine) * size_t(size));
    std::vector<int> recv_counts(n_ranks, mine), recv_offsets(n_ranks);
    for (int k = 0; k < size; ++k) recv_offsets[size_t(k)] = k * mine;
    check(MPI_Alltoallv(bucket, counts.data(), offsets.data(), mpi_type<T>(), gathered.data(), recv_counts.data(),
                        recv_offsets.data(), mpi_type<T>(), MPI_COMM_WORLD),
          "MPI_Alltoallv (gradient sum)");
    slice.assign(gathered.begin(), gathered.begin() + mine);
    for (int k = 1; k < size; ++k) {
      const T* other = gathered.data() + size_t(k) * size_t(mine);
      for (int i = 0; i < mine; ++i) slice[size_t(i)] += other[i];
    }
    check(MPI_Allgatherv(slice.data(), mine, mpi_type<T>(), bucket, counts.data(), offsets.data(), mpi_type<T>(),
                         MPI_COMM_WORLD),
          "MPI_Allgatherv (gradient sum)");
  }
}
#endif

// Both element types: a no-op for a group of one (and all a build without MPI can have).
template <typename T>
void ordered_sum_in([[maybe_unused]] std::span<T> values, int size, [[maybe_unused]] int rank) {
  if (size == 1) return;
#ifdef TESSERA_HAVE_MPI
  ordered_sum_mpi(values, size, rank);
#endif
}

}  // namespace

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

ProcessGroup& ProcessGroup::world() {
  static ProcessGroup group;
  return group;
}

ProcessGroup::ProcessGroup() {
  if (!launched_by_mpi()) return;
#ifdef TESSERA_HAVE_MPI
  int ready = 0;
  MPI_Initialized(&ready);
  if (!ready) {
    int provided = 0;
    // Only the main thread calls MPI; the kernels' threads and the loader's never do.
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    initialised_mpi_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
#else
  const int size = env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", 0));
  fail("this process was started by mpirun{} but this tessera was built without MPI; install Open MPI "
       "(apt-get install libopenmpi-dev openmpi-bin), build again and check 'tessera info'",
       size > 0 ? fmt::format(" (-np {})", size) : "");
#endif
}

ProcessGroup::~ProcessGroup() {
#ifdef TESSERA_HAVE_MPI
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (initialised_mpi_ && !finalized) MPI_Finalize();
#endif
}

void ProcessGroup::ordered_sum(std::span<float> values) const { ordered_sum_in(values, size_, rank_); }
void ProcessGroup::ordered_sum(std::span<double> values) const { ordered_sum_in(values, size_, rank_); }

std::vector<std::string> ProcessGroup::all_gather(const std::string& mine) const {
  if (size_ == 1) return {mine};
#ifdef TESSERA_HAVE_MPI
  const auto n = static_cast<size_t>(size_);
  std::vector<int> sizes(n), offsets(n);
  if (mine.size() > size_t(INT32_MAX)) fail("all_gather: {} bytes from process {} is more than MPI can send at once", mine.size(), rank_);
  const int my_size = int(mine.size());
  check(MPI_Allgather(&my_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  size_t total = 0;
  for (size_t k = 0; k < n; ++k) {
    if (total + size_t(sizes[k]) > size_t(INT32_MAX)) fail("all_gather: more than 2 GiB from all processes");
    offsets[k] = int(total), total += size_t(sizes[k]);
  }
  std::string all(total, '\0');
  check(MPI_Allgatherv(mine.data(), my_size, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD),
        "MPI_Allgatherv");
  std::vector<std::string> out;
  for (size_t k = 0; k < n; ++k) out.push_back(all.substr(size_t(offsets[k]), size_t(sizes[k])));
  return out;
#else
  return {mine};
#endif
}

void ProcessGroup::barrier() const {
#ifdef TESSERA_HAVE_MPI
  if (size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

int ProcessGroup::run(const std::string& command, const std::function<int()>& body) const {
  if (size_ == 1) return body();
  try {
    return body();
  } catch (const std::exception& e) {
    fmt::print(stderr, "tessera {}: error (process {} of {}): {}\n", command, rank_, size_, e.what());
    std::fflush(stderr);
    abort(1);
  }
}

void ProcessGroup::abort(int exit_code) const {
#ifdef TESSERA_HAVE_MPI
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  std::exit(exit_code);
}

std::string ProcessGroup::support() {
#ifdef TESSERA_HAVE_MPI
  char library[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0, major = 0, minor = 0;
  MPI_Get_library_version(library, &length);
  MPI_Get_version(&major, &minor);
  std::string name(library, size_t(length));
  name = name.substr(0, name.find(','));  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
  return fmt::format("{} (MPI {}.{}); data-parallel with mpirun -np N tessera train ...", name, major, minor);
#else
  return "not built in (Open MPI was not found at build time: apt-get install libopenmpi-dev)";
#endif
}

}  // namespace tessera::train
