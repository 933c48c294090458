// The install-tree consumer: starts the cosmosd given as argv[1] on a temp
// pool, then uses only the installed public API (cosmos/client.h) to create a
// region, write, flush and read it back. Exit 0 on success.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cosmos/client.h"
#include "cosmos/version.h"

namespace {

int Fail(const std::string& what, pid_t daemon) {
  std::fprintf(stderr, "consumer: %s\n", what.c_str());
  if (daemon > 0) kill(daemon, SIGKILL);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return Fail("usage: consumer COSMOSD WORKDIR", -1);
  const std::string dir = argv[2];
  const std::string port_file = dir + "/port";
  std::filesystem::remove(port_file);
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string pool = dir + "/consumer.pool,size=16M,create";
    execl(argv[1], argv[1], "--listen", "127.0.0.1", "--port", "0", "--port-file",
          port_file.c_str(), "--pool", pool.c_str(), "--log-level", "warn",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 1000 && port == 0; ++i) {
    std::ifstream in(port_file);
    if (!(in >> port)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (port == 0) return Fail("cosmosd did not start", pid);

  cosmos::ClientOptions options;
  options.server = "127.0.0.1:" + std::to_string(port);
  auto client = cosmos::Client::Connect(options);
  if (!client.ok()) return Fail(client.status().ToString(), pid);
  auto info = (*client)->CreateRegion("consumer", 4096, {});
  if (!info.ok()) return Fail(info.status().ToString(), pid);
  auto region = (*client)->OpenRegion("consumer");
  if (!region.ok()) return Fail(region.status().ToString(), pid);
  const std::string text = "installed " COSMOS_VERSION_STRING;
  std::vector<std::byte> data(text.size());
  for (size_t i = 0; i < text.size(); ++i) data[i] = static_cast<std::byte>(text[i]);
  if (auto s = (*region)->Write(0, data); !s.ok()) return Fail(s.ToString(), pid);
  if (auto s = (*region)->Flush(0, data.size()); !s.ok()) return Fail(s.ToString(), pid);
  std::vector<std::byte> back(data.size());
  if (auto s = (*region)->Read(0, back); !s.ok()) return Fail(s.ToString(), pid);
  if (back != data) return Fail("read back different bytes", pid);
  region->reset();
  client->reset();
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Fail("cosmosd exit status", -1);
  std::printf("consumer: wrote, flushed and read back '%s'\n", text.c_str());
  return 0;
}
