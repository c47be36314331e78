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

TEST(timestamp, formats_like_go_rfc3339nano) {
  EXPECT_EQ(format_rfc3339_nano(*parse_rfc3339("2023-05-17T15:08:22.763960Z")), "2023-05-17T15:08:22.76396Z");
  EXPECT_EQ(format_rfc3339_nano(*parse_rfc3339("2023-05-17T13:59:57.756152Z")), "2023-05-17T13:59:57.756152Z");
  EXPECT_EQ(format_rfc3339_nano(*parse_rfc3339("2017-09-11T19:55:05Z")), "2017-09-11T19:55:05Z");
  EXPECT_EQ(format_rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
}

} // namespace
} // namespace vigil::engine
