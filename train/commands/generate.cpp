// `tessera generate CKPT IMAGES.h5 --prompt "caption"`: text from a vision-language model
// (nn::ImageToText) for images of a data set, printed or written as JSON lines; for detect prompts
// the boxes read from the output, and optionally a PNG with the predicted and the true boxes.
#include <fmt/format.h>

#include <fstream>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "data/scene_report.h"
#include "kernels/threads.h"
#include "nn/location_tokens.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/json.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

int run_generate(const std::vector<std::string>& args) {
  std::string checkpoint, images_path, out_path, png_path;
  std::vector<std::string> prompts;
  int64_t first = 0, count = 1, beam = 0, max_new = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      return args[++i];
    };
    if (a == "--prompt") prompts.push_back(value());
    else if (a == "--index") first = train::parse_count(a, value(), 0);
    else if (a == "--count") count = train::parse_count(a, value(), 1);
    else if (a == "--beam") beam = train::parse_count(a, value(), 1);
    else if (a == "--max-new-tokens") max_new = train::parse_count(a, value(), 1);
    else if (a == "--out") out_path = value();
    else if (a == "--png") png_path = value();
    else if (a == "--threads") kernels::set_num_threads(train::parse_threads(a, value()));
    else if (a == "--precision") train::set_precision(a, value());
    else if (a.rfind("--", 0) == 0) fail("unknown option '{}' (see tessera generate --help)", a);
    else if (checkpoint.empty()) checkpoint = a;
    else if (images_path.empty()) images_path = a;
    else fail("unexpected argument '{}'", a);
  }
  if (checkpoint.empty() || images_path.empty() || prompts.empty())
    fail("give a checkpoint, an image file and a --prompt, e.g. tessera generate runs/paligemma_scenes/last.h5 "
         "datasets/scenes/test.h5 --prompt caption");
  const std::shared_ptr<data::Dataset> set = data::Dataset::open(images_path, int64_t(1) << 30, /*clips=*/true);
  if (!png_path.empty() && set->info().frames > 1)
    fail("--png draws single scenes, but {} holds clips of {} frames", images_path, set->info().frames);
  const train::TrainedModel model = train::TrainedModel::load(checkpoint, &set->info());
  nn::ImageToText& vlm = model.need<nn::ImageToText>("generate text from images (tessera generate)");
  if (first + count > set->size())
    fail("--index {} --count {} asks for images {}..{}, but {} holds {}", first, count, first, first + count - 1,
         images_path, set->size());
  nn::GenerationOptions options = vlm.default_generation();
  if (beam > 0) options.beam = beam;
  if (max_new > 0) options.max_new_tokens = max_new;

  std::vector<int64_t> indices;
  for (int64_t i = first; i < first + count; ++i) indices.push_back(i);
  const Tensor images = train::normalised_images(*set, indices, model.image_loader());
  std::vector<nn::TextPrompt> asked;
  for (int64_t k = 0; k < count; ++k)
    for (const std::string& p : prompts) asked.push_back({k, train::fill_object_prompt(p, *set, indices[size_t(k)], vlm.object_names())});
  const std::vector<nn::GeneratedText> out = vlm.generate_text(images, asked, options);

  std::ofstream jsonl;
  if (!out_path.empty()) {
    jsonl.open(out_path, std::ios::trunc);
    if (!jsonl) fail("--out {}: cannot write", out_path);
  }
  std::vector<std::vector<data::LabelledBox>> drawn(static_cast<size_t>(count));
  bool any_detect = false;
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t index = indices[size_t(asked[i].image)];
    train::JsonObject line;
    line.add("index", index).add("prompt", asked[i].text).add("output", out[i].text);
    line.add("finished", int64_t(out[i].tokens.finished)).add("log_prob", out[i].tokens.score);
    std::string detected;
    if (asked[i].text.rfind("detect", 0) == 0) {
      any_detect = true;
      const nn::ParsedDetections parsed = nn::parse_detections(out[i].text, vlm.object_names(), vlm.location_grid());
      std::string boxes = "[";
      for (const nn::LabelledBox& o : parsed.objects) {
        boxes += fmt::format("{}{{\"class\": {}, \"box\": [{}, {}, {}, {}]}}", boxes.size() > 1 ? ", " : "",
                             train::JsonObject::quote(o.class_name), o.box.y_min, o.box.x_min, o.box.y_max, o.box.x_max);
        drawn[size_t(asked[i].image)].push_back({o.class_name, float(o.box.y_min), float(o.box.x_min),
                                                  float(o.box.y_max), float(o.box.x_max)});
        detected += fmt::format("\n    {} at y {:.1f}..{:.1f}, x {:.1f}..{:.1f}", o.class_name, o.box.y_min, o.box.y_max,
                                o.box.x_min, o.box.x_max);
      }
      line.add_json("detections", boxes + "]").add("malformed_segments", parsed.malformed());
      if (parsed.malformed() > 0) detected += fmt::format("\n    ({} malformed segments skipped)", parsed.malformed());
    }
    if (jsonl.is_open()) jsonl << line.str() << '\n';
    else fmt::print("image {}: {} -> {}{}{}\n", index, asked[i].text, out[i].text, out[i].tokens.finished ? "" : " [cut]",
                    detected);
  }
  if (jsonl.is_open()) fmt::print("{} generations for {} images written to {}\n", out.size(), count, out_path);
  if (!png_path.empty()) {
    if (!any_detect) fail("--png draws detections: give a --prompt that starts with 'detect'");
    data::write_detection_grid(png_path, *set, indices, drawn);
    fmt::print("predicted (red) and true (green) boxes drawn in {}\n", png_path);
  }
  return 0;
}

const CommandRegistration registration{
    {"generate", "generate text (captions, answers, detections) from a vision-language model",
     "usage: tessera generate CKPT IMAGES.h5 --prompt TEXT [--prompt TEXT ...] [--index I] [--count N]\n"
     "                        [--beam K] [--max-new-tokens N] [--out FILE.jsonl] [--png FILE.png] [--threads N]\n"
     "                        [--precision fp32|bf16]\n\n"
     "Rebuilds the model of CKPT (any model that turns images and a prompt into text, e.g. model.type vlm)\n"
     "and generates for images I..I+N-1 of IMAGES.h5 (default: image 0) and each prompt: greedy decoding,\n"
     "or beam search of width K, as the recipe's model.generation unless given. Prompts as the model was\n"
     "trained: \"caption\", \"answer how many bags are there?\", \"count bag\", \"detect bag ; coat\";\n"
     "{objects} in a prompt becomes the image's true classes (\"detect {objects}\" is the evaluation's\n"
     "detect prompt). Prints each output (detections also as boxes in pixels), or with --out writes one\n"
     "JSON object per line: index, prompt, output, finished, log_prob, and for detect prompts the parsed\n"
     "detections and the number of malformed segments (counted, never an error). --png draws the images\n"
     "with the predicted boxes (red, labelled) and the true ones (green).\n"
     "--precision fp32|bf16 runs the matrix products (linear layers, convolutions, attention) in fp32\n"
     "(default) or with bf16 operands and fp32 sums; the checkpoint is fp32 either way.",
     run_generate}};

}  // namespace
}  // namespace tessera::cli
