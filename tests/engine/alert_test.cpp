// Alert text and JSON, Go duration and time formats (what CrowdSec prints).
#include "engine/alert/alert.h"

#include <climits>
#include <cstdint>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "engine/event/duration.h"
#include "engine/event/timestamp.h"

namespace vigil::engine {
namespace {

TEST(duration, parses_go_syntax) {
  EXPECT_EQ(parse_go_duration("10s"), 10'000'000'000LL);
  EXPECT_EQ(parse_go_duration("1m"), 60'000'000'000LL);
  EXPECT_EQ(parse_go_duration("1h30m"), 5'400'000'000'000LL);
  EXPECT_EQ(parse_go_duration("500ms"), 500'000'000LL);
  EXPECT_EQ(parse_go_duration("1.5s"), 1'500'000'000LL);
  EXPECT_EQ(parse_go_duration("2us"), 2'000LL);
  EXPECT_EQ(parse_go_duration("0"), 0);
  EXPECT_EQ(parse_go_duration("-1s"), -1'000'000'000LL);
  for (const char* bad : {"", "10", "s", "1x", "1.s.", "ten seconds", "1e3s", "99999999999999999999h"}) {
    EXPECT_FALSE(parse_go_duration(bad).has_value()) << bad;
  }
}

TEST(duration, formats_like_go) {
  EXPECT_EQ(format_go_duration(0), "0s");
  EXPECT_EQ(format_go_duration(10'000'000'000LL), "10s");
  EXPECT_EQ(format_go_duration(60'000'000'000LL), "1m0s");
  EXPECT_EQ(format_go_duration(3'600'000'000'000LL), "1h0m0s");
  EXPECT_EQ(format_go_duration(2'100'000'000LL), "2.1s");
  EXPECT_EQ(format_go_duration(30'181'650LL), "30.18165ms");
  EXPECT_EQ(format_go_duration(1'500LL), "1.5\xC2\xB5s");
  EXPECT_EQ(format_go_duration(999LL), "999ns");
  EXPECT_EQ(format_go_duration(65'500'000'000LL), "1m5.5s");
}

event_payload payload(unix_nanos t, std::vector<std::pair<std::string, std::string>> meta) {
  event_payload p;
  p.time = t;
  p.meta = std::move(meta);
  return p;
}

TEST(alert, crowdsec_message_and_fields) {
  const unix_nanos t0 = *parse_rfc3339("2023-05-17T15:08:20Z");
  const unix_nanos t1 = *parse_rfc3339("2023-05-17T15:08:22.1Z");
  const event_payload a = payload(t0, {{"source_ip", "1.2.3.4"}, {"user", "alice"}});
  const event_payload b = payload(t1, {{"namespace", "ns"}, {"source_ip", "1.2.3.4"}, {"user", "bob"}});
  const event_payload* events[] = {&a, &b};
  const alert_origin origin{"crowdsecurity/k8s-audit-api-server-bruteforce", R"({"remediation":true})", "10s", "Ip",
                            5, true, true};
  const alert al = make_alert(origin, 6, t0, t1, t1, events, 2);
  EXPECT_EQ(al.message, "Ip 1.2.3.4 performed 'crowdsecurity/k8s-audit-api-server-bruteforce' (6 events over 2.1s) "
                        "at 2023-05-17 15:08:22.1 +0000 UTC");
  EXPECT_EQ(al.value, "1.2.3.4");
  EXPECT_EQ(al.user, "bob"); // meta of the last event
  EXPECT_EQ(al.namespace_, "ns");
  EXPECT_TRUE(al.remediation);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(to_json(al)).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(doc["scenario"]), "crowdsecurity/k8s-audit-api-server-bruteforce");
  EXPECT_EQ(int64_t(doc["events_count"]), 6);
  EXPECT_EQ(std::string_view(doc["start_at"]), "2023-05-17T15:08:20Z");
  EXPECT_EQ(std::string_view(doc["stop_at"]), "2023-05-17T15:08:22.1Z");
  EXPECT_TRUE(bool(doc["remediation"]));
  EXPECT_TRUE(bool(doc["labels"]["remediation"]));
  EXPECT_EQ(simdjson::dom::array(doc["decisions"]).size(), 0u);
  EXPECT_EQ(simdjson::dom::array(doc["events"]).size(), 2u);
  EXPECT_EQ(std::string_view(doc["events"].at(1)["meta"]["user"]), "bob");
  for (const char* k : {"scenario", "message", "source_ip", "user", "namespace", "resource_name", "kind", "cluster",
                        "events_count", "start_at", "stop_at", "remediation", "labels", "decisions"}) {
    EXPECT_EQ(doc[k].error(), simdjson::SUCCESS) << k;
  }
}

TEST(alert, missing_or_invalid_source_still_alerts) {
  const event_payload a = payload(0, {{"source_ip", "not-an-ip"}});
  const event_payload* events[] = {&a};
  const alert al = make_alert(alert_origin{"x", "{}", "0s", "Ip", 0, false, false}, 1, 0, 0, 0, events, 1);
  EXPECT_EQ(al.value, "");
  EXPECT_EQ(al.source_ip, "not-an-ip");
  EXPECT_EQ(al.message.substr(0, 29), "Ip UNKNOWN performed 'x' (1 e");
}

TEST(alert, json_string_escaping_at_every_position) {
  // The escaper skips eight bytes at a time: a character to escape must be found wherever it is.
  simdjson::dom::parser parser;
  for (const std::string& special : std::vector<std::string>{"\"", "\\", "\n", "\t", std::string(1, '\0'), "\x01", "\x1f", "\x7f", " ",
                                    "\xc3\xa9", "!", "#", "[", "]"}) {
    // Every position in strings of every length around the word size and its multiples (the
    // escaper reads a short string's tail as the string's last eight bytes).
    for (std::size_t len = 0; len <= 41; len += len < 20 ? 1 : 21)
    for (std::size_t at = 0; at <= len; ++at) {
      const std::string text = std::string(at, 'a') + special + std::string(len - at, 'b');
      std::string out;
      append_json_string(out, text);
      // Two in one word, and one as the very first and last byte of the same string.
      std::string twice = text + special, out2;
      append_json_string(out2, twice);
      simdjson::dom::element doc2;
      ASSERT_EQ(parser.parse(std::string(out2)).get(doc2), simdjson::SUCCESS) << out2;
      EXPECT_EQ(std::string_view(doc2), twice);
      const std::string literal = out; // simdjson parses a padded copy
      simdjson::dom::element doc;
      ASSERT_EQ(parser.parse(literal).get(doc), simdjson::SUCCESS) << literal;
      EXPECT_EQ(std::string_view(doc), text) << "special byte " << int(static_cast<unsigned char>(special[0]))
                                             << " at " << at;
      const bool must_escape = special == "\"" || special == "\\" || static_cast<unsigned char>(special[0]) < 0x20;
      EXPECT_EQ(out.size() > text.size() + 2, must_escape) << out;
    }
  }
}

TEST(alert, refilled_alert_equals_a_new_one) {
  // The pipeline recycles alerts: filling a used one must leave nothing of its earlier contents.
  const unix_nanos t0 = *parse_rfc3339("2023-05-17T15:08:20Z");
  const event_payload a = payload(t0, {{"source_ip", "10.1.2.3"}, {"user", "a-much-longer-user-name-than-the-next"},
                                       {"namespace", "kube-system"}, {"kind", "Pod"}, {"cluster", "prod"}});
  const event_payload b = payload(t0 + 1, {{"source_ip", "10.1.2.3"}, {"resource_name", "web-0"}});
  const event_payload c = payload(t0 + 2, {{"source_ip", "not-an-ip"}, {"user", "bob"}});
  const event_payload* first[] = {&a, &b, &a};
  const event_payload* second[] = {&c};
  const alert_origin big{"crowdsecurity/k8s-audit-api-server-bruteforce", R"({"remediation":true})", "10s", "Range", 5,
                         true, true};
  const alert_origin small{"x", "", "0s", "", 0, false, false};

  alert used = make_alert(big, 6, t0, t0 + 2, t0 + 2, first, 3);
  used.decisions.push_back(decision{"ban", "Ip", "10.1.2.3", "crowdsec", big.name.data(), 1, 2});
  used.notifications.push_back("slack_default");
  make_alert(used, small, 1, t0 + 2, t0 + 2, t0 + 2, second, 1);
  const alert fresh = make_alert(small, 1, t0 + 2, t0 + 2, t0 + 2, second, 1);

  EXPECT_EQ(to_json(used), to_json(fresh));
  EXPECT_EQ(used.message, fresh.message);
  EXPECT_EQ(used.value, "");          // the earlier alert's IP is gone
  EXPECT_EQ(used.scope, "Ip");        // the default scope, not the earlier "Range"
  EXPECT_EQ(used.namespace_, "");     // absent in the new last event
  EXPECT_EQ(used.events.size(), 1u);
  EXPECT_TRUE(used.decisions.empty());
  EXPECT_TRUE(used.notifications.empty());
  EXPECT_FALSE(used.remediation);
}

TEST(alert, append_json_adds_one_object_after_existing_text) {
  const event_payload a = payload(0, {{"source_ip", "1.2.3.4"}});
  const event_payload* events[] = {&a};
  const alert al = make_alert(alert_origin{"x", "{}", "0s", "Ip", 0, false, false}, 1, 0, 0, 0, events, 1);
  std::string out = "{\"first\":1}\n";
  append_json(out, al);
  EXPECT_EQ(out, "{\"first\":1}\n" + to_json(al));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(std::string_view(out).substr(out.find('\n') + 1)).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(doc["scenario"]), "x");
}

// The line's exact bytes: every key in order, decisions, escapes (quote, backslash, control
// bytes as \n or \u00XX, DEL and UTF-8 as they are), a key that is not the parser's; then
// write_json_line into a buffer that held a longer line must write exactly to_json's bytes.
TEST(alert, json_line_bytes_with_decisions_escapes_and_a_reused_buffer) {
  const unix_nanos t0 = *parse_rfc3339("2023-05-17T15:08:20.5Z");
  const unix_nanos second = 1'000'000'000;
  const event_payload a =
      payload(t0, {{"source_ip", "10.1.2.3"}, {"user", "a\"b\\c\n\r\t\x01\x1f\x7f \xc3\xa9"}, {"custom key", "v"}});
  const event_payload b = payload(t0 + second, {{"source_ip", "10.1.2.3"}, {"namespace", "kube-system"}});
  const event_payload* events[] = {&a, &b};
  alert al = make_alert(alert_origin{"s/x", R"({"k":[1]})", "10s", "Ip", 5, true, false}, 7, t0, t0 + second,
                        t0 + 2 * second, events, 2);
  al.decisions.push_back(decision{"ban", "Ip", "10.1.2.3", "crowdsec", "s/x", 4 * 3600 * second, t0 + 4 * 3600 * second});
  al.decisions.push_back(decision{"captcha", "Range", "10.0.0.0/8", "cscli", "s/\"y\"", 90 * second, t0 + 90 * second});
  const std::string expected = std::string(R"({"scenario":"s/x","message":"Ip 10.1.2.3 performed 's/x' (7 events over 2s) at 2023-05-17 15:08:21.5 +0000 UTC",)"
                 R"("source_ip":"10.1.2.3","user":"","namespace":"kube-system","resource_name":"","kind":"","cluster":"",)"
                 R"("events_count":7,"start_at":"2023-05-17T15:08:20.5Z","stop_at":"2023-05-17T15:08:22.5Z",)"
                 R"("remediation":true,"labels":{"k":[1]},"decisions":[{"type":"ban","scope":"Ip","value":"10.1.2.3",)"
                 R"("duration":"4h0m0s","until":"2023-05-17T19:08:20.5Z","origin":"crowdsec","scenario":"s/x"},)"
                 R"({"type":"captcha","scope":"Range","value":"10.0.0.0/8","duration":"1m30s",)"
                 R"("until":"2023-05-17T15:09:50.5Z","origin":"cscli","scenario":"s/\"y\""}],"scope":"Ip",)"
                 R"("value":"10.1.2.3","capacity":5,"leakspeed":"10s","events":[{"timestamp":"2023-05-17T15:08:20.5Z",)"
                 R"("meta":{"source_ip":"10.1.2.3","user":"a\"b\\c\n\r\t\u0001\u001f)" "\x7f \xc3\xa9"
                 R"(","custom key":"v"}},{"timestamp":"2023-05-17T15:08:21.5Z",)"
                 R"("meta":{"source_ip":"10.1.2.3","namespace":"kube-system"}}]})");
  EXPECT_EQ(to_json(al), expected);

  const event_payload c = payload(t0, {{"source_ip", "::1"}});
  const event_payload* one[] = {&c};
  const alert small = make_alert(alert_origin{"y", "", "0s", "", 0, false, false}, 1, t0, t0, t0, one, 1);
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  std::string buffer(100'000, 'z');
  write_json_line(f, buffer, al);
  write_json_line(f, buffer, small);
  std::string back(200'000, '\0');
  std::rewind(f);
  back.resize(std::fread(back.data(), 1, back.size(), f));
  std::fclose(f);
  EXPECT_EQ(back, expected + "\n" + to_json(small) + "\n");
}

// make_alert reads the last event's meta by key byte: keys stored by name in between (whose
// name and value lengths take one or two LEB128 bytes) must be stepped over, and a parser key's
// name given as text must land on its byte.
TEST(alert, meta_by_key_byte_equals_meta_by_name) {
  const std::string long_value(200, 'v');
  meta_list m;
  m.push_back("zz-custom", long_value);
  m.push_back(meta_key::source_ip, "10.0.0.1");
  m.push_back(std::string(130, 'k'), "x");
  m.push_back("user", "alice"); // by name: stored as the parser's key byte
  m.push_back(meta_key::namespace_, "");
  m.push_back(meta_key::kind, long_value + "w");
  event_payload p;
  p.meta = m;
  for (std::size_t k = 0; k < meta_key_count; ++k) {
    const auto key = static_cast<meta_key>(k);
    EXPECT_EQ(p.get(key), p.get(meta_key_name(key))) << meta_key_name(key);
  }
  EXPECT_EQ(p.get(meta_key::source_ip), "10.0.0.1");
  EXPECT_EQ(p.get(meta_key::user), "alice");
  EXPECT_EQ(p.get(meta_key::kind), long_value + "w");
  EXPECT_EQ(p.get(meta_key::cluster), "");
  EXPECT_EQ(p.get("zz-custom"), long_value);
  const event_payload* events[] = {&p};
  const alert al = make_alert(alert_origin{"x", "{}", "0s", "Ip", 0, false, false}, 1, 0, 0, 0, events, 1);
  EXPECT_EQ(al.source_ip, "10.0.0.1");
  EXPECT_EQ(al.value, "10.0.0.1");
  EXPECT_EQ(al.user, "alice");
  EXPECT_EQ(al.kind, long_value + "w");
  EXPECT_EQ(al.namespace_, "");
}

// The writers fill a buffer sized once to detail::json_line_bound without checking as they go:
// the worst case (every string byte a control byte, written as \u00XX; the widest numbers;
// long durations; many events) must stay within it, and every escape form is pinned here.
TEST(alert, worst_case_line_stays_within_its_bound) {
  std::string out;
  append_json_string(out, std::string("\x00\x08\x0c\x1f\"\\\n\r\t\x7f", 10));
  EXPECT_EQ(out, R"("\u0000\u0008\u000c\u001f\"\\\n\r\t)" "\x7f\"");

  std::string controls;
  for (int i = 0; i < 300; ++i) {
    controls += static_cast<char>(i % 32 == 9 || i % 32 == 10 || i % 32 == 13 ? 1 : i % 32);
  }
  std::vector<event_payload> payloads;
  for (int i = 0; i < 40; ++i) {
    payloads.push_back(payload(-1, {{"source_ip", controls}, {"user", controls}, {controls, controls},
                                    {"namespace", controls.substr(0, i)}}));
  }
  std::vector<const event_payload*> events;
  for (const event_payload& p : payloads) {
    events.push_back(&p);
  }
  std::string labels = "{\"k\":";
  append_json_string(labels, controls);
  labels += "}";
  alert_origin origin{controls, labels, controls, controls, INT64_MIN, true, true};
  alert al = make_alert(origin, UINT64_MAX, INT64_MIN, INT64_MAX, INT64_MIN, events.data(), events.size(), controls);
  for (int i = 0; i < 5; ++i) {
    al.decisions.push_back(decision{controls, controls, controls, controls, controls, INT64_MIN + i, INT64_MIN});
  }
  al.value = controls;
  al.kind = controls;
  const std::string line = to_json(al);
  EXPECT_LE(line.size(), detail::json_line_bound(al));
  EXPECT_GT(line.size(), detail::json_line_bound(al) / 2); // the strings are most of the bound
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(doc["kind"]), controls);
  EXPECT_EQ(int64_t(doc["capacity"]), INT64_MIN);
  EXPECT_EQ(uint64_t(doc["events_count"]), UINT64_MAX);
  EXPECT_EQ(simdjson::dom::array(doc["events"]).size(), 40u);
  // Long strings are counted exactly, word by word: escapes in any word, clean words between.
  for (std::size_t at = 0; at < 300; at += 7) {
    std::string text(300, 'a');
    text[at] = '\n';
    text[(at * 3) % 300] = '\x01';
    text[299 - at] = '"';
    std::string quoted;
    append_json_string(quoted, text);
    ASSERT_EQ(parser.parse(quoted).get(doc), simdjson::SUCCESS) << at;
    EXPECT_EQ(std::string_view(doc), text) << at;
  }
  std::string meta;
  append_meta_json(meta, payloads[0].meta);
  ASSERT_EQ(parser.parse(meta).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(doc[controls]), controls);
}

TEST(alert, is_ip) {
  EXPECT_TRUE(is_ip("192.168.49.1"));
  EXPECT_TRUE(is_ip("::1"));
  EXPECT_TRUE(is_ip("2001:db8::1"));
  EXPECT_FALSE(is_ip(""));
  EXPECT_FALSE(is_ip("1.2.3"));
  EXPECT_FALSE(is_ip("example.com"));
}

TEST(alert, prefixes_cover_addresses_and_ranges) {
  auto p = [](std::string_view s) {
    const auto r = parse_ip_or_prefix(s);
    EXPECT_TRUE(r.has_value()) << s;
    return r.value_or(ip_prefix{});
  };
  EXPECT_TRUE(prefix_covers(p("10.0.0.0/8"), p("10.1.2.3")));
  EXPECT_TRUE(prefix_covers(p("10.0.0.0/8"), p("10.1.0.0/16")));
  EXPECT_TRUE(prefix_covers(p("10.1.0.0/16"), p("10.1.0.0/16")));
  EXPECT_FALSE(prefix_covers(p("10.1.0.0/16"), p("10.0.0.0/8")));
  EXPECT_FALSE(prefix_covers(p("10.1.2.3"), p("10.1.0.0/16")));
  EXPECT_TRUE(prefix_covers(p("10.1.2.3"), p("10.1.2.3")));
  EXPECT_FALSE(prefix_covers(p("10.1.2.3"), p("10.1.2.4")));
  EXPECT_TRUE(prefix_covers(p("10.1.2.0/23"), p("10.1.3.255")));
  EXPECT_FALSE(prefix_covers(p("10.1.2.0/23"), p("10.1.4.0")));
  EXPECT_TRUE(prefix_covers(p("0.0.0.0/0"), p("192.0.2.1")));
  EXPECT_FALSE(prefix_covers(p("::/0"), p("192.0.2.1"))); // families never mix
  EXPECT_TRUE(prefix_covers(p("2001:db8::/32"), p("2001:db8:1::/48")));
  EXPECT_FALSE(prefix_covers(p("2001:db8:1::/48"), p("2001:db8::/32")));
  EXPECT_TRUE(prefix_covers(p("2001:db8::/32"), p("2001:db8::5")));
  // IPv4-mapped IPv6 is IPv4 (Go's To4), for addresses and ranges.
  EXPECT_TRUE(prefix_covers(p("10.0.0.0/8"), p("::ffff:10.1.2.3")));
  EXPECT_TRUE(prefix_covers(p("::ffff:10.0.0.0/104"), p("10.1.2.3")));
  EXPECT_FALSE(prefix_covers(p("::ffff:10.1.2.3"), p("10.1.2.0/24")));
  for (std::string_view bad : {"", "10.1.2", "10.1.2.3/", "10.1.2.3/33", "::/129", "host", "10.0.0.0/-1", "0.0.0.0/-0", "10.0.0.0/+8"}) {
    EXPECT_FALSE(parse_ip_or_prefix(bad).has_value()) << bad;
  }
}

TEST(alert, json_escapes_strings) {
  const event_payload a = payload(0, {{"user", "a\"b\\c\n\x01"}});
  const event_payload* events[] = {&a};
  const alert al = make_alert(alert_origin{"x", "{}", "0s", "Ip", 0, false, false}, 1, 0, 0, 0, events, 1);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(to_json(al)).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(doc["user"]), "a\"b\\c\n\x01");
}

} // namespace
} // namespace vigil::engine
