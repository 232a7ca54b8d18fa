#pragma once
// Small text files written so that a kill or a full disk leaves the old file or the new one,
// never a torn one: a temporary file beside the target, checked, then renamed into place.
#include <filesystem>
#include <string>

namespace tessera::train {

// Throws naming the file when it cannot be written (a missing folder, a full disk).
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace tessera::train
