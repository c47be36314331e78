// `vigil replay` as a user runs it: the real binary, its stdin a pipe the test writes.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace vigil {
namespace {

using test::child;

const std::string vigil_bin = VIGIL_BINARY;
const std::string bruteforce = "crowdsecurity/k8s-audit-api-server-bruteforce";

// An anonymous list of secrets refused with `code`, at 2026-01-01T00:00:0<second>Z.
std::string refused(const std::string& ip, int code, int second, const std::string& user_agent = "curl/8.0") {
  return R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-)" + ip + "-" +
         std::to_string(second) + R"(","stage":"ResponseComplete","verb":"list","user":{"username":"system:anonymous"},"sourceIPs":[")" +
         ip + R"("],"userAgent":")" + user_agent + R"(","objectRef":{"resource":"secrets"},"responseStatus":{"code":)" +
         std::to_string(code) + R"(},"requestReceivedTimestamp":"2026-01-01T00:00:0)" + std::to_string(second) + "Z\"}\n";
}

class replay_cmd : public ::testing::Test {
 protected:
  void SetUp() override { std::signal(SIGPIPE, SIG_IGN); } // a child that died fails write_stdin instead
};

// Alerts reach stdout while the writer of the pipe is still writing: the reader submits what a
// pipe has once it goes quiet, and the emitter flushes stdout once the pipeline is idle. Reading
// the pipe to a full chunk, or keeping alerts in stdout's buffer until exit, holds them back.
TEST_F(replay_cmd, a_burst_on_an_open_pipe_alerts_before_the_pipe_is_closed) {
  child c({vigil_bin, "replay", "-o", "json", "-"}, true);
  ASSERT_TRUE(c.started());
  std::string burst;
  for (int i = 0; i < 6; ++i) {
    burst += refused("10.1.2.3", 401, i);
  }
  ASSERT_TRUE(c.write_stdin(burst));
  EXPECT_TRUE(c.wait_for_stdout(bruteforce)) << c.stdout_text << c.stderr_text;
  EXPECT_TRUE(c.running());
  c.close_stdin();
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text;
  EXPECT_NE(c.stderr_text.find("6 events read, 6 decoded, 0 malformed"), std::string::npos) << c.stderr_text;
  EXPECT_NE(c.stderr_text.find(" events per CPU-second)"), std::string::npos) << c.stderr_text;
  EXPECT_NE(c.stderr_text.find("\nCPU by thread: workers "), std::string::npos) << c.stderr_text;
}

