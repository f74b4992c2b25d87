// Writing key material to disk without ever clobbering an existing file or leaving a private
// key readable by others.
#pragma once

#include <string>
#include <string_view>

namespace jwtgate::cli {

// Creates `path` with `mode` (O_EXCL unless `overwrite`) and writes `content`.
bool write_new_file(const std::string& path, std::string_view content, unsigned mode, bool overwrite,
                    std::string& error);

}  // namespace jwtgate::cli
