#pragma once
// The Kubernetes audit webhook source: kube-apiserver POSTs EventList batches; vigil checks the
// request, splits the batch into events without a full decode on the loop thread (one simdjson
// parse to validate, decode_event for the checks), admits the batch into the
// pipeline or refuses it whole, and answers.
//
// Answers (see docs/webhook.md): 200 once every good event of the batch is admitted, with a JSON
// body naming the rejected items; 400 when nothing in the body is usable; 401 without the right
// bearer token; 404 other paths; 405 other methods; 413 over max_body_size; 415 a content type
// other than JSON; 429 (Retry-After) when the batch would pass the in-flight limit: nothing of it
// is taken; 503 while shutting down. A batch resent after it was admitted (lost answer) is not
// counted twice: a body (and cluster) seen recently is a resend, its items counted as
// duplicates. Never by auditID: clients of the apiserver choose it.
//
// Threading contract: precheck() and handle() run on the HTTP server's loop thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/pipeline/pipeline.h"
#include "io/http/server.h"

namespace vigil::io {

struct webhook_options {
  std::string path = "/audit/webhook/event"; ///< also serves path + "/<cluster>"
  std::vector<std::string> tokens;           ///< accepted bearer tokens; empty: no authentication
  bool require_client_cert = false;          ///< mTLS: 401 without a client certificate signed by the CA
  std::string cluster;                       ///< cluster stamped on events (a path suffix overrides)
  std::string name = "k8s-audit";            ///< source name in counters and error positions
  std::size_t dedupe_entries = 1u << 16;     ///< batch bodies remembered, to drop resends
  std::size_t max_document_bytes = 64u << 20; ///< per item, when a body must be split (not valid JSON as a whole)
};

class webhook {
 public:
  webhook(pipeline::pipeline& pl, webhook_options opts);
  ~webhook();
  webhook(const webhook&) = delete;
  webhook& operator=(const webhook&) = delete;

  /// Header checks: 404, 405, 401, 415. Returns 0 to read the body.
  int precheck(const http::request& req, http::response& res);
  /// The batch: 200, 400 or 429.
  void handle(http::request& req, http::response& res);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

} // namespace vigil::io
