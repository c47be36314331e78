// Tests for engine/event/reader: every input shape, and every kind of bad input, with positions.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/counters/counters.h"
#include "engine/event/reader.h"
#include "engine/event/timestamp.h"
#include "tests/support/collect_sink.h"

namespace vigil::engine {
namespace {

using test::collect_sink;
using test::decode_all;

const std::string ev_get =
    R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"get","user":{"username":"alice","groups":["g1","g2"]},"sourceIPs":["10.0.0.1","10.0.0.2"],"objectRef":{"resource":"pods","namespace":"ns1","name":"p1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2023-05-17T15:08:22.763960Z","stageTimestamp":"2023-05-17T15:08:22.800000Z"})";

TEST(reader, single_event_on_one_line) {
  collect_sink s = decode_all(ev_get);
  ASSERT_EQ(s.events.size(), 1u);
  ASSERT_TRUE(s.errors.empty());
  const auto& e = s.events[0];
  EXPECT_EQ(e.verb, "get");
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.groups, (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(e.source_ip, "10.0.0.1");
  EXPECT_EQ(e.resource, "pods");
  EXPECT_EQ(e.namespace_, "ns1");
  EXPECT_EQ(e.name, "p1");
  EXPECT_EQ(e.audit_id, "a1");
  EXPECT_EQ(e.stage, "ResponseComplete");
  EXPECT_EQ(e.level, "Metadata");
  EXPECT_EQ(e.code, 200);
  EXPECT_EQ(e.received, *parse_rfc3339("2023-05-17T15:08:22.763960Z"));
  EXPECT_EQ(e.stage_time - e.received, 36'040'000);
  EXPECT_EQ(e.line, 1u);
  EXPECT_EQ(e.item, -1);
}

// decode_event reuses its output: nothing of a previous, richer event may remain.
TEST(decode_event, a_reused_event_keeps_nothing_of_the_previous_one) {
  simdjson::dom::parser p1, p2;
  simdjson::dom::element rich, bare;
  ASSERT_EQ(p1.parse(ev_get).get(rich), simdjson::SUCCESS);
  ASSERT_EQ(p2.parse(std::string(R"({"verb":"list"})")).get(bare), simdjson::SUCCESS);
  audit_event ev;
  ASSERT_TRUE(decode_event(rich, ev).ok());
  ASSERT_EQ(ev.user.username, "alice");
  ASSERT_EQ(ev.response_code, 200);
  ASSERT_TRUE(decode_event(bare, ev).ok());
  EXPECT_EQ(ev.verb, "list");
  EXPECT_EQ(ev.present, 0u);
  EXPECT_EQ(ev.kind, "");
  EXPECT_EQ(ev.audit_id, "");
  EXPECT_EQ(ev.request_uri, "");
  EXPECT_EQ(ev.user.username, "");
  EXPECT_FALSE(ev.user.has_groups);
  EXPECT_EQ(ev.source_ip, "");
  EXPECT_EQ(ev.object.resource, "");
  EXPECT_EQ(ev.object.namespace_, "");
  EXPECT_EQ(ev.response_code, 0);
  EXPECT_EQ(ev.request_received, 0);
  EXPECT_EQ(ev.stage_time, 0);
}

// Every key decode_event knows, at every length it compares (3 to 24 bytes: whole words, a
// 4-byte part, single bytes), with values that tell the fields apart.
const std::string ev_all_keys =
    R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"id-1","stage":"ResponseComplete",)"
    R"("requestURI":"/api/v1/namespaces/ns/pods/p","verb":"create","userAgent":"kubectl/v1.29",)"
    R"("user":{"username":"alice","uid":"u-1","groups":["g1"]},)"
    R"("impersonatedUser":{"username":"bob","uid":"u-2"},"sourceIPs":["10.1.2.3"],)"
    R"("objectRef":{"resource":"pods","subresource":"exec","namespace":"ns","name":"p","uid":"o-1",)"
    R"("apiGroup":"apps","apiVersion":"v1","resourceVersion":"42"},)"
    R"("responseStatus":{"code":201,"reason":"Created","status":"Success"},)"
    R"("requestReceivedTimestamp":"2024-01-02T03:04:05.5Z","stageTimestamp":"2024-01-02T03:04:06Z",)"
    R"("annotations":{"7/0":"b"},"requestObject":{"x":1},"responseObject":{"y":2}})";

// The object keys of a JSON text rewritten by `f` (values untouched): a string followed by ':'.
template <class F>
std::string rewrite_keys(const std::string& json, F f) {
  std::string out;
  for (std::size_t i = 0; i < json.size();) {
    if (json[i] != '"') {
      out += json[i++];
      continue;
    }
    const std::size_t end = json.find('"', i + 1);
    std::string text = json.substr(i + 1, end - i - 1);
    if (end + 1 < json.size() && json[end + 1] == ':') {
      text = f(text);
    }
    out += '"' + text + '"';
    i = end + 1;
  }
  return out;
}

// What decode_event read, as text, to compare two decodes. (The annotation's key has no letter:
// annotations are a map, whose keys are data and keep their case.)
std::string decoded_fields(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) {
    return "parse error";
  }
  audit_event ev;
  const decode_status st = decode_event(root, ev);
  if (!st.ok()) {
    return std::string("decode error ") + to_string(st.error);
  }
  std::string out;
  for (std::string_view v : {ev.kind, ev.api_version, ev.level, ev.audit_id, ev.stage, ev.request_uri, ev.verb,
                             ev.user_agent, ev.user.username, ev.user.uid, ev.impersonated_user.username,
                             ev.impersonated_user.uid, ev.source_ip, ev.object.resource, ev.object.subresource,
                             ev.object.namespace_, ev.object.name, ev.object.uid, ev.object.api_group,
                             ev.object.api_version, ev.object.resource_version, ev.response_reason,
                             ev.response_status, ev.annotation("7/0")}) {
    out.append(v).append("|");
  }
  out += std::to_string(ev.response_code) + "|" + std::to_string(ev.request_received) + "|" +
         std::to_string(ev.stage_time) + "|" + std::to_string(ev.present) + "|" + std::to_string(ev.root_seen) + "|" +
         std::to_string(ev.nested_strings) + "|" + (ev.user.has_groups ? "groups" : "") + "|" +
         (ev.keys_repeated ? "repeated" : "");
  return out;
}

