#pragma once
// Importers: formats people have -> Tessera dataset files (data/dataset.h). Every file written is
// marked written_by "tessera data import" (kImportCommand); an existing output is replaced only when
// an earlier import wrote it, or with `overwrite` (h5::refuse_to_replace), and all outputs are
// checked before the first is written.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::data {

// Where Debian's dataset-fashion-mnist package puts its files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
const std::vector<std::string>& fashion_mnist_class_names();
inline constexpr const char* kImportCommand = "tessera data import";

// One idx pair (images u8 [N,H,W] idx3, labels u8 [N] idx1; plain or gzip'd) -> a dataset file
// with C = 1. Returns the number of images. Throws tessera::Error naming the file at fault.
int64_t import_idx(const std::string& images_path, const std::string& labels_path, const std::string& out_path,
                   const std::vector<std::string>& class_names);

// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz in source_dir -> out_dir/train.h5 and out_dir/test.h5.
struct FashionMnistSummary {
  int64_t train = 0, test = 0;
};
FashionMnistSummary import_fashion_mnist(const std::string& out_dir, const std::string& source_dir = kFashionMnistDir,
                                         bool overwrite = false);

// An image-folder tree -> a dataset file. With sub-folders, each is a class (sorted by name) and
// holds that class's images (searched recursively); without, the images directly in `source` are
// imported unlabelled. Images are PNG or JPEG, scaled so the shorter side is `size` and centre-cropped.
struct FolderImportOptions {
  int64_t size = 64;
  int64_t channels = 3;       // 1: gray, 3: RGB
  std::string captions_path;  // optional TSV (or CSV) of `path<TAB>caption`, paths relative to source
  bool overwrite = false;     // replace an existing output that an import did not write
};
struct FolderImportSummary {
  int64_t images = 0;
  std::vector<std::string> class_names;
  int64_t unused_captions = 0;  // caption lines whose image was not found under source
};
FolderImportSummary import_folder(const std::string& source, const std::string& out_path,
                                  const FolderImportOptions& options = {});

}  // namespace tessera::data