// A document far larger than a pipe's chunk, written in pieces with pauses between some of them
// (the reader waits for its line to end rather than resubmit it at each pause), is decoded
// whole, and the events around it are unaffected.
TEST_F(replay_cmd, a_document_larger_than_a_chunk_arrives_in_pieces_through_a_pipe) {
  child c({vigil_bin, "replay", "-o", "json", "-"}, true);
  ASSERT_TRUE(c.started());
  const std::string big = refused("10.9.9.9", 200, 1, std::string(5u << 20, 'a'));
  ASSERT_TRUE(c.write_stdin(refused("10.9.9.8", 200, 0)));
  for (std::size_t at = 0; at < big.size(); at += 100'000) {
    ASSERT_TRUE(c.write_stdin(std::string_view(big).substr(at, 100'000)));
    if (at % 1'000'000 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30)); // longer than the reader waits
    }
  }
  ASSERT_TRUE(c.write_stdin(refused("10.9.9.7", 200, 2)));
  c.close_stdin();
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text;
  EXPECT_NE(c.stderr_text.find("3 events read, 3 decoded, 0 malformed"), std::string::npos) << c.stderr_text;
}

// A line cut short with a brace left open (not inside a string) looks like the first line of a
// pretty-printed document. On an open pipe that goes quiet, the lines after it are not held
// back until the pipe closes: the open document is given up on and reported.
TEST_F(replay_cmd, a_line_cut_short_on_an_open_pipe_does_not_hold_the_next_lines_back) {
  child c({vigil_bin, "replay", "-o", "json", "-"}, true);
  ASSERT_TRUE(c.started());
  const std::string first = refused("10.1.2.4", 401, 0);
  std::string input = first.substr(0, first.find(",\"verb\"") + 1) + "\n";
  for (int i = 0; i < 6; ++i) {
    input += refused("10.1.2.3", 401, i);
  }
  ASSERT_TRUE(c.write_stdin(input));
  // Lines that keep coming (a busy stream) do not hold the give-up off: it is timed from when
  // the document was first seen open.
  int more = 0;
  for (; more < 40 && c.stdout_text.find(bruteforce) == std::string::npos; ++more) {
    ASSERT_TRUE(c.write_stdin(refused(std::string("10.1.9.").append(std::to_string(more)), 200, 7)));
    c.wait_for_stdout(bruteforce, std::chrono::milliseconds(100));
  }
  EXPECT_NE(c.stdout_text.find(bruteforce), std::string::npos) << c.stderr_text;
  EXPECT_TRUE(c.running());
  c.close_stdin();
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text;
  EXPECT_NE(c.stderr_text.find(std::to_string(7 + more) + " events read, " + std::to_string(6 + more) + " decoded, 1 malformed"),
            std::string::npos)
      << c.stderr_text;
  EXPECT_NE(c.stderr_text.find("-:1: truncated JSON"), std::string::npos) << c.stderr_text;
}

// When a stuck line is given up on, a document being written after it (pretty-printed, its
// second half still to come) is not cut with it.
TEST_F(replay_cmd, giving_up_on_a_stuck_line_does_not_cut_the_document_after_it) {
  child c({vigil_bin, "replay", "-o", "json", "-"}, true);
  ASSERT_TRUE(c.started());
  const std::string stuck = refused("10.1.2.4", 401, 0);
  const std::string pretty = refused("10.1.2.5", 200, 1);
  const std::size_t half = pretty.find(",\"verb\"") + 1;
  ASSERT_TRUE(c.write_stdin(stuck.substr(0, stuck.find(",\"verb\"") + 1) + "\n" + refused("10.1.2.6", 200, 1) +
                            pretty.substr(0, half) + "\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  ASSERT_TRUE(c.write_stdin(pretty.substr(half)));
  c.close_stdin();
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text;
  EXPECT_NE(c.stderr_text.find("3 events read, 2 decoded, 1 malformed"), std::string::npos) << c.stderr_text;
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

// A scrape saved to a file, read back by `vigil metrics --url file://...`.
std::string scrape_file(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << text;
  return "file://" + path;
}

// The cells of the table row that starts with `key` (empty if none does).
std::vector<std::string> row(const std::string& table, const std::string& key) {
  const std::size_t at = table.find("\n  " + key + " ");
  if (at == std::string::npos) {
    return {};
  }
  std::istringstream cells(table.substr(at + 1, table.find('\n', at + 1) - at - 1));
  return {std::istream_iterator<std::string>(cells), std::istream_iterator<std::string>()};
}

// Counts print as cscli prints them (whole under 1,000, else two decimals and a unit) unless
// --no-unit; label escapes are decoded (\n a newline, shown escaped in a table); the decisions
// table has a row per reason, origin and action; NaN and infinities stay valid JSON.
TEST(metrics_cmd, tables_and_json_of_a_saved_scrape) {
  const std::string url = scrape_file("vigil_scrape.prom",
                                      "# TYPE cs_parser_hits_total counter\n"
                                      "cs_parser_hits_total{source=\"/var/log/a\\nb\",type=\"file\"} 1793\n"
                                      "cs_parser_hits_ok_total{source=\"/var/log/a\\nb\",type=\"file\"} 22000 1700000000000\n"
                                      "cs_active_decisions{reason=\"r\",origin=\"crowdsec\",action=\"ban\"} 2\n"
                                      "cs_active_decisions{reason=\"r\",origin=\"cscli\",action=\"ban\"} 1\n"
                                      "cs_alerts{reason=\"inf\"} +Inf\n"
                                      "cs_alerts{reason=\"huge\"} 1e30\n"
                                      "odd_value NaN\n"
                                      "big_value +Inf\n");
  child units({vigil_bin, "metrics", "--url", url});
  ASSERT_EQ(units.stop(0), 0) << units.stderr_text;
  EXPECT_EQ(row(units.stdout_text, "file:/var/log/a\\nb"),
            (std::vector<std::string>{"file:/var/log/a\\nb", "1.79k", "22.00k", "-", "-", "-"}))
      << units.stdout_text;
  EXPECT_EQ(row(units.stdout_text, "r:crowdsec:ban"), (std::vector<std::string>{"r:crowdsec:ban", "2"}));
  EXPECT_EQ(row(units.stdout_text, "r:cscli:ban"), (std::vector<std::string>{"r:cscli:ban", "1"}));
  EXPECT_EQ(row(units.stdout_text, "inf"), (std::vector<std::string>{"inf", "+Inf"})) << units.stdout_text;
  EXPECT_EQ(row(units.stdout_text, "huge"), (std::vector<std::string>{"huge", "1e+30"})) << units.stdout_text;
  child whole({vigil_bin, "metrics", "--url", url, "--no-unit"});
  ASSERT_EQ(whole.stop(0), 0) << whole.stderr_text;
  EXPECT_EQ(row(whole.stdout_text, "file:/var/log/a\\nb"),
            (std::vector<std::string>{"file:/var/log/a\\nb", "1793", "22000", "-", "-", "-"}))
      << whole.stdout_text;
  child json({vigil_bin, "metrics", "--url", url, "-o", "json"});
  ASSERT_EQ(json.stop(0), 0) << json.stderr_text;
  EXPECT_NE(json.stdout_text.find(R"({"name":"cs_parser_hits_total","labels":{"source":"/var/log/a\nb","type":"file"},"value":1793})"),
            std::string::npos)
      << json.stdout_text;
  EXPECT_NE(json.stdout_text.find(R"({"name":"odd_value","labels":{},"value":"NaN"},{"name":"big_value","labels":{},"value":"+Inf"}])"),
            std::string::npos)
      << json.stdout_text;
}

// What is not Prometheus text (an HTML page, a value that is no number, a label left open) is an
// error naming the line, exit status 2: not a crash.
TEST(metrics_cmd, text_that_is_not_prometheus_is_an_error) {
  for (const char* text : {"<html>\n<body>x</body>\n", "ok_metric 1\nfoo bar\n", "m{a=\"b} 1\n", "m{a=\"b\"}\n",
                           "m 1 garbage\n", "m 1 17 x\n", "m 1e999\n"}) {
    child c({vigil_bin, "metrics", "--url", scrape_file("vigil_bad.prom", text)});
    EXPECT_EQ(c.stop(0), 2) << text;
    EXPECT_NE(c.stderr_text.find("is not Prometheus text format: line "), std::string::npos) << c.stderr_text;
  }
  child empty({vigil_bin, "metrics", "--url", scrape_file("vigil_empty.prom", "\n")});
  EXPECT_EQ(empty.stop(0), 2);
  EXPECT_NE(empty.stderr_text.find("empty reply"), std::string::npos) << empty.stderr_text;
  // What the format allows: blanks around labels, a trailing comma, a timestamp, leading blanks.
  child lenient({vigil_bin, "metrics", "--url",
                 scrape_file("vigil_lenient.prom", "  cs_alerts{ reason=\"a\" , } 3 1700000000000\ncs_alerts{reason=\"b\"} 1e-400\n"),
                 "-o", "json"});
  ASSERT_EQ(lenient.stop(0), 0) << lenient.stderr_text;
  EXPECT_NE(lenient.stdout_text.find(R"({"name":"cs_alerts","labels":{"reason":"a"},"value":3})"), std::string::npos)
      << lenient.stdout_text;
  EXPECT_NE(lenient.stdout_text.find(R"({"name":"cs_alerts","labels":{"reason":"b"},"value":0})"), std::string::npos)
      << lenient.stdout_text;
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

// A usage error exits 2, as every error vigil reports before it starts; --help and --version 0.
TEST(cli, usage_errors_exit_2) {
  child empty_listen({vigil_bin, "run", "--metrics-listen", ""});
  EXPECT_EQ(empty_listen.stop(0), 2);
  EXPECT_NE(empty_listen.stderr_text.find("an empty address"), std::string::npos) << empty_listen.stderr_text;
  child unknown({vigil_bin, "replay", "--no-such-option"});
  EXPECT_EQ(unknown.stop(0), 2);
  child none({vigil_bin});
  EXPECT_EQ(none.stop(0), 2);
  child version({vigil_bin, "--version"});
  EXPECT_EQ(version.stop(0), 0);
  // Flags are held to the ranges vigil.yaml enforces for the same settings.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{vigil_bin, "run", "--workers", "999"},
        std::vector<std::string>{vigil_bin, "run", "--max-body-size", "10"},
        std::vector<std::string>{vigil_bin, "run", "--max-in-flight", "0"},
        std::vector<std::string>{vigil_bin, "replay", "--workers", "257", "-"}}) {
    child c(args);
    EXPECT_EQ(c.stop(0), 2) << args[2];
    EXPECT_NE(c.stderr_text.find("not in range"), std::string::npos) << c.stderr_text;
  }
}

// A repeatable flag takes one value each time: the files after `--rules DIR` are replayed, not
// read as more rules (CLI11's default for a list).
TEST(cli, a_repeatable_flag_takes_one_value) {
  const std::string exec = R"({"auditID":"x","stage":"ResponseComplete","verb":"create","user":{"username":"u"},)"
                           R"("sourceIPs":["192.0.2.5"],"objectRef":{"resource":"pods","subresource":"exec","name":"p"},)"
                           R"("requestReceivedTimestamp":"2026-02-01T10:00:00Z"})";
  const std::string a = testing::TempDir() + "vigil_flag_a.json";
  const std::string b = testing::TempDir() + "vigil_flag_b.json";
  std::ofstream(a) << exec << "\n";
  std::ofstream(b) << exec << "\n";
  child c({vigil_bin, "replay", "-o", "json", "--rules", "rules/crowdsecurity", a, b});
  ASSERT_EQ(c.stop(0), 0) << c.stderr_text;
  EXPECT_EQ(std::count(c.stdout_text.begin(), c.stdout_text.end(), '\n'), 2) << c.stdout_text;
}

} // namespace
} // namespace vigil