TEST(decode_event, keys_match_in_any_ascii_case) {
  const std::string canonical = decoded_fields(ev_all_keys);
  ASSERT_NE(canonical.find("alice|u-1|bob|u-2|10.1.2.3|pods|exec|ns|p|o-1|apps|v1|42|Created|Success|b|201|"),
            std::string::npos)
      << canonical;
  auto upper = [](std::string k) {
    for (char& c : k) {
      c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    }
    return k;
  };
  auto lower = [](std::string k) {
    for (char& c : k) {
      c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    return k;
  };
  auto alternate = [](std::string k) {
    for (std::size_t i = 0; i < k.size(); ++i) {
      const char c = k[i];
      if (i % 2 == 0 && c >= 'a' && c <= 'z') {
        k[i] = static_cast<char>(c - 32);
      } else if (i % 2 == 1 && c >= 'A' && c <= 'Z') {
        k[i] = static_cast<char>(c + 32);
      }
    }
    return k;
  };
  EXPECT_EQ(decoded_fields(rewrite_keys(ev_all_keys, upper)), canonical);
  EXPECT_EQ(decoded_fields(rewrite_keys(ev_all_keys, lower)), canonical);
  EXPECT_EQ(decoded_fields(rewrite_keys(ev_all_keys, alternate)), canonical);
  // A key escaped in the JSON is compared unescaped, as Go compares it.
  EXPECT_EQ(decoded_fields(R"({"vErb":"get"})"), decoded_fields(R"({"verb":"get"})"));
}

TEST(decode_event, keys_that_differ_by_more_than_case_are_not_recognized) {
  // Each known key with one byte changed into a character next to the letters in ASCII (@ [ ` {,
  // which differ from A, Z, a, z by one or by 0x20), a digit, or a non-ASCII letter: none of them
  // may be taken for the key, whatever its length.
  const std::vector<std::string> keys = {"kind", "apiVersion", "level", "auditID", "stage", "requestURI",
                                         "verb", "userAgent", "sourceIPs", "requestReceivedTimestamp",
                                         "stageTimestamp"};
  const std::vector<std::string> swaps = {"@", "[", "`", "{", "0", "\u00e9"};
  for (const std::string& key : keys) {
    for (std::size_t at : {std::size_t{0}, key.size() / 2, key.size() - 1}) {
      for (const std::string& swap : swaps) {
        std::string near = key;
        near.replace(at, 1, swap);
        // A string value the real key would record; with auditID for the audit-field check.
        const std::string json = R"({"auditID":"x",")" + near + R"(":"2024-01-02T03:04:05Z"})";
        const std::string got = decoded_fields(json);
        if (key == "auditID") {
          // Only the real auditID is there: the near miss must not count as a second one.
          EXPECT_EQ(got.find("repeated"), std::string::npos) << near;
        } else {
          EXPECT_EQ(got, decoded_fields(R"({"auditID":"x"})")) << near;
        }
      }
    }
  }
  // The same for the nested objects' keys.
  EXPECT_EQ(decoded_fields(R"({"verb":"get","user":{"us@rname":"a","ui[":"b"}})"),
            decoded_fields(R"({"verb":"get","user":{}})"));
  EXPECT_EQ(decoded_fields(R"({"verb":"get","objectRef":{"resourceVersio`":"1","subresourc{":"s","namespac0":"n"}})"),
            decoded_fields(R"({"verb":"get","objectRef":{}})"));
}

TEST(reader, json_lines_with_blank_lines_and_crlf) {
  collect_sink s = decode_all("\n" + ev_get + "\r\n\r\n" + ev_get + "\n" + ev_get);
  ASSERT_EQ(s.events.size(), 3u);
  EXPECT_EQ(s.events[0].line, 2u);
  EXPECT_EQ(s.events[1].line, 4u);
  EXPECT_EQ(s.events[2].line, 5u);
  EXPECT_TRUE(s.errors.empty());
}

TEST(reader, pretty_printed_event_then_a_line) {
  const std::string pretty =
      "{\n  \"kind\": \"Event\",\n  \"verb\": \"delete\",\n  \"objectRef\": {\n    \"resource\": "
      "\"secrets\"\n  }\n}\n";
  collect_sink s = decode_all(pretty + ev_get + "\n");
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[0].verb, "delete");
  EXPECT_EQ(s.events[0].resource, "secrets");
  EXPECT_EQ(s.events[0].line, 1u);
  EXPECT_EQ(s.events[1].verb, "get");
  EXPECT_EQ(s.events[1].line, 8u);
  EXPECT_TRUE(s.errors.empty());
}

TEST(reader, event_list_as_the_webhook_posts_it) {
  const std::string list = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[)" + ev_get +
                           "," + R"({"verb":"list","auditID":"a2"},{"verb":"watch","auditID":"a3"}]})";
  collect_sink s = decode_all(list);
  ASSERT_EQ(s.events.size(), 3u);
  EXPECT_EQ(s.events[0].item, 0);
  EXPECT_EQ(s.events[1].verb, "list");
  EXPECT_EQ(s.events[1].item, 1);
  EXPECT_EQ(s.events[2].item, 2);
  EXPECT_TRUE(s.errors.empty());
}

TEST(reader, file_of_event_list_lines) {
  const std::string line = R"({"kind":"EventList","items":[{"verb":"get"},{"verb":"list"}]})";
  collect_sink s = decode_all(line + "\n" + line + "\n");
  ASSERT_EQ(s.events.size(), 4u);
  EXPECT_EQ(s.events[3].line, 2u);
  EXPECT_EQ(s.events[3].item, 1);
  EXPECT_EQ(s.events[3].verb, "list");
}

TEST(reader, pretty_printed_json_array) {
  collect_sink s = decode_all("[\n" + ev_get + ",\n" + R"({"verb":"patch"})" + "\n]\n");
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[1].verb, "patch");
  EXPECT_EQ(s.events[1].item, 1);
  EXPECT_TRUE(s.errors.empty());
}

TEST(reader, empty_event_list_items_null_or_empty) {
  collect_sink s = decode_all(R"({"kind":"EventList","items":null})"
                              "\n"
                              R"({"kind":"EventList","items":[]})");
  EXPECT_TRUE(s.events.empty());
  EXPECT_TRUE(s.errors.empty());
}

TEST(reader, api_versions_and_missing_kind) {
  collect_sink s = decode_all(R"({"apiVersion":"audit.k8s.io/v1beta1","kind":"Event","verb":"get"})"
                              "\n"
                              R"({"verb":"create","objectRef":{"resource":"pods"}})"
                              "\n"
                              R"({"kind":"Event","auditID":"x"})");
  ASSERT_EQ(s.events.size(), 3u);
  EXPECT_EQ(s.events[0].api_version, "audit.k8s.io/v1beta1");
  EXPECT_EQ(s.events[1].api_version, "");
  EXPECT_TRUE(s.errors.empty());
}

TEST(reader, falco_kind_zero_is_a_wrong_type) {
  collect_sink s = decode_all(R"({"kind": 0})");
  EXPECT_TRUE(s.events.empty());
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].kind, "wrong_type");
  EXPECT_NE(s.errors[0].reason.find("'kind'"), std::string::npos) << s.errors[0].reason;
}

TEST(reader, wrong_types_of_known_fields_are_named) {
  const char* cases[][2] = {
      {R"({"verb":5})", "'verb'"},
      {R"({"verb":"get","sourceIPs":"1.2.3.4"})", "'sourceIPs'"},
      {R"({"verb":"get","sourceIPs":[1]})", "'sourceIPs'"},
      {R"({"verb":"get","responseStatus":{"code":"401"}})", "'responseStatus.code'"},
      {R"({"verb":"get","responseStatus":{"code":401.5}})", "'responseStatus.code'"},
      {R"({"verb":"get","user":[]})", "'user'"},
      {R"({"verb":"get","user":{"groups":"g"}})", "'user'"},
      {R"({"verb":"get","objectRef":{"resource":7}})", "'objectRef'"},
      {R"({"verb":"get","annotations":[]})", "'annotations'"},
      {R"({"verb":"get","requestReceivedTimestamp":12})", "'requestReceivedTimestamp'"},
  };
  for (const auto& c : cases) {
    collect_sink s = decode_all(c[0]);
    ASSERT_EQ(s.errors.size(), 1u) << c[0];
    EXPECT_EQ(s.errors[0].kind, "wrong_type") << c[0];
    EXPECT_NE(s.errors[0].reason.find(c[1]), std::string::npos) << c[0] << " -> " << s.errors[0].reason;
    EXPECT_TRUE(s.events.empty());
  }
}

TEST(reader, a_whole_response_code_written_as_a_float_is_that_code) {
  // To CrowdSec every JSON number is a float64: 401.0 and 4.01e2 are 401 (a bruteforce attempt).
  for (const char* code : {"401.0", "4.01e2", "401"}) {
    collect_sink s = decode_all(std::string(R"({"verb":"get","responseStatus":{"code":)") + code + "}}");
    ASSERT_EQ(s.events.size(), 1u) << code;
    EXPECT_EQ(s.events[0].code, 401) << code;
  }
  collect_sink big = decode_all(R"({"verb":"get","responseStatus":{"code":1e300}})");
  EXPECT_EQ(big.errors.size(), 1u);
}

TEST(reader, nulls_are_absent_not_errors) {
  collect_sink s = decode_all(
      R"({"verb":"get","user":null,"objectRef":null,"responseStatus":null,"sourceIPs":null,"annotations":null,"requestObject":null,"stageTimestamp":null})");
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].present, 0u);
}

TEST(reader, bad_timestamp) {
  collect_sink s = decode_all(R"({"verb":"get","requestReceivedTimestamp":"yesterday"})");
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].kind, "bad_timestamp");
}

TEST(reader, not_an_event) {
  collect_sink s = decode_all("42\n{}\n{\"kind\":\"Pod\",\"verb\":\"get\"}\n{\"apiVersion\":\"v1\",\"verb\":\"get\"}\n"
                              "[{\"kind\":\"EventList\",\"items\":[]}]\n\"str\"");
  ASSERT_EQ(s.errors.size(), 6u);
  EXPECT_EQ(s.errors[0].kind, "not_object");
  EXPECT_EQ(s.errors[1].kind, "no_audit_fields");
  EXPECT_EQ(s.errors[2].kind, "not_event");
  EXPECT_EQ(s.errors[3].kind, "not_event");
  EXPECT_EQ(s.errors[4].kind, "not_event");
  EXPECT_EQ(s.errors[4].item, 0);
  EXPECT_EQ(s.errors[5].kind, "not_object");
  EXPECT_EQ(s.errors[5].line, 6u);
}

TEST(reader, garbage_line_is_reported_and_the_stream_goes_on) {
  collect_sink s = decode_all(ev_get + "\nhello world\n{\"verb\": }\n" + ev_get);
  ASSERT_EQ(s.events.size(), 2u);
  ASSERT_EQ(s.errors.size(), 2u);
  EXPECT_EQ(s.errors[0].line, 2u);
  EXPECT_EQ(s.errors[0].kind, "syntax");
  EXPECT_EQ(s.errors[1].line, 3u);
  EXPECT_EQ(s.events[1].line, 4u);
}

TEST(reader, truncated_line_in_the_middle_costs_one_line) {
  collect_sink s = decode_all(ev_get + "\n{\"verb\":\"get\",\"user\":{\"username\":\"x\"\n" + ev_get + "\n" + ev_get);
  EXPECT_EQ(s.events.size(), 3u);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].line, 2u);
  EXPECT_EQ(s.events[1].line, 3u);
  EXPECT_EQ(s.events[2].line, 4u);
}

TEST(reader, truncated_at_end_of_input) {
  const std::string cut = ev_get.substr(0, ev_get.size() / 2);
  collect_sink s = decode_all(ev_get + "\n" + cut);
  EXPECT_EQ(s.events.size(), 1u);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].kind, "truncated");
  EXPECT_EQ(s.errors[0].line, 2u);
}

// JSON Go's encoding/json reads and simdjson refuses is read as Go reads it (kube-apiserver logs a
// patch's bytes as sent, and a refused event would be a hidden one): bytes that are not UTF-8 in
// a string are each a U+FFFD, a lone surrogate escape is a U+FFFD, an integer past 64 bits is a
// float64. Outside a string such bytes are an error for Go too; 1e400 is too large for both.
TEST(reader, json_go_reads_is_read_as_go_reads_it) {
  const std::string fffd = "\xEF\xBF\xBD";
  collect_sink s = decode_all("{\"verb\":\"get\",\"userAgent\":\"a\xff\xfe\"}\n"
                              R"({"verb":"get","userAgent":"\udc00-\ud800\u0041-\ud83d\ude00"})" "\n"
                              R"({"verb":"get","responseStatus":{"code":401},"n":[18446744073709551616,-99999999999999999999]})" "\n"
                              "{\"verb\":\"get\",\"x\":\xff}\n"
                              R"({"verb":"get","n":1e400})" "\n" +
                              ev_get);
  ASSERT_EQ(s.events.size(), 4u);
  EXPECT_EQ(s.events[0].user_agent, "a" + fffd + fffd);
  EXPECT_EQ(s.events[1].user_agent, fffd + "-" + fffd + "A-\xF0\x9F\x98\x80");
  EXPECT_EQ(s.events[2].code, 401);
  ASSERT_EQ(s.errors.size(), 2u);
  EXPECT_EQ(s.errors[0].line, 4u);
  EXPECT_NE(s.errors[0].reason.find("UTF-8"), std::string::npos) << s.errors[0].reason;
  EXPECT_EQ(s.errors[1].line, 5u);
  EXPECT_NE(s.errors[1].reason.find("number"), std::string::npos) << s.errors[1].reason;
  std::string out;
  EXPECT_FALSE(engine::rewrite_as_go_reads(R"({"a":"\u00e9\ud83d\ude00","n":123456789012345678})", out));
  ASSERT_TRUE(engine::rewrite_as_go_reads(R"({"a":"x\"\udfff","n":[1234567890123456789012,1.5e3,-7]})", out));
  EXPECT_EQ(out, R"({"a":"x\"\ufffd","n":[1234567890123456789012.0,1.5e3,-7]})");
}

TEST(reader, deep_nesting_is_rejected_not_crashed) {
  std::string deep = "{\"verb\":\"get\",\"requestObject\":";
  for (int i = 0; i < 5000; ++i) {
    deep += "[";
  }
  for (int i = 0; i < 5000; ++i) {
    deep += "]";
  }
  deep += "}";
  collect_sink s = decode_all(deep + "\n" + ev_get);
  EXPECT_EQ(s.events.size(), 1u);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].kind, "syntax");
}

TEST(reader, huge_string_is_fine_and_oversized_document_is_rejected) {
  const std::string big(8u << 20, 'a');
  collect_sink s = decode_all(R"({"verb":"get","userAgent":")" + big + "\"}\n" + ev_get);
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[0].user_agent.size(), big.size());

  reader_options small;
  small.max_document_bytes = 1024;
  collect_sink t = decode_all(R"({"verb":"get","userAgent":")" + std::string(4096, 'b') + "\"}\n" + ev_get, small);
  EXPECT_EQ(t.events.size(), 1u);
  ASSERT_EQ(t.errors.size(), 1u);
  EXPECT_EQ(t.errors[0].kind, "too_large");
}

// Everything the sink saw, as text, to compare two ways of reading the same documents.
std::string transcript(const collect_sink& s) {
  std::string out;
  for (const auto& e : s.events) {
    out += "event line " + std::to_string(e.line) + " item " + std::to_string(e.item) + ": " + e.verb + "|" + e.user +
           "|" + e.source_ip + "|" + e.resource + "|" + e.audit_id + "|" + e.user_agent + "|" + e.request_kind + "|" +
           std::to_string(e.code) + "|" + std::to_string(e.received) + "|" + std::to_string(e.present) + "\n";
  }
  for (const auto& e : s.errors) {
    out += "error line " + std::to_string(e.line) + " item " + std::to_string(e.item) + ": " + e.kind + " " + e.reason +
           "\n";
  }
  return out;
}

// feed_documents parses runs of framed objects with one stage-1 pass (parse_many). Whatever the
// documents, each must come out exactly as feed_document gives it on its own: the same events,
// errors, positions and byte counts, also after a document that breaks the stream.
TEST(reader, documents_fed_in_runs_equal_documents_fed_one_by_one) {
  std::string deep = R"({"verb":"get","requestObject":)" + std::string(300, '[') + std::string(300, ']') + "}";
  const std::vector<std::string> tricky = {
      R"({"verb":"get","userAgent":"unclosed})",                     // breaks the stream's string state
      R"({"verb":"get"} {"verb":"list"})",                           // two values on one line
      R"({"verb":"create","auditID":"e5"}   )",                      // trailing blanks in the frame
      R"({"verb":"get"} x)",                                         // trailing garbage
      R"({"verb":"get"}{"verb":"list"})",                            // two values, no space
      "{\"verb\":\"get\",\"userAgent\":\"\xff\xfe\"}",               // invalid UTF-8
      R"({"kind":"EventList","items":[{"verb":"get","auditID":"f6"},{"verb":7},{"verb":"list"}]})",
      R"({"kind":"Pod","verb":"get"})",                              // not an event
      deep,                                                          // deeper than max_depth
      R"({"verb":"get","requestReceivedTimestamp":"yesterday"})",    // bad timestamp
      "{\n  \"verb\": \"update\",\n  \"auditID\": \"h8\"\n}",        // pretty-printed, one frame
      R"({"verb":"get","userAgent":")" + std::string(300 * 1024, 'y') + R"("})", // longer than a window
      R"({)",                                                        // truncated
      R"({"verb":"get","userAgent":"a\"b"})",                        // escaped quote
  };
  // Each tricky document first in a run (after a list, which ends a run), then inside one.
  std::vector<std::string> lines;
  for (std::size_t t = 0; t < tricky.size(); ++t) {
    const std::string n = std::to_string(t);
    lines.push_back(R"([{"verb":"delete","auditID":"sep)" + n + R"("}])");
    lines.push_back(tricky[t]);
    lines.push_back(R"({"verb":"list","auditID":"a)" + n + R"("})");
    lines.push_back(ev_get);
    lines.push_back(tricky[t]);
    lines.push_back(R"({"verb":"watch","auditID":"b)" + n + R"("})");
  }
  // Frame them as the pipeline does: one document per line, blank lines and CRLF between some.
  std::string text;
  std::vector<reader::framed_document> docs;
  std::uint64_t line = 1;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i % 5 == 3) {
      text += "\n";
      ++line;
    }
    docs.push_back(reader::framed_document{text.size(), lines[i].size(), line});
    text += lines[i];
    text += i % 4 == 1 ? "\r\n" : "\n";
    line += 1 + static_cast<std::uint64_t>(std::count(lines[i].begin(), lines[i].end(), '\n'));
  }
  // The same documents many times over, so that runs span several windows.
  std::string all;
  std::vector<reader::framed_document> all_docs;
  for (int copy = 0; copy < 3; ++copy) {
    for (const auto& d : docs) {
      all_docs.push_back(reader::framed_document{all.size() + d.offset, d.size, d.line + copy * line});
    }
    all += text;
  }
  all.append(simdjson::SIMDJSON_PADDING, '\0');

  reader_options opts;
  opts.max_depth = 64;
  reader one_by_one(opts), in_runs(opts);
  collect_sink a, b;
  for (const auto& d : all_docs) {
    one_by_one.feed_document(all.data() + d.offset, d.size, d.line, "t", a);
  }
  in_runs.feed_documents(all.data(), all_docs, "t", b);
  EXPECT_EQ(transcript(b), transcript(a));
  EXPECT_EQ(in_runs.stats().bytes, one_by_one.stats().bytes);
  EXPECT_EQ(in_runs.stats().decoded, one_by_one.stats().decoded);
  EXPECT_EQ(in_runs.stats().malformed, one_by_one.stats().malformed);
  // The input exercises both outcomes.
  EXPECT_GE(a.events.size(), 3u * 4 * tricky.size());
  EXPECT_GE(a.errors.size(), 3u * 2 * 8);

  // A worker's share of a chunk: documents with other documents between them, copied into runs.
  for (const std::size_t stride : {2u, 3u}) {
    std::vector<reader::framed_document> share;
    for (std::size_t i = 0; i < all_docs.size(); ++i) {
      if (i % stride != 1) {
        share.push_back(all_docs[i]);
      }
    }
    reader alone(opts), gathered(opts);
    collect_sink x, y;
    for (const auto& d : share) {
      alone.feed_document(all.data() + d.offset, d.size, d.line, "t", x);
    }
    gathered.feed_documents(all.data(), share, "t", y);
    EXPECT_EQ(transcript(y), transcript(x)) << "every " << stride;
    EXPECT_EQ(gathered.stats().bytes, alone.stats().bytes);
    EXPECT_GE(x.events.size(), 3u * 2 * tricky.size());
  }

  // Runs of well-formed events only: all of them come out, in order.
  std::string plain;
  std::vector<reader::framed_document> plain_docs;
  for (int i = 0; i < 2000; ++i) {
    const std::string ev = R"({"verb":"get","auditID":"n)" + std::to_string(i) + R"("})";
    plain_docs.push_back(reader::framed_document{plain.size(), ev.size(), static_cast<std::uint64_t>(i + 1)});
    plain += ev + "\n";
  }
  plain.append(simdjson::SIMDJSON_PADDING, '\0');
  collect_sink c;
  reader many(opts);
  many.feed_documents(plain.data(), plain_docs, "t", c);
  ASSERT_EQ(c.events.size(), 2000u);
  EXPECT_EQ(c.events[1999].audit_id, "n1999");
  EXPECT_EQ(c.events[1999].line, 2000u);
}

TEST(reader, event_list_with_a_broken_item_keeps_the_good_ones_before_it) {
  // A wrong type costs its item. A string left open in item 2 turns the quotes after it inside
  // out: item 3's annotation would then read as an event of its own. So the rest of the list is
  // reported as one item not read.
  const std::string list = R"({"kind":"EventList","metadata":{"a":[1,2]},"items":[{"verb":"get"},{"kind":0},)"
                           R"({"verb":"get, "auditID":"x"},{"auditID":"y","annotations":{"note":"},{\"verb\":\"delete\"},{"}},)"
                           R"({"verb":"list"}]})";
  collect_sink s = decode_all(list);
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].item, 0);
  ASSERT_EQ(s.errors.size(), 3u);
  EXPECT_EQ(s.errors[0].item, 1);
  EXPECT_EQ(s.errors[0].kind, "wrong_type");
  EXPECT_EQ(s.errors[1].item, 2);
  EXPECT_EQ(s.errors[1].kind, "syntax");
  EXPECT_EQ(s.errors[2].item, 3);
  EXPECT_EQ(s.errors[2].kind, "syntax");
  EXPECT_NE(s.errors[2].reason.find("not read"), std::string::npos) << s.errors[2].reason;
}

TEST(reader, a_line_cut_inside_a_string_costs_that_line_only) {
  // The cut leaves a quote open: matched on, every later quote would be read inside out and
  // the following lines taken as the rest of the cut one.
  const std::string cut = ev_get.substr(0, ev_get.find("alice") + 2);
  const std::string pretty_cut = "{\n  \"verb\": \"get\",\n  \"user\": {\"username\": \"bo\n";
  const std::pair<std::string, std::size_t> cases[] = {
      {cut + "\n" + ev_get + "\n" + ev_get + "\n", 2},
      {ev_get + "\n" + cut + "\n" + ev_get, 2},
      {pretty_cut + ev_get + "\n", 1},
  };
  for (const auto& [input, good] : cases) {
    collect_sink s = decode_all(input);
    EXPECT_EQ(s.events.size(), good) << input;
    ASSERT_EQ(s.errors.size(), 1u) << input;
    EXPECT_EQ(s.errors[0].kind, "syntax");
    EXPECT_NE(s.errors[0].reason.find("never closed"), std::string::npos) << s.errors[0].reason;
    EXPECT_EQ(s.events.back().line, static_cast<std::uint64_t>(std::count(input.begin(), input.end() - 1, '\n')) + 1);
  }
  // In a stream (more input may come), the cut line does not hold the next ones back.
  collect_sink s;
  reader r;
  std::string input = cut + "\n" + ev_get + "\n" + ev_get + "\n";
  const std::size_t size = input.size();
  input.append(simdjson::SIMDJSON_PADDING, '\0');
  EXPECT_EQ(r.feed(input.data(), size, false, "stream", s), size);
  EXPECT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.errors.size(), 1u);
}

TEST(reader, an_item_refused_with_sure_bounds_costs_that_item_only) {
  // Too deep, a number neither simdjson nor Go can hold, `tru`: the item's end is not in doubt, so
  // the items after it are read (a deep object must not hide the events after it).
  const std::string deep = "{\"verb\":\"get\",\"x\":" + std::string(300, '[') + std::string(300, ']') + "}";
  for (const std::string& bad : {deep, std::string(R"({"verb":"get","n":1e400})"), std::string(R"({"verb":tru})")}) {
    for (const std::string& sep : {std::string(","), std::string(",\n")}) {
      collect_sink s = decode_all("[{\"verb\":\"get\"}" + sep + bad + sep + "{\"verb\":\"list\"}" + sep + "{\"verb\":\"watch\"}]");
      ASSERT_EQ(s.events.size(), 3u) << bad.substr(0, 40);
      EXPECT_EQ(s.events[2].verb, "watch");
      EXPECT_EQ(s.events[2].item, 3);
      ASSERT_EQ(s.errors.size(), 1u);
      EXPECT_EQ(s.errors[0].item, 1);
    }
  }
}

TEST(reader, a_list_cut_short_keeps_the_items_before_the_cut_once) {
  // Cut after a whole item, or inside a string of a later line: the items before the cut are
  // decoded, the cut is one error, nothing is counted twice.
  const std::string a = R"({"verb":"get"})";
  collect_sink after_item = decode_all("[" + a + ",");
  EXPECT_EQ(after_item.events.size(), 1u);
  ASSERT_EQ(after_item.errors.size(), 1u);
  EXPECT_EQ(after_item.errors[0].kind, "truncated");
  collect_sink later_line = decode_all("[" + a + ",\n" + a + ",\n{\"verb\":\"wa\n" + ev_get + "\n");
  EXPECT_EQ(later_line.events.size(), 3u); // two items, then the line after the cut
  ASSERT_EQ(later_line.errors.size(), 1u);
  EXPECT_EQ(later_line.errors[0].item, 2);
  EXPECT_EQ(later_line.events[2].line, 4u);
}

TEST(reader, a_one_line_list_cut_short_keeps_the_items_before_the_cut) {
  const std::string list = "{\"kind\":\"EventList\",\"items\":[{\"verb\":\"get\"},{\"verb\":\"list\"},{\"verb\":\"wa";
  for (const std::string& input : {list, list + "\n" + ev_get, list.substr(0, list.size() - 4) + "\n" + ev_get}) {
    collect_sink s = decode_all(input);
    ASSERT_GE(s.events.size(), 2u) << input;
    EXPECT_EQ(s.events[0].verb, "get");
    EXPECT_EQ(s.events[1].verb, "list");
    EXPECT_EQ(s.events.size(), input.find('\n') == std::string::npos ? 2u : 3u);
    ASSERT_EQ(s.errors.size(), 1u) << input;
    EXPECT_EQ(s.errors[0].item, 2);
  }
}

TEST(reader, byte_order_mark_is_skipped) {
  collect_sink s = decode_all("\xEF\xBB\xBF" + ev_get);
  EXPECT_EQ(s.events.size(), 1u);
  EXPECT_TRUE(s.errors.empty());
}

TEST(reader, annotations_and_objects_are_reachable) {
  collect_sink s = decode_all(
      R"({"verb":"create","annotations":{"authorization.k8s.io/decision":"forbid"},"requestObject":{"kind":"Pod"},"impersonatedUser":{"username":"bob"},"responseStatus":{"code":403,"reason":"Forbidden"}})");
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].decision, "forbid");
  EXPECT_EQ(s.events[0].request_kind, "Pod");
  EXPECT_EQ(s.events[0].impersonated, "bob");
  EXPECT_EQ(s.events[0].reason, "Forbidden");
  EXPECT_EQ(s.events[0].code, 403);
}

// Feeding the same bytes in small non-final pieces, keeping what was not consumed, must give
// exactly what one final feed gives: framing never depends on where reads happen to end.
TEST(reader, chunked_feeding_matches_whole_buffer) {
  const std::string input = ev_get + "\n{\n \"verb\": \"delete\"\n}\n" +
                            R"({"kind":"EventList","items":[{"verb":"a"},{"verb":"b"}]})" + "\nnot json\n[\n" + ev_get +
                            "\n]\n" + ev_get;
  const collect_sink whole = decode_all(input);
  for (std::size_t chunk : {1u, 2u, 7u, 64u, 333u}) {
    collect_sink s;
    reader r;
    std::string pending;
    std::size_t pos = 0;
    while (true) {
      const bool final = pos >= input.size();
      if (!final) {
        pending += input.substr(pos, chunk);
      }
      pos += chunk;
      std::string padded = pending + std::string(simdjson::SIMDJSON_PADDING, '\0');
      const std::size_t used = r.feed(padded.data(), pending.size(), final, "chunked", s);
      pending.erase(0, used);
      if (final) {
        break;
      }
    }
    ASSERT_EQ(s.events.size(), whole.events.size()) << "chunk " << chunk;
    ASSERT_EQ(s.errors.size(), whole.errors.size()) << "chunk " << chunk;
    for (std::size_t i = 0; i < s.events.size(); ++i) {
      EXPECT_EQ(s.events[i].verb, whole.events[i].verb);
      EXPECT_EQ(s.events[i].line, whole.events[i].line) << "chunk " << chunk << " event " << i;
      EXPECT_EQ(s.events[i].item, whole.events[i].item);
    }
    EXPECT_EQ(s.errors[0].line, whole.errors[0].line);
  }
  EXPECT_EQ(whole.events.size(), 6u);
  EXPECT_EQ(whole.errors.size(), 1u);
}

TEST(reader, counts_into_stats_and_the_registry) {
  auto& reg = counters::registry::global();
  const std::uint64_t decoded_before = reg.read_all("vigil_decoder_events_decoded_total");
  const std::uint64_t syntax_before = reg.read("vigil_decoder_errors_total", {{"kind", "syntax"}});
  collect_sink s;
  reader r;
  std::string input = ev_get + "\n{bad}\n" + ev_get + "\n";
  const std::size_t size = input.size();
  input.append(simdjson::SIMDJSON_PADDING, '\0');
  r.feed(input.data(), size, true, "t", s);
  EXPECT_EQ(r.stats().events_read, 3u);
  EXPECT_EQ(r.stats().decoded, 2u);
  EXPECT_EQ(r.stats().malformed, 1u);
  EXPECT_EQ(r.stats().bytes, size);
  EXPECT_EQ(reg.read_all("vigil_decoder_events_decoded_total") - decoded_before, 2u);
  EXPECT_EQ(reg.read("vigil_decoder_errors_total", {{"kind", "syntax"}}) - syntax_before, 1u);
}

} // namespace
} // namespace vigil::engine

namespace vigil::engine {
namespace {

// Regression (found by decoder_fuzz): a byte order mark split across two reads.
TEST(reader, byte_order_mark_split_across_reads) {
  const std::string input = "\xEF\xBB\xBF{\"verb\":\"get\"}\n";
  test::collect_sink s;
  reader r;
  std::string pending;
  for (std::size_t pos = 0; pos <= input.size(); ++pos) {
    const bool final = pos == input.size();
    if (!final) {
      pending += input[pos];
    }
    std::string padded = pending + std::string(simdjson::SIMDJSON_PADDING, '\0');
    pending.erase(0, r.feed(padded.data(), pending.size(), final, "bom", s));
  }
  EXPECT_EQ(s.events.size(), 1u);
  EXPECT_TRUE(s.errors.empty());
}

} // namespace
} // namespace vigil::engine
