#include "train/report/run_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/contrastive.h"
#include "autograd/random.h"
#include "data/dataset.h"
#include "data/draw.h"
#include "data/png.h"
#include "data/scene_report.h"
#include "nn/capabilities.h"
#include "nn/contrastive_metrics.h"
#include "nn/location_tokens.h"
#include "train/atomic_file.h"
#include "train/build_info.h"
#include "train/json_value.h"
#include "train/report/html_page.h"
#include "train/report/line_chart.h"
#include "train/report/rollout.h"
#include "train/trained_model.h"

namespace tessera::train {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// metrics.jsonl as columns: split -> key -> (step, value) in file order.
using Columns = std::map<std::string, std::map<std::string, ChartSeries>>;

Columns read_metrics(const fs::path& path, std::string& problems) {
  Columns out;
  std::ifstream in(path);
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    try {
      const JsonValue v = JsonValue::parse(line, fmt::format("{} line {}", path.string(), line_no));
      const JsonValue* split = v.find("split");
      const JsonValue* step = v.find("step");
      if (!split || !step || !split->is_string() || !step->is_number()) continue;
      for (const auto& [key, value] : v.as_object("a metrics line")) {
        if (key == "step" || key == "split" || key == "epoch" || !value.is_number()) continue;
        ChartSeries& s = out[split->as_string("split")][key];
        s.name = key;
        s.x.push_back(step->as_number("step"));
        s.y.push_back(value.as_number(key));
      }
    } catch (const Error& e) {
      problems += std::string(e.what()) + "\n";  // a line cut by a kill: skipped, said
    }
  }
  return out;
}

void charts(HtmlPage& page, const std::map<std::string, ChartSeries>& columns, const std::vector<std::string>& skip) {
  std::string html = "<div class=\"charts\">";
  for (const auto& [key, series] : columns) {
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    // The learning rate's schedule reads best as it is; the rest choose (log where values span decades).
    html += line_chart_svg(key, {series}, key == "lr" ? YScale::linear : YScale::automatic);
  }
  page.raw(html + "</div>");
}

// Gray or RGB pixels [H, W, C] of image `index`, as RGB.
std::vector<uint8_t> rgb_of(const data::Dataset& set, int64_t index) {
  const data::DatasetInfo& info = set.info();
  std::vector<uint8_t> raw(size_t(set.image_bytes()));
  set.read_images({index}, raw.data());
  std::vector<uint8_t> rgb(size_t(info.height * info.width * 3));
  for (int64_t p = 0; p < info.height * info.width; ++p)
    for (int64_t c = 0; c < 3; ++c) rgb[size_t(p * 3 + c)] = raw[size_t(p * info.channels + (info.channels == 3 ? c : 0))];
  return rgb;
}

int zoom_for(int64_t side) { return int(std::clamp<int64_t>(160 / std::max<int64_t>(side, 1), 1, 8)); }

// ---- classifiers -----------------------------------------------------------------------------

void confusion_section(HtmlPage& page, const TrainedModel& model, nn::ImageToLogits& classifier,
                       const std::shared_ptr<data::Dataset>& set, const std::string& path, int64_t limit) {
  page.section("confusion", "Confusion matrix");
  if (!set->info().has_labels) return page.paragraph(path + " has no labels: no confusion matrix.");
  const int64_t k = model.shape().num_classes;
  std::vector<std::vector<double>> counts(size_t(k), std::vector<double>(size_t(k), 0));
  int64_t seen = 0;
  model.for_each_batch(set, path, 0, limit, [&](const data::Batch& b) {
    const std::vector<int64_t> predicted = argmax(classifier.logits(b.images), 1).to_vector<int64_t>();
    const std::vector<int64_t> truth = b.labels.to_vector<int64_t>();
    for (size_t i = 0; i < predicted.size(); ++i)
      if (truth[i] >= 0 && truth[i] < k && predicted[i] < k) counts[size_t(truth[i])][size_t(predicted[i])] += 1, ++seen;
  });
  std::vector<std::string> names = set->info().class_names;
  names.resize(size_t(k));
  std::vector<std::string> rows;
  double right = 0;
  for (int64_t c = 0; c < k; ++c) {
    double total = 0;
    for (double v : counts[size_t(c)]) total += v;
    right += counts[size_t(c)][size_t(c)];
    rows.push_back(fmt::format("{} ({:.1f} %)", names[size_t(c)], total > 0 ? 100 * counts[size_t(c)][size_t(c)] / total : 0.0));
  }
  page.paragraph(fmt::format("The first {} images of {}: rows are the true class (with its accuracy), columns the "
                             "predicted one. Accuracy {:.2f} %.", seen, path, seen ? 100 * right / double(seen) : 0.0));
  page.heat_table(rows, names, counts, "true \\ predicted");
}

