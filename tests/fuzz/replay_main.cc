// Driver for fuzz targets in builds without libFuzzer (g++): runs every file
// given on the command line (or in given directories), then a fixed number of
// deterministic pseudo-random inputs, through LLVMFuzzerTestOneInput. Keeps
// fuzz entry points compiled and exercised in every build.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
void RunFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
}
}  // namespace

int main(int argc, char** argv) {
  long iterations = 10000;
  size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--iterations=", 13) == 0) {
      iterations = std::strtol(argv[i] + 13, nullptr, 10);
      continue;
    }
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) {
          RunFile(e.path());
          ++files;
        }
      }
    } else if (std::filesystem::exists(p)) {
      RunFile(p);
      ++files;
    }
  }
  std::mt19937_64 rng(12345);
  std::vector<uint8_t> buf;
  for (long i = 0; i < iterations; ++i) {
    buf.resize(rng() % 4096);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  }
  std::printf("replay: %zu corpus files, %ld random inputs, no crash\n", files, iterations);
  return 0;
}
