#pragma once
// A file with one row per image of a data set, written from a trained model: what `tessera
// tokenize` writes, whatever the model makes (grid tokens, patch tokens, embeddings).
#include <cstdint>
#include <functional>
#include <string>

#include "data/dataset.h"
#include "data/hdf5_util.h"
#include "data/loader.h"
#include "train/trained_model.h"

namespace tessera::train {

// Fills the rows [start, start + count) of the model's datasets from one batch.
using FillRows = std::function<void(const data::Batch& batch, hsize_t start, hsize_t count)>;
// Creates the model's datasets (of `rows` rows) and attributes in `file`, and returns what fills them.
using DeclareRows = std::function<FillRows(hid_t file, const data::DatasetInfo& info, hsize_t rows)>;

// Writes `output` from every image of `input`, batch_size at a time (0: the recipe's
// eval.batch_size): the datasets `declare` makes, `labels` int64 [N] with attribute class_names
// when `input` has labels, and the attributes checkpoint, step, model and written_by (`command`,
// "tessera tokenize"). Refuses to write over `input`, the checkpoint or any image data set, and
// replaces another existing file only when `command` wrote it or `overwrite` (refuse_to_replace);
// the file goes to a temporary name renamed into place. Returns what `input` holds.
data::DatasetInfo write_image_rows(const TrainedModel& model, const std::string& input, const std::string& output,
                                   const std::string& command, bool overwrite, int64_t batch_size,
                                   const DeclareRows& declare);

}  // namespace tessera::train
