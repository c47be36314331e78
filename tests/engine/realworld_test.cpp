// Decodes every file under ../shared/data/realworld/ (real audit events published by public
// projects) and checks the event counts SOURCES.md lists and field values on a sample per source.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "engine/event/reader.h"
#include "engine/event/timestamp.h"
#include "io/file/file_source.h"
#include "tests/support/collect_sink.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;
using test::collect_sink;

const fs::path data_root = "../shared/data/realworld";

struct decoded_file {
  collect_sink sink;
  bool ok = false;
};

decoded_file decode_file(const fs::path& p) {
  decoded_file out;
  engine::reader reader;
  out.ok = io::read_file(p.string(), reader, out.sink).ok;
  return out;
}

// Every consumable file of a source directory (its top level; _meta/ and original/ excluded).
std::vector<fs::path> source_files(const std::string& source) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(data_root / source)) {
    if (entry.is_regular_file()) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

class realworld : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(data_root)) {
      GTEST_SKIP() << "no " << data_root << " (tests expect ../shared/data beside the project root)";
    }
  }
};

struct totals {
  std::size_t files = 0, events = 0, errors = 0;
};

totals count_source(const std::string& source) {
  totals t;
  for (const auto& f : source_files(source)) {
    decoded_file d = decode_file(f);
    EXPECT_TRUE(d.ok) << f;
    ++t.files;
    t.events += d.sink.events.size();
    t.errors += d.sink.errors.size();
  }
  return t;
}

TEST_F(realworld, source_totals_match_sources_md) {
  const totals falco = count_source("falco-trace-files");
  EXPECT_EQ(falco.files, 47u);
  EXPECT_EQ(falco.events, 51u);
  EXPECT_EQ(falco.errors, 1u);

  const totals panther = count_source("panther-analysis");
  EXPECT_EQ(panther.files, 33u); // SOURCES.md's table has 33 rows (its "34" counts one more)
  EXPECT_EQ(panther.events, 222u);
  EXPECT_EQ(panther.errors, 0u);

  const totals hub = count_source("crowdsec-hub");
  EXPECT_EQ(hub.files, 2u);
  EXPECT_EQ(hub.events, 2u);
  EXPECT_EQ(hub.errors, 0u);

  const totals a2r = count_source("audit2rbac");
  EXPECT_EQ(a2r.events, 37u);
  EXPECT_EQ(a2r.errors, 0u);

  const totals perf = count_source("perfspec-kubernetes-event-dataset");
  EXPECT_EQ(perf.events, 16563u);
  EXPECT_EQ(perf.errors, 0u);
}

// Panther: one label row per event, so the per-file event counts come from _meta/labels.jsonl.
TEST_F(realworld, panther_per_file_counts_match_labels) {
  std::map<std::string, std::size_t> expected;
  std::ifstream labels(data_root / "panther-analysis/_meta/labels.jsonl");
  std::string line;
  simdjson::dom::parser parser;
  while (std::getline(labels, line)) {
    std::string_view file;
    ASSERT_EQ(parser.parse(line).get_object()["file"].get(file), simdjson::SUCCESS);
    ++expected[std::string(file)];
  }
  ASSERT_EQ(expected.size(), 33u);
  for (const auto& f : source_files("panther-analysis")) {
    decoded_file d = decode_file(f);
    EXPECT_EQ(d.sink.events.size(), expected[f.filename().string()]) << f;
  }
}

TEST_F(realworld, falco_per_file_counts) {
  for (const auto& f : source_files("falco-trace-files")) {
    decoded_file d = decode_file(f);
    const std::string name = f.filename().string();
    if (name == "fal_01_003.json") {
      ASSERT_EQ(d.sink.errors.size(), 1u);
      EXPECT_EQ(d.sink.errors[0].kind, "wrong_type");
      EXPECT_EQ(d.sink.errors[0].line, 1u);
      EXPECT_TRUE(d.sink.events.empty());
    } else if (name == "create_configmap_sensitive_values.json") {
      EXPECT_EQ(d.sink.events.size(), 6u);
    } else {
      EXPECT_EQ(d.sink.events.size(), 1u) << name;
      EXPECT_TRUE(d.sink.errors.empty()) << name;
    }
  }
}

TEST_F(realworld, falco_sample_fields) {
  decoded_file exec = decode_file(data_root / "falco-trace-files/exec_pod.json");
  ASSERT_EQ(exec.sink.events.size(), 1u);
  const auto& e = exec.sink.events[0];
  EXPECT_EQ(e.resource, "pods");
  EXPECT_EQ(e.subresource, "exec");
  EXPECT_EQ(e.verb, "create");
  EXPECT_EQ(e.code, 101);
  EXPECT_EQ(e.api_version, "");

  decoded_file hostnet = decode_file(data_root / "falco-trace-files/create_nginx_pod_hostnetwork.json");
  ASSERT_EQ(hostnet.sink.events.size(), 1u);
  EXPECT_EQ(hostnet.sink.events[0].request_kind, "Pod");
  EXPECT_EQ(hostnet.sink.events[0].resource, "pods");

  decoded_file anon = decode_file(data_root / "falco-trace-files/anonymous_creates_namespace_foo.json");
  ASSERT_EQ(anon.sink.events.size(), 1u);
  EXPECT_EQ(anon.sink.events[0].user, "system:anonymous");
  EXPECT_EQ(anon.sink.events[0].api_version, "audit.k8s.io/v1beta1");
}

