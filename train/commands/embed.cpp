// `tessera embed CKPT --text "a photo of a sneaker"`: the embedding of a text from the checkpoint of
// any model that embeds text (nn::TextToEmbedding: CLIP, SigLIP), printed as JSON (unit length, as
// dual encoders compare them, unless --raw).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autograd/ops/contrastive.h"
#include "autograd/engine.h"
#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "kernels/threads.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/json.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

int run_embed(const std::vector<std::string>& args) {
  std::string checkpoint, out;
  std::vector<std::string> texts;
  bool raw = false, overwrite = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--text" || a == "--threads" || a == "--out") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      if (a == "--text") texts.push_back(args[++i]);
      else if (a == "--out") out = args[++i];
      else kernels::set_num_threads(train::parse_threads(a, args[++i]));
    } else if (a == "--raw") {
      raw = true;
    } else if (a == "--overwrite") {
      overwrite = true;
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera embed --help)", a);
    } else if (checkpoint.empty()) {
      checkpoint = a;
    } else {
      fail("one checkpoint only (got '{}' and '{}')", checkpoint, a);
    }
  }
  if (checkpoint.empty() || texts.empty())
    fail("give a checkpoint and at least one --text, e.g. tessera embed runs/clip_fmnist/last.h5 --text \"a photo of a sneaker\"");
  const train::TrainedModel model = train::TrainedModel::load(checkpoint);
  auto& text_embedder = model.need<nn::TextToEmbedding>("embed text");
  NoGradGuard no_grad;
  Tensor e = text_embedder.embed_texts(texts);
  if (!raw) e = l2_normalize_rows(e);
  const std::vector<float> v = e.contiguous().to_vector<float>();
  const size_t d = size_t(e.size(1));
  if (!out.empty()) {
    // float32 [N, E] and the texts, for use elsewhere (h5py), never over the checkpoint.
    data::h5::refuse_same_file(checkpoint, out, "checkpoint");
    data::h5::refuse_data_set_as_output(out);
    data::h5::refuse_to_replace(out, "tessera embed", overwrite);
    const auto n = hsize_t(texts.size());
    data::h5::write_atomically(out, [&](hid_t file) {
      data::h5::RowWriter embeddings(file, "embeddings", H5T_IEEE_F32LE, {n, hsize_t(d)}, out);
      embeddings.write(H5T_NATIVE_FLOAT, 0, n, v.data());
      const data::h5::Handle type = data::h5::utf8_string_type();
      data::h5::RowWriter strings(file, "texts", type.get(), {n}, out);
      std::vector<const char*> c;
      for (const std::string& t : texts) c.push_back(t.c_str());
      strings.write(type.get(), 0, n, c.data());
      data::h5::write_attribute(file, "checkpoint", checkpoint);
      data::h5::write_attribute(file, "normalised", int64_t(raw ? 0 : 1));
      data::h5::mark_written_by(file, "tessera embed");
    });
    fmt::print("embeddings [{}, {}] of {} texts written to {}\n", n, d, n, out);
    return 0;
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> row(v.begin() + long(i * d), v.begin() + long((i + 1) * d));
    // Shortest round-trip digits, so the printed floats are the embedding exactly; text escaped.
    fmt::print("{{\"text\": {}, \"embedding\": [{}]}}\n", train::JsonObject::quote(texts[i]), fmt::join(row, ", "));
  }
  return 0;
}

const CommandRegistration registration{
    {"embed", "print the text embedding of a checkpoint that embeds text (CLIP, SigLIP)",
     "usage: tessera embed CKPT --text TEXT [--text TEXT ...] [--raw] [--out FILE.h5] [--overwrite]\n"
     "                     [--threads N]\n\n"
     "Tokenizes each TEXT with the model's byte tokenizer, runs the text tower and prints one JSON line\n"
     "per text: {\"text\": ..., \"embedding\": [...]}, the embedding L2-normalised (as the model compares\n"
     "embeddings) unless --raw; the floats to the last bit. --out writes `embeddings` float32 [N, E] and\n"
     "`texts` to an HDF5 file instead: never over the checkpoint or a data set, and over another\n"
     "existing file only when embed wrote it or with --overwrite.",
     run_embed}};

}  // namespace
}  // namespace tessera::cli
