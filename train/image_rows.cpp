#include "train/image_rows.h"

#include <memory>

#include "autograd/error.h"

namespace tessera::train {

data::DatasetInfo write_image_rows(const TrainedModel& model, const std::string& input, const std::string& output,
                                   const std::string& command, bool overwrite, int64_t batch_size,
                                   const DeclareRows& declare) {
  data::h5::refuse_same_file(input, output);
  data::h5::refuse_same_file(model.path(), output, "checkpoint");
  data::h5::refuse_data_set_as_output(output);
  data::h5::refuse_to_replace(output, command, overwrite);
  const std::shared_ptr<data::Dataset> dataset = data::Dataset::open(input);
  const data::DatasetInfo& info = dataset->info();  // for_each_batch checks its image shape
  const auto n = hsize_t(dataset->size());
  data::h5::write_atomically(output, [&](hid_t file) {
    const FillRows fill = declare(file, info, n);
    std::unique_ptr<data::h5::RowWriter> labels;
    if (info.has_labels) {
      labels = std::make_unique<data::h5::RowWriter>(file, "labels", H5T_STD_I64LE, std::vector<hsize_t>{n}, output);
      data::h5::write_attribute(labels->id(), "class_names", info.class_names);
    }
    hsize_t done = 0;
    model.for_each_batch(dataset, input, batch_size, -1, [&](const data::Batch& batch) {
      const auto count = hsize_t(batch.images.size(0));
      fill(batch, done, count);
      if (labels) labels->write(H5T_NATIVE_INT64, done, count, batch.labels.contiguous().data<int64_t>());
      done += count;
    });
    if (done != n) fail("{}: wrote {} of {} images", output, done, n);
    data::h5::write_attribute(file, "checkpoint", model.path());
    data::h5::write_attribute(file, "step", model.step());
    data::h5::write_attribute(file, "model", model.type());
    data::h5::mark_written_by(file, command);
  });
  return info;
}

}  // namespace tessera::train
