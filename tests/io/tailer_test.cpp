// Following a file: appends, rotation by rename, truncation, and a restart from the saved position,
// each line processed exactly once.
#include "io/file/tailer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/counters/counters.h"
#include "rules/matcher/ruleset.h"

namespace vigil::io {
namespace {

namespace fs = std::filesystem;

// Counts pod-exec alerts by pod name (each line of these files is one exec into a distinct pod).
class counting_output final : public pipeline::output_handler {
 public:
  void on_alert(const engine::alert& a) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++by_name_[a.resource_name];
  }
  void on_error(const std::string& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    errors_.push_back(e);
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  std::size_t total() {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t n = 0;
    for (const auto& [k, v] : by_name_) {
      n += v;
    }
    return n;
  }
  std::map<std::string, int> snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    return by_name_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> by_name_;
  std::vector<std::string> errors_;
};

std::string exec_line(const std::string& pod) {
  return R"({"auditID":")" + pod + R"(","stage":"ResponseComplete","verb":"create","user":{"username":"u"},"sourceIPs":["192.0.2.5"],"objectRef":{"resource":"pods","subresource":"exec","name":")" +
         pod + R"("},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"})" + "\n";
}

void append(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::app);
  out << text;
}

// Waits (bounded) for the pipeline to have produced `n` alerts. File tailing is a real-time
// activity: there is no clock to drive, only a deadline.
bool wait_for(counting_output& out, std::size_t n) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    if (out.total() >= n) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::shared_ptr<const rules::ruleset> shipped() {
  return std::get<std::shared_ptr<const rules::ruleset>>(rules::load_ruleset({}));
}

// Follows `t` with a pipeline of its own until `n` alerts came and a moment more passed (nothing
// more may come), then stops: the alerts by pod.
std::map<std::string, int> follow_until(const tail_options& t, std::size_t n) {
  counting_output out;
  pipeline::pipeline pl(shipped(), pipeline::options{}, out);
  tailer tail(pl, t);
  EXPECT_TRUE(wait_for(out, n));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  tail.stop();
  pl.finish();
  return out.snapshot();
}

