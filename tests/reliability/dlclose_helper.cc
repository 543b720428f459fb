// Run by dlclose_test: the MAIN thread uses a plugin with its own engine,
// dlclose's it, then ends the process one way or another. Prints (unbuffered)
// whether the plugin is still mapped and, from an atexit handler (which runs
// after the main thread's exit sequence), what the plugin's callbacks did.
// Usage: dlclose_helper <plugin.so> exit|pthread_exit
#include <pthread.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "tests/reliability/dlclose_plugin_loader.h"
#include "tests/reliability/test_util.h"

namespace {

TlsPluginRecord g_record;

void Say(const std::string& line) { tls_test::WriteLine(line); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string path = tls_test::ResolvedPath(argv[1]);
  const std::string mode = argv[2];
  tls_test::Plugin plugin(path, &g_record);
  if (!plugin.ok()) {
    Say("cannot load: " + plugin.error());
    return 2;
  }
  plugin.use(2);  // the main thread's stub, hook and (main only) pthread key
  plugin.Close();
  Say(tls_test::Mapped(path) ? "mapped after dlclose" : "unmapped after dlclose");
  Say(tls_test::UnloadIfUnused(path) ? "unloaded" : "still loaded");
  std::atexit([] { Say("at exit: " + tls_test::Counts(g_record)); });
  if (mode == "exit") std::exit(0);
  if (mode == "pthread_exit") {
    // The process ends (glibc calls exit(0)) when this last thread does.
    std::thread([] { usleep(100 * 1000); }).detach();
    pthread_exit(nullptr);
  }
  Say("unknown mode " + mode);
  return 2;
}