// ---- dual encoders ---------------------------------------------------------------------------

void dual_encoder_sections(HtmlPage& page, const TrainedModel& model, nn::ImageToEmbedding& images,
                           nn::TextToEmbedding& texts, const std::shared_ptr<data::Dataset>& set, const std::string& path,
                           int64_t limit) {
  page.section("zero_shot", "Zero-shot accuracy per class");
  const data::DatasetInfo& info = set->info();
  std::vector<std::string> names = model.recipe().section("data").strings("class_names");
  if (names.size() != info.class_names.size()) names = info.class_names;
  if (!info.has_labels || names.size() < 2) {
    page.paragraph(path + " has no class labels: zero-shot accuracy needs them.");
  } else {
    const Tensor classes = nn::zero_shot_class_embeddings(texts, names, texts.zero_shot_templates());
    std::vector<double> right(names.size(), 0), total(names.size(), 0);
    model.for_each_batch(set, path, 0, limit, [&](const data::Batch& b) {
      const Tensor sims = matmul(l2_normalize_rows(images.embed_images(b.images)), classes.t());
      const std::vector<int64_t> predicted = argmax(sims, 1).to_vector<int64_t>(), truth = b.labels.to_vector<int64_t>();
      for (size_t i = 0; i < predicted.size(); ++i) total[size_t(truth[i])] += 1, right[size_t(truth[i])] += predicted[i] == truth[i];
    });
    std::vector<std::vector<double>> rows;
    std::vector<std::string> row_names;
    double all_right = 0, all = 0;
    for (size_t c = 0; c < names.size(); ++c) {
      rows.push_back({total[c] > 0 ? 100 * right[c] / total[c] : 0.0});
      row_names.push_back(fmt::format("{} ({:.0f} images)", names[c], total[c]));
      all_right += right[c], all += total[c];
    }
    page.paragraph(fmt::format("Each of the first {} images of {} against the prompt ensemble of every class ({} "
                               "templates); overall {:.2f} %.", int64_t(all), path, texts.zero_shot_templates().size(),
                               all > 0 ? 100 * all_right / all : 0.0));
    page.heat_table(row_names, {"accuracy %"}, rows, "class", 100, 1);
  }

  page.section("similarity", "Image-text similarity");
  std::vector<int64_t> shown;
  std::vector<std::string> captions;
  const int64_t n = std::min<int64_t>(10, set->size());
  if (info.has_captions) {
    for (int64_t i = 0; i < n; ++i) shown.push_back(i), captions.push_back(set->caption(i));
  } else if (info.has_labels && names.size() >= 2) {
    // One image of each class (as far as the first images have them), against its class's first prompt.
    std::set<int64_t> classes_seen;
    for (int64_t i = 0; i < set->size() && int64_t(shown.size()) < std::min<int64_t>(10, int64_t(names.size())); ++i)
      if (classes_seen.insert(set->label(i)).second) shown.push_back(i);
    const std::string t = texts.zero_shot_templates().empty() ? "{}" : texts.zero_shot_templates()[0];
    for (int64_t i : shown) {
      std::string text = t;
      const size_t at = text.find("{}");
      if (at != std::string::npos) text.replace(at, 2, names[size_t(set->label(i))]);
      captions.push_back(text);
    }
  }
  if (shown.empty()) return page.paragraph(path + " has neither captions nor labels to compare images with.");
  const Tensor x = normalised_images(*set, shown, model.image_loader());
  const Tensor sims = matmul(l2_normalize_rows(images.embed_images(x)), l2_normalize_rows(texts.embed_texts(captions)).t());
  const std::vector<float> v = sims.contiguous().to_vector<float>();
  std::vector<std::vector<double>> rows(shown.size());
  std::vector<std::string> row_names, column_names;
  for (size_t i = 0; i < shown.size(); ++i) {
    row_names.push_back(fmt::format("image {}", shown[i]));
    column_names.push_back(fmt::format("text {}", i));
    for (size_t j = 0; j < shown.size(); ++j) rows[i].push_back(v[i * shown.size() + j]);
  }
  page.paragraph("Cosine similarity of image i (rows) and text j (columns); the diagonal pairs belong together. Texts:");
  std::string list = "<ol start=\"0\">";
  for (const std::string& c : captions) list += "<li>" + html_escape(c) + "</li>";
  page.raw(list + "</ol>");
  page.heat_table(row_names, column_names, rows, "image \\ text", 1, 2);
}

