// HTTPS on the webhook: TLS 1.2+ with a server certificate, and mTLS with client certificates,
// against the real binary, with curl as the client (certificates made here with openssl).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;
using test::child;

const std::string vigil_bin = VIGIL_BINARY;

int sh(const std::string& cmd) { return std::system(("bash -c '" + cmd + "' >/dev/null 2>&1").c_str()); }

// CA, a server certificate for 127.0.0.1, a client certificate from the same CA, and one from
// another CA. Made once for the whole suite.
class tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One folder per process: ctest runs the cases of this suite in parallel processes.
    dir_ = fs::path(::testing::TempDir()) / ("vigil_tls_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::ofstream(dir_ / "san.ext") << "subjectAltName=IP:127.0.0.1\n";
    ok_ = sh("cd " + d + " && openssl req -x509 " + key + " -keyout ca.key -out ca.crt -days 2 -subj /CN=vigil-test-ca") == 0 &&
          sh("cd " + d + " && openssl req -x509 " + key + " -keyout other.key -out other.crt -days 2 -subj /CN=other-ca") == 0 &&
          sh("cd " + d + " && openssl req " + key + " -keyout server.key -out server.csr -subj /CN=127.0.0.1 && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext") == 0 &&
          sh("cd " + d + " && openssl req " + key + " -keyout client.key -out client.csr -subj /CN=kube-apiserver && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2") == 0 &&
          sh("cd " + d + " && openssl req " + key + " -keyout rogue.key -out rogue.csr -subj /CN=rogue && openssl x509 -req -in rogue.csr -CA other.crt -CAkey other.key -CAcreateserial -out rogue.crt -days 2") == 0;
    std::ofstream(dir_ / "batch.json")
        << R"({"kind":"EventList","items":[{"auditID":"t1","stage":"ResponseComplete","verb":"create","user":{"username":"u"},"sourceIPs":["192.0.2.9"],"objectRef":{"resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"}]})";
  }

  void SetUp() override {
    if (!ok_) {
      GTEST_SKIP() << "openssl could not make test certificates";
    }
  }

  // HTTP status curl got ("000" when the connection or handshake failed).
  static std::string curl(int port, const std::string& extra) {
    const std::string cmd = "curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert " + (dir_ / "ca.crt").string() +
                            " " + extra + " -H 'Content-Type: application/json' --data-binary @" +
                            (dir_ / "batch.json").string() + " https://127.0.0.1:" + std::to_string(port) +
                            "/audit/webhook/event 2>/dev/null";
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
    char buf[16] = {};
    if (!p || std::fgets(buf, sizeof buf, p.get()) == nullptr) {
      return "";
    }
    return buf;
  }

  static std::string path(const char* f) { return (dir_ / f).string(); }

  static inline fs::path dir_;
  static inline bool ok_ = false;
};

TEST_F(tls, https_with_a_server_certificate) {
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json", "--workers", "1", "--tls-cert", path("server.crt"),
           "--tls-key", path("server.key")});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  EXPECT_NE(d.stderr_text.find("https://127.0.0.1:"), std::string::npos);
  EXPECT_EQ(curl(port, ""), "200");
  EXPECT_EQ(curl(port, "--tlsv1.3"), "200");
  EXPECT_EQ(curl(port, "--tls-max 1.1"), "000"); // TLS 1.0/1.1 refused
  // Plain HTTP to the TLS port gets no HTTP answer.
  test::http_client plain(port);
  EXPECT_EQ(plain.request("POST", "/audit/webhook/event", "{}").status, 0);
  ASSERT_EQ(d.stop(), 0);
  EXPECT_NE(d.stdout_text.find("crowdsecurity/k8s-audit-pod-exec"), std::string::npos);
}

TEST_F(tls, client_certificates_are_required_with_a_client_ca) {
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json", "--workers", "1", "--tls-cert", path("server.crt"),
           "--tls-key", path("server.key"), "--tls-client-ca", path("ca.crt")});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  EXPECT_EQ(curl(port, ""), "401");
  EXPECT_EQ(curl(port, "--cert " + path("rogue.crt") + " --key " + path("rogue.key")), "401");
  EXPECT_EQ(curl(port, "--cert " + path("client.crt") + " --key " + path("client.key")), "200");
  ASSERT_EQ(d.stop(), 0);
}

// The bouncers' local API over HTTPS (api.tls in vigil.yaml): a bouncer configured with
// https:// and the CA gets its answers; without the CA the handshake fails.
TEST_F(tls, the_local_api_over_https) {
  const std::string cfg = path("lapi-tls.yaml");
  std::ofstream(cfg) << "store:\n  path: " << path("lapi-tls.db") << "\napi:\n  listen: 127.0.0.1:0\n  tls:\n    cert: "
                     << path("server.crt") << "\n    key: " << path("server.key") << "\n";
  child d({vigil_bin, "run", "-c", cfg, "--metrics-listen", "off", "--listen", "127.0.0.1:0", "--workers", "1"});
  ASSERT_NE(test::start_daemon(d), 0) << d.stderr_text;
  ASSERT_TRUE(d.wait_for_stderr("vigil local API listening on https://127.0.0.1:")) << d.stderr_text;
  const std::size_t at = d.stderr_text.find("127.0.0.1:", d.stderr_text.find("local API listening")) + 10;
  const std::string url = "https://127.0.0.1:" + std::to_string(std::stoi(d.stderr_text.substr(at))) + "/v1/decisions";
  auto get = [&](const std::string& extra) {
    const std::string cmd = "curl -s -o /dev/null -w '%{http_code}' --max-time 10 " + extra + " -H 'X-Api-Key: nope' " +
                            url + " 2>/dev/null";
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
    char buf[16] = {};
    return p && std::fgets(buf, sizeof buf, p.get()) != nullptr ? std::string(buf) : std::string();
  };
  EXPECT_EQ(get("--cacert " + path("ca.crt")), "403"); // TLS works; the key is wrong
  EXPECT_EQ(get(""), "000");                           // an unknown CA is refused by the client
  ASSERT_EQ(d.stop(), 0);
}

TEST_F(tls, bad_tls_material_is_a_startup_error) {
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "--tls-cert", path("server.crt"), "--tls-key", path("client.key")});
  EXPECT_EQ(d.stop(0), 2);
  EXPECT_NE(d.stderr_text.find("mismatch"), std::string::npos) << d.stderr_text;
  child e({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "--tls-cert", path("missing.crt"), "--tls-key", path("server.key")});
  EXPECT_EQ(e.stop(0), 2);
  EXPECT_NE(e.stderr_text.find("TLS certificate"), std::string::npos) << e.stderr_text;
}

} // namespace
} // namespace vigil
