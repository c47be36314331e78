#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/event/timestamp.h"

namespace vigil::engine {
namespace {

TEST(timestamp, parses_kubernetes_forms) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01.5Z"), 1'500'000'000);
  EXPECT_EQ(parse_rfc3339("2023-05-17T15:08:22.763960Z"), 1684336102'763960000LL);
  EXPECT_EQ(parse_rfc3339("2017-09-11T19:55:05Z"), 1505159705'000000000LL);
  EXPECT_EQ(parse_rfc3339("2000-02-29T12:00:00+02:00"), parse_rfc3339("2000-02-29T10:00:00Z"));
  EXPECT_EQ(parse_rfc3339("2000-02-29T12:00:00-01:30"), parse_rfc3339("2000-02-29T13:30:00Z"));
  EXPECT_EQ(parse_rfc3339("2023-05-17T15:08:22.123456789123Z"), parse_rfc3339("2023-05-17T15:08:22.123456789Z"));
  // Panther's normalised form: space separator, no zone = UTC.
  EXPECT_EQ(parse_rfc3339("2022-12-09 21:06:52.94"), parse_rfc3339("2022-12-09T21:06:52.940Z"));
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59Z"), -1'000'000'000);
}

TEST(timestamp, rejects_malformed) {
  for (const char* bad : {"", "yesterday", "2023-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2023-01-01T24:00:00Z",
                          "2023-01-01T00:00:00.Z", "2023-01-01T00:00:00+0200", "2023-01-01T00:00:00Zjunk",
                          "2023-1-01T00:00:00Z", "2023-01-01X00:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

// parse_rfc3339 keeps the last valid minute per thread: whatever was parsed before, a timestamp
// must give what a thread that never parsed anything gets. Timestamps sharing or nearly sharing
// their first 16 bytes, valid and not, in several orders.
TEST(timestamp, the_per_thread_minute_memo_never_changes_a_result) {
  const std::vector<std::string> inputs = {
      "2023-05-17T15:08:22.763960Z", "2023-05-17T15:08:59.5+02:00", "2023-05-17T15:08:00-01:30",
      "2023-05-17T15:08:60Z",        "2023-05-17T15:08:61Z",        "2023-05-17T15:08:2xZ",
      "2023-05-17T15:08;22Z",        "2023-05-17T15:08:22",         "2023-05-17T15:08:22Zjunk",
      "2023-05-17T15:09:22Z",        "2023-05-17t15:08:22Z",        "2023-05-17 15:08:22Z",
      "2023-02-29T15:08:22Z",        "2024-02-29T15:08:22Z",        "2023-05-17T24:08:22Z",
      "2023-05-17T15:08:2",          "2023-05-17T15:08",            "1969-12-31T23:59:59.999Z",
      "2023-05-17T15:60:00Z",        "2023-05-17T15:08:22.Z",       "2023-05-17T15:08:22.1+0200"};
  // What a fresh thread gets for each, one thread per timestamp.
  std::vector<std::optional<unix_nanos>> fresh(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::thread([&, i] { fresh[i] = parse_rfc3339(inputs[i]); }).join();
  }
  EXPECT_EQ(fresh[0], 1684336102'763960000LL);
  EXPECT_FALSE(fresh[4].has_value());
  EXPECT_FALSE(fresh[12].has_value());
  EXPECT_TRUE(fresh[13].has_value());
  for (int round = 0; round < 3; ++round) {
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      const std::size_t i = round == 1 ? inputs.size() - 1 - k : (k * 5 + static_cast<std::size_t>(round)) % inputs.size();
      EXPECT_EQ(parse_rfc3339(inputs[i]), fresh[i]) << inputs[i] << " (round " << round << ")";
      EXPECT_EQ(parse_rfc3339(inputs[0]), fresh[0]) << "after " << inputs[i];
    }
  }
}

// Six fraction digits and Z (metav1.MicroTime) are read as one word: every value must come out
// as the byte-by-byte reading gives it (the same instant with a +00:00 zone takes that path), and
// a byte that is not a digit, in any of the six places, must fail both ways.
TEST(timestamp, microsecond_fractions_read_as_a_word_equal_the_byte_reading) {
  const std::string stem = "2023-05-17T15:08:22.";
  std::uint64_t x = 88172645463325252ull; // xorshift: deterministic
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  std::vector<std::string> fractions = {"000000", "999999", "000001", "100000", "123456", "900009"};
  for (int i = 0; i < 2000; ++i) {
    std::string f;
    for (int k = 0; k < 6; ++k) {
      f += static_cast<char>('0' + next() % 10);
    }
    fractions.push_back(f);
  }
  for (const std::string& f : fractions) {
    const auto word = parse_rfc3339(stem + f + "Z");
    ASSERT_TRUE(word.has_value()) << f;
    EXPECT_EQ(word, parse_rfc3339(stem + f + "+00:00")) << f;
    EXPECT_EQ(parse_rfc3339(stem + f + "z"), word) << f;
    EXPECT_EQ(*word % 1'000'000'000, std::stoll(f) * 1000) << f;
  }
  for (const int bad : {0, int{'/'}, int{':'}, '0' + 10, int{'a'}, 0x7f, 0xf9, 0xfa, 0xff, int{' '}, int{'.'}}) {
    for (std::size_t at = 0; at < 6; ++at) {
      std::string f = "123456";
      f[at] = static_cast<char>(bad);
      EXPECT_FALSE(parse_rfc3339(stem + f + "Z").has_value()) << "byte " << bad << " at " << at;
      EXPECT_FALSE(parse_rfc3339(stem + f + "+00:00").has_value()) << "byte " << bad << " at " << at;
    }
  }
}

TEST(timestamp, formats_like_go_rfc3339nano) {
  EXPECT_EQ(format_rfc3339_nano(*parse_rfc3339("2023-05-17T15:08:22.763960Z")), "2023-05-17T15:08:22.76396Z");
  EXPECT_EQ(format_rfc3339_nano(*parse_rfc3339("2023-05-17T13:59:57.756152Z")), "2023-05-17T13:59:57.756152Z");
  EXPECT_EQ(format_rfc3339_nano(*parse_rfc3339("2017-09-11T19:55:05Z")), "2017-09-11T19:55:05Z");
  EXPECT_EQ(format_rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
}

} // namespace
} // namespace vigil::engine