// ---- attention rollout ------------------------------------------------------------------------

void attention_section(HtmlPage& page, const TrainedModel& model, nn::ImageToAttention& tower,
                       const std::shared_ptr<data::Dataset>& set, int64_t count) {
  page.section("attention", "Attention rollout");
  const data::DatasetInfo& info = set->info();
  std::vector<int64_t> shown;
  for (int64_t i = 0; i < std::min(count, set->size()); ++i) shown.push_back(i);
  Tensor x = normalised_images(*set, shown, model.image_loader());
  if (info.frames > 1) x = x.select(1, 0).contiguous();  // a clip's first frame (what rgb_of shows)
  const nn::ImageAttention a = tower.image_attention(x);
  if (a.layers.empty()) return page.paragraph("The image tower has no attention layers.");
  if (info.frames > 1) page.paragraph(fmt::format("Clips of {} frames: the first frame of each.", info.frames));
  page.paragraph(fmt::format("What the image tower's {} (the {}) draws on, by attention rollout over its {} blocks: each "
                             "test image, then the same image with the patches coloured by their share (red = most).",
                             a.cls_first ? "CLS token" : "pooled embedding", a.cls_first ? "class read-out" :
                             "mean of the patch tokens", a.layers.size()));
  const int64_t h = info.height, w = info.width, gh = a.grid_height, gw = a.grid_width;
  for (size_t k = 0; k < shown.size(); ++k) {
    const std::vector<double> share = attention_rollout(a, int64_t(k));
    const double top = *std::max_element(share.begin(), share.end());
    const std::vector<uint8_t> rgb = rgb_of(*set, shown[k]);
    std::vector<uint8_t> pair(size_t(h * (2 * w + 2) * 3), 255);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const int64_t cell = std::min(gh - 1, y * gh / h) * gw + std::min(gw - 1, x * gw / w);
        const double t = top > 0 ? share[size_t(cell)] / top : 0;
        const double alpha = 0.7 * t;  // the patch's share, as red laid over the image
        for (int64_t c = 0; c < 3; ++c) {
          const uint8_t p = rgb[size_t((y * w + x) * 3 + c)];
          pair[size_t((y * (2 * w + 2) + x) * 3 + c)] = p;
          pair[size_t((y * (2 * w + 2) + w + 2 + x) * 3 + c)] = uint8_t(std::lround((1 - alpha) * p + alpha * (c == 0 ? 255 : 0)));
        }
      }
    page.png(data::encode_png(pair.data(), h, 2 * w + 2, 3), zoom_for(h), fmt::format("test image {}", shown[k]));
  }
}

// ---- VQ codebooks -----------------------------------------------------------------------------

