// A request fan-out, as a service does it: the request handler sets the
// request ID and a connection, fans work out to a thread pool, and every task
// logs with the request's ID. Each request runs as a task of its own
// (tls::TaskScope), like a goroutine. The request answers without waiting for
// its parts (fire and forget): its connection is closed once, after the last
// part that holds it is done, never under a part; each pool task's own scratch
// value is closed when that task ends; nothing leaks onto the pool's threads.
// examples/request_fanout_test.sh checks the output.
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>

#include "tls/tls.h"

namespace {

std::mutex g_print;

void Print(const std::string& request, const std::string& what) {
  std::lock_guard<std::mutex> lock(g_print);
  std::printf("[%s] %s\n", request.c_str(), what.c_str());
}

// The request ID of whatever task this runs in.
std::string CurrentRequest() {
  const tls::Data* id = tls::Find("request_id");
  return id ? id->Value<std::string>() : "no request";
}

// Logging that knows the request without being told.
void Log(const std::string& what) { Print(CurrentRequest(), what); }

// Values remember their request: a close runs when the task's values are
// already detached (it sees an empty store, as at thread exit).
struct Connection {
  std::string request, peer;
  void Close() { Print(request, "connection to " + peer + " closed"); }
};

struct Scratch {
  std::string request;
  int part;
  void Close() { Print(request, "scratch of part " + std::to_string(part) + " closed"); }
};

void HandleRequest(boost::asio::thread_pool& pool, const std::string& id, int parts) {
  tls::TaskScope request;  // this request's own values, closed when it ends
  tls::Set("request_id", tls::MakeData(id));
  tls::Set("conn", tls::MakeData(Connection{id, "db-1"}));
  Log("fanning out " + std::to_string(parts) + " parts");
  for (int part = 0; part < parts; ++part) {
    boost::asio::post(pool, tls::Wrap([part] {
                        tls::Set("scratch", tls::MakeData(Scratch{CurrentRequest(), part}));
                        const tls::Data* conn = tls::Find("conn");
                        Log("part " + std::to_string(part) + " on a pool thread, connection " +
                            (conn == nullptr  ? "missing"
                             : conn->closed() ? "closed"
                                              : "open"));
                      }));
  }
  Log("answered, not waiting for its parts");
}  // the request's task ends; its connection stays open while a part holds it,
   // and is closed, once, when the last part lets go

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  boost::asio::thread_pool pool(3);
  HandleRequest(pool, "req-7", 4);
  HandleRequest(pool, "req-8", 2);

  // A task posted without Wrap sees the pool thread's own state: empty.
  std::promise<void> checked;
  boost::asio::post(pool, [&] {
    Log(std::string("plain pool task: scratch ") + (tls::Find("scratch") ? "leaked" : "gone"));
    checked.set_value();
  });
  checked.get_future().wait();
  pool.join();
  Log("main: request values " + std::string(tls::Find("conn") ? "leaked" : "gone"));
  return 0;
}
