#pragma once
// Reading audit files (or standard input) as a stream: the file is read in chunks into one
// padded buffer and handed to an engine::reader, so memory stays bounded by the largest document,
// not by the file's size.

#include <cstddef>
#include <string>
#include <string_view>

#include "engine/event/reader.h"

namespace vigil::io {

struct file_read_options {
  std::size_t chunk_bytes = 1u << 20; ///< bytes read per system call
};

/// Outcome of reading one file.
struct file_read_result {
  bool ok = true;    ///< false: the file could not be opened or read (see error)
  std::string error; ///< "path: No such file or directory"
  std::size_t bytes = 0;
};

/// Reads `path` ("-" for standard input) to the end, feeding every complete document to `reader`
/// (which is reset first) and its events and errors to `sink`.
file_read_result read_file(const std::string& path, engine::reader& reader, engine::event_sink& sink,
                           const file_read_options& options = {});

} // namespace vigil::io
