#pragma once
// Files written so that a kill or a full disk leaves the old file or the new one, never a torn
// one: everything goes to a temporary file beside the target, which is then moved into place.
#include <filesystem>
#include <string>

namespace tessera::train {

// Moves the finished `temp` onto `path`: fsyncs it, renames it, fsyncs the folder. On failure
// removes `temp` and throws "`what`: cannot move ... into place".
void move_into_place(const std::string& temp, const std::string& path, const std::string& what);

// A small text file (recipe.yaml, configs, reports) written through a temporary file and
// move_into_place. Throws naming the file when it cannot be written (a missing folder, a full disk).
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace tessera::train