TEST_F(realworld, crowdsec_hub_sample_fields) {
  decoded_file exec = decode_file(data_root / "crowdsec-hub/k8s-audit-pod-exec-file.log");
  ASSERT_EQ(exec.sink.events.size(), 1u);
  const auto& e = exec.sink.events[0];
  EXPECT_EQ(e.user, "minikube-user");
  EXPECT_EQ(e.groups, (std::vector<std::string>{"system:masters", "system:authenticated"}));
  EXPECT_EQ(e.source_ip, "192.168.49.1");
  EXPECT_EQ(e.namespace_, "foo");
  EXPECT_EQ(e.name, "test-pod-1");
  EXPECT_EQ(e.subresource, "exec");
  EXPECT_EQ(e.code, 101);
  EXPECT_EQ(e.level, "Request");
  EXPECT_EQ(e.stage, "ResponseComplete");
  EXPECT_EQ(e.decision, "allow");
  EXPECT_EQ(engine::format_rfc3339_nano(e.received), "2023-05-17T15:08:22.76396Z");

  decoded_file priv = decode_file(data_root / "crowdsec-hub/k8s-audit-priv-pod-file.log");
  ASSERT_EQ(priv.sink.events.size(), 1u);
  EXPECT_EQ(priv.sink.events[0].request_kind, "Pod");
  EXPECT_EQ(priv.sink.events[0].level, "RequestResponse");
  EXPECT_EQ(priv.sink.events[0].code, 201);
  EXPECT_EQ(engine::format_rfc3339_nano(priv.sink.events[0].received), "2023-05-17T13:59:57.756152Z");
}

TEST_F(realworld, audit2rbac_impersonation_and_forbidden) {
  decoded_file d = decode_file(data_root / "audit2rbac/demo.log");
  ASSERT_EQ(d.sink.events.size(), 37u);
  const auto& first = d.sink.events[0];
  EXPECT_EQ(first.user, "system:admin");
  EXPECT_EQ(first.impersonated, "bob");
  EXPECT_EQ(first.source_ip, "::1");
  EXPECT_EQ(first.code, 403);
  EXPECT_EQ(first.reason, "Forbidden");
  std::size_t forbidden = 0, impersonated_sa = 0;
  for (const auto& e : d.sink.events) {
    forbidden += e.code == 403 ? 1 : 0;
    impersonated_sa += (e.code == 403 && e.impersonated == "system:serviceaccount:ns1:sa1") ? 1 : 0;
  }
  EXPECT_EQ(forbidden, 11u);
  EXPECT_EQ(impersonated_sa, 4u);
}

TEST_F(realworld, perfspec_sample_and_anonymous_probes) {
  decoded_file d = decode_file(data_root / "perfspec-kubernetes-event-dataset/audit-logs.reconstructed.jsonl");
  ASSERT_EQ(d.sink.events.size(), 16563u);
  const auto& first = d.sink.events[0];
  EXPECT_EQ(first.verb, "watch");
  EXPECT_EQ(first.user, "system:node:k8s-node-1-perfspec");
  EXPECT_EQ(first.resource, "configmaps");
  EXPECT_EQ(first.namespace_, "kube-flannel");
  EXPECT_EQ(first.code, 403);
  EXPECT_EQ(first.source_ip, "");
  EXPECT_EQ(engine::format_rfc3339_nano(first.received), "2023-01-27T18:28:08.129781Z");
  std::size_t anonymous = 0, forbidden = 0;
  for (const auto& e : d.sink.events) {
    anonymous += e.user == "system:anonymous" ? 1 : 0;
    forbidden += e.code == 403 ? 1 : 0;
  }
  EXPECT_EQ(anonymous, 262u);
  EXPECT_EQ(forbidden, 71u);
  EXPECT_EQ(d.sink.events.back().line, 16563u);
}

TEST_F(realworld, panther_minimal_and_aks_events) {
  decoded_file d = decode_file(data_root / "panther-analysis/k8s_pod_host_pid.jsonl");
  ASSERT_EQ(d.sink.events.size(), 4u);
  EXPECT_EQ(d.sink.events[0].user, "admin@example.com");
  EXPECT_EQ(d.sink.events[0].source_ip, "1.2.3.4");
  EXPECT_EQ(d.sink.events[0].request_kind, "Pod");
  // A hand-written minimal log: no apiVersion, no user, no auditID.
  EXPECT_EQ(d.sink.events[3].user, "");
  EXPECT_EQ(d.sink.events[3].code, 403);
  EXPECT_EQ(d.sink.events[3].resource, "pods");
}

} // namespace
} // namespace vigil
