// A C++ service embedding the engine (Bazel, CMake or pkg-config): each request
// thread keeps its connection in tls; it is closed when the thread ends,
// after the thread's at-exit handler has used it.
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tls/tls.h"

namespace {

struct Conn {
  std::string peer;
  void Close() { std::printf("closed %s\n", peer.c_str()); }
};

void Serve(const std::string& peer) {
  tls::Set("conn", tls::MakeData(Conn{peer}));
  tls::AtExit(
      [] { std::printf("handler sees %s\n", tls::Get("conn")->Value<Conn>().peer.c_str()); });
}

}  // namespace

int main() {
  for (const char* peer : {"a", "b"}) std::thread(Serve, peer).join();
  std::printf("main id %llu\n", static_cast<unsigned long long>(tls::ID()));
}
