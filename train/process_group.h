#pragma once
// The processes of one training run: one, or N started by `mpirun -np N` for data-parallel
// training (docs/SCALING.md). Built on Open MPI when CMake finds it; a build without it runs one
// process and refuses an mpirun launch with a clear error.
//
// The sums are ordered: element i of the result is ((v0[i] + v1[i]) + v2[i]) + ... over the ranks
// in rank order, on every rank alike. A process that accumulates N micro-batches adds their
// gradients in the same order, which is what makes N ranks bitwise equal to one process with
// train.accumulation: N. (MPI_Allreduce promises no order, so the sum is ours: each rank gathers
// one slice of every rank's values with MPI_Alltoallv, adds them in rank order, and MPI_Allgatherv
// hands the slices round — the traffic of a ring allreduce.)
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace tessera::train {

class ProcessGroup {
 public:
  // This process's group: started by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI/PMIx
  // variables), MPI is initialised on first use; otherwise a group of one. Throws when mpirun
  // started a build without MPI.
  static ProcessGroup& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_writer() const { return rank_ == 0; }  // rank 0 alone prints and writes files
  // Processes of this group on this host (to share the cores among them).
  int local_size() const { return local_size_; }

  // Element-wise ordered sums over the group, in place (no-ops for a group of one).
  void ordered_sum(std::span<float> values) const;
  void ordered_sum(std::span<double> values) const;
  // Every process's `mine`, in rank order, on every process.
  std::vector<std::string> all_gather(const std::string& mine) const;
  void barrier() const;
  // Runs a command's body. With several processes an error is printed naming this process and
  // stops them all (the others may be waiting for this one in an exchange); with one it is thrown.
  int run(const std::string& command, const std::function<int()>& body) const;
  // Stops every process of the group (MPI_Abort); for a group of one, exits.
  [[noreturn]] void abort(int exit_code) const;

  // "Open MPI 4.1.4 (MPI 3.1)", or why there is none; for `tessera info`.
  static std::string support();

  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

 private:
  ProcessGroup();
  ~ProcessGroup();
  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool initialised_mpi_ = false;
};

// True when the environment says mpirun (or another MPI launcher) started this process.
bool launched_by_mpi();

}  // namespace tessera::train
