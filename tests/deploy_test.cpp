// deploy/ must hang together: the kubeconfig kube-apiserver uses points at the listener, path and
// token vigil.yaml configures; the kind config mounts what it references; the audit policy logs
// what the shipped rules read; vigil.yaml loads.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "engine/config/config.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;

struct url {
  std::string scheme, host, path;
  int port = 0;
};

url parse_url(const std::string& s) {
  url u;
  const std::size_t scheme_end = s.find("://");
  u.scheme = s.substr(0, scheme_end);
  const std::size_t host_start = scheme_end + 3;
  const std::size_t path_start = s.find('/', host_start);
  const std::string hostport = s.substr(host_start, path_start - host_start);
  u.host = hostport.substr(0, hostport.rfind(':'));
  u.port = std::stoi(hostport.substr(hostport.rfind(':') + 1));
  u.path = s.substr(path_start);
  return u;
}

TEST(deploy, kubeconfig_matches_vigil_yaml) {
  const YAML::Node kc = YAML::LoadFile("deploy/audit-webhook.kubeconfig");
  const YAML::Node cfg = YAML::LoadFile("deploy/vigil.yaml");
  const url server = parse_url(kc["clusters"][0]["cluster"]["server"].as<std::string>());
  const YAML::Node src = cfg["sources"][0];
  EXPECT_EQ(src["type"].as<std::string>(), "webhook");
  const std::string listen = src["listen"].as<std::string>();
  EXPECT_EQ(std::stoi(listen.substr(listen.rfind(':') + 1)), server.port);
  EXPECT_EQ(server.scheme, "https");
  EXPECT_TRUE(src["tls"]) << "the kubeconfig speaks HTTPS, so vigil must serve TLS";
  const std::string base = src["path"].as<std::string>();
  ASSERT_EQ(server.path.rfind(base + "/", 0), 0u) << server.path;
  EXPECT_EQ(server.path.substr(base.size() + 1), "kind-vigil"); // the cluster name suffix
  const std::string token = kc["users"][0]["user"]["token"].as<std::string>();
  bool found = false;
  for (const auto& t : src["tokens"]) {
    found = found || t.as<std::string>() == token;
  }
  EXPECT_TRUE(found) << "the kubeconfig's token is not among vigil.yaml's tokens";
}

TEST(deploy, kind_config_mounts_what_it_references) {
  const YAML::Node kind = YAML::LoadFile("deploy/kind-config.yaml");
  const YAML::Node node = kind["nodes"][0];
  const YAML::Node patch = YAML::Load(node["kubeadmConfigPatches"][0].as<std::string>());
  const YAML::Node args = patch["apiServer"]["extraArgs"];
  const std::string mount = patch["apiServer"]["extraVolumes"][0]["mountPath"].as<std::string>();
  EXPECT_EQ(node["extraMounts"][0]["containerPath"].as<std::string>(), mount);
  for (const char* key : {"audit-policy-file", "audit-webhook-config-file"}) {
    EXPECT_EQ(args[key].as<std::string>().rfind(mount + "/", 0), 0u) << key;
  }
  EXPECT_EQ(args["audit-webhook-config-file"].as<std::string>(), mount + "/audit-webhook.kubeconfig");
  EXPECT_EQ(args["audit-policy-file"].as<std::string>(), mount + "/audit-policy.yaml");
  EXPECT_LE(std::stoi(args["audit-webhook-batch-max-size"].as<std::string>()), 400);
  const YAML::Node kc = YAML::LoadFile("deploy/audit-webhook.kubeconfig");
  EXPECT_EQ(kc["clusters"][0]["cluster"]["certificate-authority"].as<std::string>().rfind(mount + "/", 0), 0u);
}

TEST(deploy, audit_policy_logs_what_the_rules_read) {
  const YAML::Node p = YAML::LoadFile("deploy/audit-policy.yaml");
  EXPECT_EQ(p["apiVersion"].as<std::string>(), "audit.k8s.io/v1");
  EXPECT_EQ(p["kind"].as<std::string>(), "Policy");
  bool omits_received = false;
  for (const auto& s : p["omitStages"]) {
    omits_received = omits_received || s.as<std::string>() == "RequestReceived";
  }
  EXPECT_TRUE(omits_received);
  // The first rule that matches pods must log request bodies (privileged, hostNetwork, hostPath).
  std::string pods_level;
  for (const auto& rule : p["rules"]) {
    for (const auto& res : rule["resources"]) {
      for (const auto& r : res["resources"]) {
        if (r.as<std::string>() == "pods" && pods_level.empty()) {
          pods_level = rule["level"].as<std::string>();
        }
      }
    }
  }
  EXPECT_TRUE(pods_level == "Request" || pods_level == "RequestResponse") << pods_level;
  EXPECT_EQ(p["rules"][p["rules"].size() - 1]["level"].as<std::string>(), "Metadata"); // everything else
}

TEST(deploy, vigil_yaml_loads_with_its_files_in_place) {
  std::ifstream in("deploy/vigil.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const fs::path tmp = fs::path(::testing::TempDir()) / ("vigil_deploy_" + std::to_string(getpid()));
  fs::create_directories(tmp);
  std::ofstream(tmp / "vigil.crt") << "x";
  std::ofstream(tmp / "vigil.key") << "x";
  auto replace = [&](const std::string& from, const std::string& to) {
    const std::size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  };
  replace("/etc/vigil/tls/vigil.crt", (tmp / "vigil.crt").string());
  replace("/etc/vigil/tls/vigil.key", (tmp / "vigil.key").string());
  replace("/usr/local/share/vigil/rules/crowdsecurity", fs::absolute("rules/crowdsecurity").string());
  auto r = config::load_text(text, "deploy/vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<config::settings>(r)) << std::get<std::vector<config::error>>(r)[0].to_string();
  EXPECT_EQ(std::get<config::settings>(r).webhooks.size(), 1u);
}

TEST(deploy, systemd_unit_runs_the_daemon_with_the_config) {
  std::ifstream in("deploy/vigil.service");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("ExecStart=/usr/local/bin/vigil run -c /etc/vigil/vigil.yaml"), std::string::npos);
  EXPECT_NE(ss.str().find("ExecReload=/bin/kill -HUP $MAINPID"), std::string::npos);
}

} // namespace
} // namespace vigil
