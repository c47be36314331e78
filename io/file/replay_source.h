#pragma once
// Feeding files into the pipeline: read in 1 MiB chunks, frame documents, submit each chunk's
// documents (the pipeline gives the chunks to the workers in turn). Memory is bounded by the chunk size, the largest
// document, and the pipeline's in-flight limit, never by the file's size. A pipe or terminal is
// read as a live stream: each chunk is submitted once the stream has paused for 10 ms, so its
// events are processed as they come.

#include <string>
#include <string_view>

#include "engine/pipeline/pipeline.h"

namespace vigil::io {

struct replay_source {
  std::string path;        ///< file to read, "-" for stdin
  std::string origin;      ///< name used in errors and as datasource_path (default: path)
  std::string cluster;     ///< cluster stamped on the events
  std::string source_type = "file";
};

/// Reads the whole source into the pipeline. False (with a message on stderr) if it cannot be
/// opened or read; what was read before an I/O error is still processed.
bool replay_file(const replay_source& source, pipeline::pipeline& pl);

/// Feeds an in-memory buffer as if it were a file (tests, small inputs).
void replay_buffer(std::string_view data, const replay_source& source, pipeline::pipeline& pl);

} // namespace vigil::io