void codebook_sections(HtmlPage& page, const TrainedModel& model, nn::ImageToTokens& tokenizer, const Columns& metrics,
                       const std::shared_ptr<data::Dataset>& set, const std::string& path, int64_t limit, int64_t shown) {
  const data::DatasetInfo& info = set->info();
  const nn::TokenGrid grid = tokenizer.token_grid(info.height, info.width);
  page.section("codebook", "Codebook usage");
  std::vector<double> counts(size_t(grid.codebook_size), 0);
  struct Place {
    int64_t image, y, x;
  };
  std::vector<std::vector<Place>> places(size_t(grid.codebook_size));
  int64_t images = 0;
  model.for_each_batch(set, path, 0, limit, [&](const data::Batch& b) {
    const std::vector<int64_t> codes = tokenizer.tokenize(b.images).to_vector<int64_t>();
    const int64_t per = grid.height * grid.width;
    for (size_t i = 0; i < b.indices.size(); ++i, ++images)
      for (int64_t c = 0; c < per; ++c) {
        const int64_t code = codes[i * size_t(per) + size_t(c)];
        if (code < 0 || code >= grid.codebook_size) continue;
        counts[size_t(code)] += 1;
        if (int64_t(places[size_t(code)].size()) < 8) places[size_t(code)].push_back({b.indices[i], c / grid.width, c % grid.width});
      }
  });
  double total = 0, entropy = 0;
  int64_t used = 0;
  for (double c : counts) total += c, used += c > 0;
  for (double c : counts)
    if (c > 0) entropy -= c / total * std::log(c / total);
  page.paragraph(fmt::format("{} codes of {} used by the {} tokens ({}x{} per image) of the first {} images of {}; "
                             "perplexity {:.1f} (the number of equally used codes with the same entropy).",
                             used, grid.codebook_size, int64_t(total), grid.height, grid.width, images, path, std::exp(entropy)));
  std::vector<double> sorted = counts;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  page.raw(bar_chart_svg("tokens per code, most used first", sorted, true));
  const auto eval = metrics.find("eval");
  std::vector<ChartSeries> over_time;
  if (eval != metrics.end())
    for (const char* key : {"perplexity", "codebook_usage"})
      if (const auto it = eval->second.find(key); it != eval->second.end()) over_time.push_back(it->second);
  std::string html = "<div class=\"charts\">";
  for (const ChartSeries& s : over_time) html += line_chart_svg(s.name + " over steps", {s});
  page.raw(html + "</div>");
  if (over_time.empty()) page.paragraph("(perplexity and codebook_usage were not among the run's eval metrics)");

  page.section("codes", "What the most used codes look like");
  std::vector<int64_t> order(counts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return counts[size_t(a)] > counts[size_t(b)]; });
  const int64_t rows = std::min<int64_t>(std::max<int64_t>(shown, 8), used), ds = grid.downsample, cols = 8, gap = 2;
  if (rows == 0) return page.paragraph("No code was used.");
  const int64_t cell = ds + gap, W = cols * cell + gap, H = rows * cell + gap;
  std::vector<uint8_t> sheet(size_t(W * H * 3), 40);
  std::map<int64_t, std::vector<uint8_t>> images_read;  // the most used codes share images: read each once
  for (int64_t r = 0; r < rows; ++r) {
    const auto& at = places[size_t(order[size_t(r)])];
    for (int64_t c = 0; c < int64_t(at.size()) && c < cols; ++c) {
      auto [it, fresh] = images_read.try_emplace(at[size_t(c)].image);
      if (fresh) it->second = rgb_of(*set, at[size_t(c)].image);
      const std::vector<uint8_t>& rgb = it->second;
      for (int64_t y = 0; y < ds; ++y)
        for (int64_t x = 0; x < ds; ++x) {
          const int64_t sy = at[size_t(c)].y * ds + y, sx = at[size_t(c)].x * ds + x;
          if (sy >= info.height || sx >= info.width) continue;
          for (int64_t ch = 0; ch < 3; ++ch)
            sheet[size_t(((gap + r * cell + y) * W + gap + c * cell + x) * 3 + ch)] = rgb[size_t((sy * info.width + sx) * 3 + ch)];
        }
    }
  }
  std::string which;
  for (int64_t r = 0; r < rows; ++r) which += fmt::format("{}{} ({:.0f})", r ? ", " : "", order[size_t(r)], counts[size_t(order[size_t(r)])]);
  page.paragraph(fmt::format("Each row: up to 8 image cells ({}x{} pixels, the area one token stands for) that the "
                             "tokenizer maps to one code, for the {} most used codes, in order (code and uses): {}.",
                             ds, ds, rows, which));
  page.png(data::encode_png(sheet.data(), H, W, 3), std::max(2, zoom_for(H) / 2), "cells per code");
}