fs::path fresh_dir(const char* name) {
  const fs::path d = fs::path(::testing::TempDir()) / (std::string(name) + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(tailer, follows_appends_rotation_and_truncation_without_loss_or_duplicates) {
  const fs::path dir = fresh_dir("vigil_tail");
  const fs::path log = dir / "audit.log";
  append(log, exec_line("a1") + exec_line("a2") + exec_line("a3"));
  counting_output out;
  pipeline::options po;
  po.workers = 2;
  pipeline::pipeline pl(shipped(), po, out);
  tail_options t;
  t.path = log.string();
  t.position_file = (dir / "pos").string();
  t.from_beginning = true;
  t.poll_ms = 20;
  tailer tail(pl, t);
  ASSERT_TRUE(wait_for(out, 3));

  append(log, exec_line("b1") + std::string(exec_line("b2")).substr(0, 40)); // b2 cut mid-line
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  append(log, std::string(exec_line("b2")).substr(40));
  ASSERT_TRUE(wait_for(out, 5));

  // Rotation as a log writer does it: rename, a last line still written to the old file, then
  // the new file.
  fs::rename(log, dir / "audit.log.1");
  append(dir / "audit.log.1", exec_line("c1"));
  append(log, exec_line("d1") + exec_line("d2"));
  ASSERT_TRUE(wait_for(out, 8));
  EXPECT_GE(tail.rotations(), 1u);

  // copytruncate: the file is emptied in place, then written again.
  fs::resize_file(log, 0);
  append(log, exec_line("e1"));
  ASSERT_TRUE(wait_for(out, 9));

  tail.stop();
  pl.finish();
  const auto seen = out.snapshot();
  EXPECT_EQ(seen.size(), 9u);
  for (const char* pod : {"a1", "a2", "a3", "b1", "b2", "c1", "d1", "d2", "e1"}) {
    EXPECT_EQ(seen.count(pod) ? seen.at(pod) : 0, 1) << pod;
  }
}

TEST(tailer, a_line_cut_short_does_not_hold_the_next_lines_back) {
  const fs::path dir = fresh_dir("vigil_tail_cut");
  const fs::path log = dir / "audit.log";
  append(log, exec_line("a1"));
  counting_output out;
  pipeline::pipeline pl(shipped(), pipeline::options{}, out);
  tail_options t;
  t.path = log.string();
  t.from_beginning = true;
  t.poll_ms = 20;
  tailer tail(pl, t);
  ASSERT_TRUE(wait_for(out, 1));

  // Cut after a comma (a brace left open, no string): the framer cannot tell it from the first
  // line of a pretty-printed document until the writer has long moved on.
  // The give-up is timed from when the document was first seen open, so lines that keep coming
  // (a busy log) do not hold it off: the events arrive while the writer is still writing.
  const std::string a2 = exec_line("a2");
  append(log, a2.substr(0, a2.find(",\"verb\"") + 1) + "\n" + exec_line("a3"));
  int written = 0;
  bool while_writing = false;
  for (; written < 40 && !while_writing; ++written) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    append(log, exec_line(std::string("w").append(std::to_string(written))));
    while_writing = out.total() >= 2;
  }
  EXPECT_TRUE(while_writing);
  append(log, exec_line("a4"));
  const std::size_t after_a4 = 3 + static_cast<std::size_t>(written);
  ASSERT_TRUE(wait_for(out, after_a4));
  // When a stuck line is given up on, a pretty-printed document being written after it is not
  // cut with it: only the stuck line is.
  const std::string a5 = exec_line("a5");
  const std::string pretty = exec_line("p1");
  const std::size_t half = pretty.find(",\"verb\"") + 1;
  append(log, a5.substr(0, a5.find(",\"verb\"") + 1) + "\n" + exec_line("a6") + pretty.substr(0, half) + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  append(log, pretty.substr(half));
  const std::size_t after_pretty = after_a4 + 2;
  ASSERT_TRUE(wait_for(out, after_pretty));
  // And the old file's last line, without its line break, is read when the file is rotated.
  const std::string r1 = exec_line("r1");
  append(log, r1.substr(0, r1.size() - 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  fs::rename(log, dir / "audit.log.1");
  append(log, exec_line("n1"));
  ASSERT_TRUE(wait_for(out, after_pretty + 2));

  tail.stop();
  pl.finish();
  const auto seen = out.snapshot();
  EXPECT_EQ(seen.size(), after_pretty + 2);
  for (const char* pod : {"a1", "a3", "a4", "a6", "p1", "r1", "n1", "w0"}) {
    EXPECT_EQ(seen.count(pod) ? seen.at(pod) : 0, 1) << pod;
  }
  const auto errors = out.errors();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("audit.log:2: "), std::string::npos) << errors[0];
}

TEST(tailer, restart_goes_on_from_the_saved_position) {
  const fs::path dir = fresh_dir("vigil_tail_restart");
  const fs::path log = dir / "audit.log";
  append(log, exec_line("p1") + exec_line("p2") + exec_line("p3"));
  tail_options t;
  t.path = log.string();
  t.position_file = (dir / "pos").string();
  t.from_beginning = true;
  t.poll_ms = 20;
  {
    counting_output out;
    pipeline::pipeline pl(shipped(), pipeline::options{}, out);
    tailer tail(pl, t);
    ASSERT_TRUE(wait_for(out, 3));
    tail.stop();
    pl.finish();
  }
  append(log, exec_line("q1") + exec_line("q2"));
  counting_output out;
  pipeline::pipeline pl(shipped(), pipeline::options{}, out);
  t.from_beginning = false; // irrelevant: the saved position wins for the same file
  tailer tail(pl, t);
  ASSERT_TRUE(wait_for(out, 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(200)); // nothing more may come
  tail.stop();
  pl.finish();
  const auto seen = out.snapshot();
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen.count("q1"), 1u);
  EXPECT_EQ(seen.count("q2"), 1u);
}

TEST(tailer, a_new_file_without_position_starts_at_its_end) {
  const fs::path dir = fresh_dir("vigil_tail_end");
  const fs::path log = dir / "audit.log";
  append(log, exec_line("old1") + exec_line("old2"));
  counting_output out;
  pipeline::pipeline pl(shipped(), pipeline::options{}, out);
  tail_options t;
  t.path = log.string();
  t.position_file = (dir / "pos").string();
  t.poll_ms = 20;
  tailer tail(pl, t);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  append(log, exec_line("new1"));
  ASSERT_TRUE(wait_for(out, 1));
  tail.stop();
  pl.finish();
  const auto seen = out.snapshot();
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.count("new1"), 1u);
}

// A file that appears after vigil started following its path was written since: with `start:
// end` too, it is read from its beginning.
TEST(tailer, a_file_that_appears_later_is_read_from_its_beginning) {
  const fs::path dir = fresh_dir("vigil_tail_later");
  const fs::path log = dir / "audit.log";
  counting_output out;
  pipeline::pipeline pl(shipped(), pipeline::options{}, out);
  tail_options t;
  t.path = log.string();
  t.position_file = (dir / "pos").string();
  t.poll_ms = 20;
  tailer tail(pl, t);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  append(log, exec_line("born1") + exec_line("born2"));
  ASSERT_TRUE(wait_for(out, 2));
  append(log, exec_line("born3"));
  ASSERT_TRUE(wait_for(out, 3));
  tail.stop();
  pl.finish();
  const auto seen = out.snapshot();
  EXPECT_EQ(seen.size(), 3u);
  for (const char* pod : {"born1", "born2", "born3"}) {
    EXPECT_EQ(seen.count(pod) ? seen.at(pod) : 0, 1) << pod;
  }
}

// Rotated while vigil was down: the rest of the old file (found renamed beside it by its inode),
// then the new file from its beginning; rewritten in place while down (the same inode, longer,
// other first bytes): from its beginning.
TEST(tailer, rotation_while_stopped_loses_nothing) {
  const fs::path dir = fresh_dir("vigil_tail_down");
  const fs::path log = dir / "audit.log";
  append(log, exec_line("r1") + exec_line("r2"));
  tail_options t;
  t.path = log.string();
  t.position_file = (dir / "pos").string();
  t.poll_ms = 20;
  t.from_beginning = true;
  auto run_until = [&](std::size_t n, const std::vector<std::string>& want) {
    std::map<std::string, int> expected;
    for (const auto& pod : want) {
      expected[pod] = 1;
    }
    EXPECT_EQ(follow_until(t, n), expected);
  };
  run_until(2, {"r1", "r2"});
  t.from_beginning = false; // what follows is settled by the saved position
  append(log, exec_line("s1"));                  // after the position, in the old file
  fs::rename(log, dir / "audit.log.1");          // rotated while vigil is down
  append(log, exec_line("t1") + exec_line("t2")); // the new file
  run_until(3, {"s1", "t1", "t2"});
  // The same file emptied and written again, longer than before, while vigil is down.
  fs::resize_file(log, 0);
  append(log, exec_line("u1-longer-name") + exec_line("u2-longer-name") + exec_line("u3"));
  run_until(3, {"u1-longer-name", "u2-longer-name", "u3"});
}

// The file found by the saved inode must start as the saved one did: a file that reuses the
// inode since is not read as the rest of the old one. A file followed through a symbolic link
// is looked for beside the link's target.
TEST(tailer, after_a_restart_only_the_rotated_file_itself_is_finished) {
  const fs::path dir = fresh_dir("vigil_tail_reuse");
  const fs::path log = dir / "audit.log";
  const fs::path other = dir / "backup.log";
  append(other, exec_line("other1") + exec_line("other2"));
  append(log, exec_line("new1"));
  {
    // As if vigil had been reading a file whose inode `other` now has, from other first bytes.
    struct stat st {};
    ASSERT_EQ(::stat(other.c_str(), &st), 0);
    std::ofstream(dir / "pos") << st.st_ino << " 10 256 12345\n";
  }
  tail_options t;
  t.path = log.string();
  t.position_file = (dir / "pos").string();
  t.poll_ms = 20;
  EXPECT_EQ(follow_until(t, 1), (std::map<std::string, int>{{"new1", 1}}));
  // Through a symbolic link: rotated beside the target while vigil is down.
  fs::create_directories(dir / "real");
  fs::create_directories(dir / "lnk");
  const fs::path real = dir / "real" / "audit.log";
  append(real, exec_line("l1"));
  fs::create_symlink(real, dir / "lnk" / "audit.log");
  t.path = (dir / "lnk" / "audit.log").string();
  t.position_file = (dir / "lnk-pos").string();
  t.from_beginning = true;
  EXPECT_EQ(follow_until(t, 1), (std::map<std::string, int>{{"l1", 1}}));
  append(real, exec_line("l2"));
  fs::rename(real, dir / "real" / "audit.log.1");
  append(real, exec_line("l3"));
  EXPECT_EQ(follow_until(t, 2), (std::map<std::string, int>{{"l2", 1}, {"l3", 1}}));
}

// copytruncate under a busy writer: emptied and written again past the old offset between two
// reads. The size does not show it; the first bytes do, and the new contents are read whole.
TEST(tailer, truncation_then_a_longer_rewrite_between_two_reads_is_seen) {
  const fs::path dir = fresh_dir("vigil_tail_rewrite");
  const fs::path log = dir / "audit.log";
  append(log, exec_line("v1"));
  counting_output out;
  pipeline::pipeline pl(shipped(), pipeline::options{}, out);
  tail_options t;
  t.path = log.string();
  t.from_beginning = true;
  t.poll_ms = 300;
  tailer tail(pl, t);
  ASSERT_TRUE(wait_for(out, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // the tailer is asleep until its next look
  fs::resize_file(log, 0);
  append(log, exec_line("w1") + exec_line("w2") + exec_line("w3"));
  ASSERT_TRUE(wait_for(out, 4));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  tail.stop();
  pl.finish();
  const auto seen = out.snapshot();
  EXPECT_EQ(seen.size(), 4u);
  for (const char* pod : {"v1", "w1", "w2", "w3"}) {
    EXPECT_EQ(seen.count(pod) ? seen.at(pod) : 0, 1) << pod;
  }
  EXPECT_TRUE(out.errors().empty()) << out.errors()[0];
  EXPECT_EQ(tail.rotations(), 1u);
}

// A position that cannot be saved (its directory is gone) is counted and said once; the file is
// still followed.
TEST(tailer, a_position_that_cannot_be_saved_is_counted) {
  const fs::path dir = fresh_dir("vigil_tail_nopos");
  const fs::path log = dir / "audit.log";
  counting_output out;
  pipeline::pipeline pl(shipped(), pipeline::options{}, out);
  tail_options t;
  t.path = log.string();
  t.position_file = (dir / "missing" / "pos").string();
  t.poll_ms = 20;
  tailer tail(pl, t);
  append(log, exec_line("x1"));
  ASSERT_TRUE(wait_for(out, 1));
  tail.stop();
  pl.finish();
  EXPECT_GT(counters::registry::global().read("vigil_file_position_errors_total", {{"path", log.string()}}), 0u);
}

} // namespace
} // namespace vigil::io
