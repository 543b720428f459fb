// Helpers shared by the reliability tests: sanitizer detection, scaling of
// workloads, reading RSS, and running a helper binary with a time limit.
#ifndef TLS_TESTS_RELIABILITY_TEST_UTIL_H_
#define TLS_TESTS_RELIABILITY_TEST_UTIL_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define TLS_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define TLS_TEST_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TLS_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define TLS_TEST_TSAN 1
#endif
#endif

namespace tls_test {

inline constexpr bool kAsan =
#ifdef TLS_TEST_ASAN
    true;
#else
    false;
#endif
inline constexpr bool kTsan =
#ifdef TLS_TEST_TSAN
    true;
#else
    false;
#endif

// `plain` normally; scaled down under a sanitizer (they make thread creation
// and every allocation much slower). `env`, if set, overrides both.
inline long Scaled(const char* env, long plain, long asan, long tsan) {
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return std::atol(v);
  if (kTsan) return tsan;
  if (kAsan) return asan;
  return plain;
}

// Resident set size in bytes, from /proc/self/statm.
inline long ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

inline double NowSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct ChildResult {
  bool timed_out = false;
  int status = 0;   // as from waitpid
  std::string out;  // stdout and stderr, interleaved
  bool exited_ok() const { return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string Describe() const {
    std::string s = timed_out             ? "TIMED OUT"
                    : WIFEXITED(status)   ? "exit " + std::to_string(WEXITSTATUS(status))
                    : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                          : "?";
    return s + "; output:\n" + out;
  }
};

// Reads everything `fd` delivers until EOF or `deadline` (monotonic seconds).
inline bool DrainUntil(int fd, double deadline, std::string* out) {
  char buf[4096];
  for (;;) {
    const double left = deadline - NowSeconds();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

// Waits for `pid` until `deadline`; kills it (and reports a time-out) after.
inline void WaitOrKill(pid_t pid, double deadline, ChildResult* r) {
  for (;;) {
    const pid_t w = waitpid(pid, &r->status, WNOHANG);
    if (w == pid) return;
    if (NowSeconds() > deadline) {
      r->timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &r->status, 0);
      return;
    }
    usleep(2000);
  }
}

// Forks the calling process with the child's stdout and stderr going to a
// pipe. Returns what fork() does: 0 in the child; the child's pid in the
// parent, with the pipe's read end in *read_fd; -1 on failure. No exec: the
// child goes on running this program, as a real fork user's child does, and
// decides itself how it ends (exit, _exit, its last thread ending).
inline pid_t ForkCapturingOutput(int* read_fd) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    return 0;
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  *read_fd = fds[0];
  return pid;
}

// Collects what a child from ForkCapturingOutput prints and how it ends,
// killing it (and reporting a time-out) if it has not ended after
// `timeout_s` seconds: a hang fails the test instead of hanging it.
inline ChildResult CollectChild(pid_t pid, int read_fd, double timeout_s) {
  ChildResult r;
  const double deadline = NowSeconds() + timeout_s;
  DrainUntil(read_fd, deadline, &r.out);
  close(read_fd);
  WaitOrKill(pid, deadline, &r);
  return r;
}

// Runs `body` in a forked child and ends the child with _exit(body's
// return value) unless the body ended it first, capturing its output and
// killing it after `timeout_s` seconds.
template <class Body>
ChildResult RunForked(Body&& body, double timeout_s) {
  int fd = -1;
  const pid_t pid = ForkCapturingOutput(&fd);
  if (pid == 0) _exit(body());
  if (pid < 0) {
    ChildResult r;
    r.out = "fork failed";
    r.status = 1 << 8;
    return r;
  }
  return CollectChild(pid, fd, timeout_s);
}

// Runs `argv` (argv[0] is a path) with stdout+stderr captured, killing it
// after `timeout_s` seconds.
// `env_append` entries "NAME=value" are appended to NAME (":"-joined) in the
// child's environment.
inline ChildResult RunWithTimeout(const std::vector<std::string>& argv, double timeout_s,
                                  const std::vector<std::string>& env_append = {}) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return RunForked(
      [&] {
        for (const std::string& e : env_append) {
          const size_t eq = e.find('=');
          const std::string name = e.substr(0, eq);
          const char* old = std::getenv(name.c_str());
          const std::string value = (old && *old ? std::string(old) + ":" : "") + e.substr(eq + 1);
          setenv(name.c_str(), value.c_str(), 1);
        }
        execv(args[0], args.data());
        return 127;
      },
      timeout_s);
}

// Writes `line` and a newline to stdout in one unbuffered write: safe from a
// fork child, a destructor at exit, or just before _exit.
inline void WriteLine(const std::string& line) {
  const std::string s = line + "\n";
  (void)!write(1, s.data(), s.size());
}

// A child's output, split into lines.
inline std::vector<std::string> Lines(const std::string& out) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(out.substr(start, nl - start));
  }
  if (start < out.size()) lines.push_back(out.substr(start));
  return lines;
}

inline int Count(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<int>(std::count(lines.begin(), lines.end(), line));
}

// "" if `want` appear in `lines` in this order (others may be interleaved);
// otherwise which one is missing.
inline std::string InOrder(const std::vector<std::string>& lines,
                           const std::vector<std::string>& want) {
  auto at = lines.begin();
  for (const std::string& w : want) {
    at = std::find(at, lines.end(), w);
    if (at == lines.end()) return "missing (in order): \"" + w + "\"";
    ++at;
  }
  return "";
}

// Path of a data dependency, from the test's runfiles.
inline std::string Runfile(const std::string& workspace_relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  std::string base = srcdir ? srcdir : ".";
  return base + "/" + (ws ? ws : "tls") + "/" + workspace_relative;
}

}  // namespace tls_test

#endif  // TLS_TESTS_RELIABILITY_TEST_UTIL_H_