// ---- generated samples ------------------------------------------------------------------------

// A VAE's prior samples: latents drawn from N(0, I) on the token grid, decoded (a fixed seed, so
// that successive reports of a run show the same draws improving).
void generated_section(HtmlPage& page, nn::TokensToImage& decoder, const data::DatasetInfo& info) {
  page.section("generated", "Generated samples");
  const nn::TokenGrid grid = decoder.token_grid(info.height, info.width);
  constexpr int64_t n = 16;
  Generator gen(0);
  const Tensor images = decoder.decode(randn({n, grid.height, grid.width, grid.channels}, gen)).contiguous();
  const int64_t c = images.size(1), h = images.size(2), w = images.size(3), gap = 2, per_row = 8;
  const int64_t rows = (n + per_row - 1) / per_row, W = per_row * (w + gap) + gap, H = rows * (h + gap) + gap;
  const std::vector<float> v = images.to_vector<float>();
  std::vector<uint8_t> sheet(size_t(W * H * 3), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < 3; ++ch) {
          const float p = v[size_t(((i * c + (c == 3 ? ch : 0)) * h + y) * w + x)];
          sheet[size_t(((gap + (i / per_row) * (h + gap) + y) * W + gap + (i % per_row) * (w + gap) + x) * 3 + ch)] =
              uint8_t(std::lround(255 * std::clamp(p, 0.f, 1.f)));
        }
  page.paragraph(fmt::format("{} images decoded from latents drawn from the prior N(0, I) on the {}x{}x{} token grid.",
                             n, grid.height, grid.width, grid.channels));
  page.png(data::encode_png(sheet.data(), H, W, 3), 3, "samples from the prior");
}

// ---- vision-language models -------------------------------------------------------------------

void generations_section(HtmlPage& page, const TrainedModel& model, nn::ImageToText& vlm,
                         const std::shared_ptr<data::Dataset>& set, const fs::path& run_dir, int64_t count) {
  page.section("generations", "Generations");
  std::vector<int64_t> shown;
  for (int64_t i = 0; i < std::min(count, set->size()); ++i) shown.push_back(i);
  const bool scenes = set->info().has_objects, clips = set->info().frames > 1;
  std::vector<std::string> prompts{"caption"};
  if (scenes) prompts.push_back(clips ? "detect in frame 1: {objects}" : "detect {objects}");
  std::vector<nn::TextPrompt> asked;
  for (size_t k = 0; k < shown.size(); ++k)
    for (const std::string& p : prompts) asked.push_back({int64_t(k), scenes ? fill_object_prompt(p, *set, shown[k], vlm.object_names()) : p});
  if (scenes && set->info().has_captions)
    for (size_t k = 0; k < shown.size(); ++k) {
      const std::vector<std::string> q = set->questions(shown[k]);
      if (!q.empty()) asked.push_back({int64_t(k), "answer " + q[0]});
    }
  const std::vector<nn::GeneratedText> out =
      vlm.generate_text(normalised_images(*set, shown, model.image_loader()), asked, vlm.default_generation());
  std::vector<std::vector<data::LabelledBox>> drawn(shown.size());
  std::string table = "<table class=\"text\"><tr><th>image</th><th>prompt</th><th>output</th><th>expected</th></tr>";
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t k = asked[i].image, index = shown[size_t(k)];
    std::string expected;
    if (asked[i].text == "caption" && set->info().has_captions) expected = set->caption(index);
    if (asked[i].text.rfind("answer ", 0) == 0) expected = set->answers(index).at(0);
    if (asked[i].text.rfind("detect", 0) == 0)
      for (const nn::LabelledBox& o : nn::parse_detections(out[i].text, vlm.object_names(), vlm.location_grid()).objects)
        drawn[size_t(k)].push_back({o.class_name, float(o.box.y_min), float(o.box.x_min), float(o.box.y_max), float(o.box.x_max)});
    table += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", index, html_escape(asked[i].text),
                         html_escape(out[i].text), html_escape(expected));
  }
  page.paragraph(fmt::format("Greedy{} generations for the first {} test images.", vlm.default_generation().beam > 1 ?
                             " (beam)" : "", shown.size()));
  page.raw(table + "</table>");
  if (scenes && !clips) {  // the detection grid draws single scenes
    const fs::path png = run_dir / "samples" / "detections_last.png";
    fs::create_directories(png.parent_path());
    data::write_detection_grid(png.string(), *set, shown, drawn);
    const std::string bytes = read_text(png);
    page.png(bytes, 1, "predicted boxes (red) and true ones (green), " + png.string());
  }
}

// Runs one analysis; a failure is reported in the page, never the end of the report.
template <class F>
void guarded(HtmlPage& page, const std::string& what, F&& body) {
  try {
    body();
  } catch (const Error& e) {
    page.paragraph(what + " could not be made: " + e.what());
  }
}

}  // namespace

std::string write_run_report(const std::string& run_dir, const ReportOptions& options) {
  const fs::path dir = run_dir;
  if (!fs::is_directory(dir)) fail("report: {} is not a run folder", run_dir);
  const fs::path recipe_path = dir / "recipe.yaml", metrics_path = dir / "metrics.jsonl";
  if (!fs::exists(recipe_path)) fail("report: {} has no recipe.yaml; is it a run folder (tessera train --run-dir)?", run_dir);
  const fs::path checkpoint = options.checkpoint.empty() ? dir / "last.h5" : fs::path(options.checkpoint);
  const fs::path out = options.out.empty() ? dir / "report.html" : fs::path(options.out);

  std::string problems;
  const Columns metrics = read_metrics(metrics_path, problems);
  // The model, built for its evaluation set (scene models need the set's object classes).
  std::unique_ptr<TrainedModel> model;
  std::shared_ptr<data::Dataset> set;
  std::string model_problem, eval_path;
  if (fs::exists(checkpoint)) {
    try {
      eval_path = TrainedModel::stored_recipe(checkpoint.string()).section("data").string("eval");
      if (!eval_path.empty()) set = data::Dataset::open(eval_path, int64_t(1) << 30, /*clips=*/true);
      model = std::make_unique<TrainedModel>(TrainedModel::load(checkpoint.string(), set ? &set->info() : nullptr));
    } catch (const Error& e) {
      model_problem = e.what();
    }
  } else {
    model_problem = checkpoint.string() + " does not exist yet";
  }
  const std::string type = model ? model->type() : "";
  HtmlPage page(fmt::format("Tessera run {}{}", run_dir, type.empty() ? "" : " (" + type + ")"));

  page.section("summary", "Summary");
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  page.paragraph(fmt::format("Run folder {}; report written {}.", run_dir, when));
  if (model) page.paragraph(fmt::format("Checkpoint {}: a '{}' model after {} steps.", checkpoint.string(), type, model->step()));
  else page.paragraph("No model analyses: " + model_problem + ".");
  if (const auto eval = metrics.find("eval"); eval != metrics.end()) {
    std::vector<std::string> names;
    std::vector<std::vector<double>> values;
    for (const auto& [key, s] : eval->second) names.push_back(key), values.push_back({s.y.back()});
    page.paragraph(fmt::format("Last evaluation (step {:.0f}):", eval->second.begin()->second.x.back()));
    std::string table = "<table class=\"heat\">";
    for (size_t i = 0; i < names.size(); ++i)
      table += fmt::format("<tr><th>{}</th><td>{:.6g}</td></tr>", html_escape(names[i]), values[i][0]);
    page.raw(table + "</table>");
  }
  page.paragraph("This machine (tessera info):");
  page.preformatted(build_info_text());
  if (!problems.empty()) page.paragraph("Lines of metrics.jsonl skipped: " + problems);

  page.section("recipe", "Recipe (resolved)");
  page.preformatted(read_text(recipe_path));

  page.section("training", "Training curves");
  if (const auto train = metrics.find("train"); train != metrics.end()) charts(page, train->second, {"elapsed_s"});
  else page.paragraph("No training lines in metrics.jsonl yet.");

  page.section("evaluation", "Evaluation metrics over steps");
  if (const auto eval = metrics.find("eval"); eval != metrics.end()) charts(page, eval->second, {});
  else page.paragraph("No evaluation yet.");

  page.section("samples", "Samples");
  std::vector<fs::path> samples;
  if (fs::is_directory(dir / "samples"))
    for (const auto& e : fs::directory_iterator(dir / "samples"))
      if (e.path().extension() == ".png" && e.path().filename() != "detections_last.png") samples.push_back(e.path());
  std::sort(samples.begin(), samples.end());
  // NAME_last.png repeats the newest NAME_step_*.png: shown only when there is no step file.
  const auto has_steps = [&](const std::string& stem) {
    return std::any_of(samples.begin(), samples.end(), [&](const fs::path& p) {
      return p.filename().string().rfind(stem + "_step_", 0) == 0;
    });
  };
  samples.erase(std::remove_if(samples.begin(), samples.end(), [&](const fs::path& p) {
                  const std::string name = p.stem().string();
                  return name.size() > 5 && name.substr(name.size() - 5) == "_last" && has_steps(name.substr(0, name.size() - 5));
                }), samples.end());
  if (samples.empty()) page.paragraph("This run wrote no sample images (samples/).");
  for (const fs::path& p : samples) page.png(read_text(p), 3, p.filename().string());

  if (model && !set) page.paragraph("No model analyses: the recipe has no data.eval to look at.");
  if (model && set) {
    {
      NoGradGuard no_grad;
      const int64_t limit = options.analysis_images, shown = options.shown_images;
      if (auto* c = model->find<nn::ImageToLogits>())
        guarded(page, "The confusion matrix", [&] { confusion_section(page, *model, *c, set, eval_path, limit); });
      auto* images = model->find<nn::ImageToEmbedding>();
      auto* texts = model->find<nn::TextToEmbedding>();
      if (images && texts)
        guarded(page, "The zero-shot analysis", [&] { dual_encoder_sections(page, *model, *images, *texts, set, eval_path, limit); });
      if (auto* a = model->find<nn::ImageToAttention>())
        guarded(page, "The attention rollout", [&] { attention_section(page, *model, *a, set, shown); });
      if (auto* t = model->find<nn::ImageToTokens>(); t && t->token_grid(set->info().height, set->info().width).hard())
        guarded(page, "The codebook analysis", [&] { codebook_sections(page, *model, *t, metrics, set, eval_path, limit, shown); });
      if (auto* d = model->find<nn::TokensToImage>(); d && d->token_grid(set->info().height, set->info().width).kind == "gaussian")
        guarded(page, "The generated samples", [&] { generated_section(page, *d, set->info()); });
      if (auto* v = model->find<nn::ImageToText>())
        guarded(page, "The generations", [&] { generations_section(page, *model, *v, set, dir, std::min<int64_t>(shown, 4)); });
    }
  }

  if (!out.parent_path().empty()) fs::create_directories(out.parent_path());
  write_text_atomically(out, page.str());
  return out.string();
}

}  // namespace tessera::train
