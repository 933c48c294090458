// JSON + table output for benchmark suites.
#include "bench_report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

namespace cosmos::bench {

BenchReport::BenchReport(std::string suite, bool quick) : suite_(std::move(suite)), quick_(quick) {}

void BenchReport::Add(const std::string& name, double value, const std::string& unit,
                      const std::string& better) {
  metrics_.push_back({name, unit, better, "", value, 0, false, {}, {}});
}

void BenchReport::AddWithBaseline(const std::string& name, double value, const std::string& unit,
                                  const std::string& better, const std::string& baseline_name,
                                  double baseline_value) {
  metrics_.push_back({name, unit, better, baseline_name, value, baseline_value, true, {}, {}});
}

void BenchReport::AddWithBaseline(const std::string& name, double value, const std::string& unit,
                                  const std::string& better, const std::string& baseline_name,
                                  double baseline_value, std::vector<double> rounds,
                                  std::vector<double> baseline_rounds) {
  metrics_.push_back({name, unit, better, baseline_name, value, baseline_value, true,
                      std::move(rounds), std::move(baseline_rounds)});
}

void BenchReport::Add(const std::string& name, double value, const std::string& unit,
                      const std::string& better, std::vector<double> rounds) {
  metrics_.push_back({name, unit, better, "", value, 0, false, std::move(rounds), {}});
}

void BenchReport::Note(const std::string& text) { notes_.push_back(text); }

bool BenchReport::Write(const std::string& dir) const {
  nlohmann::ordered_json j;
  j["suite"] = suite_;
  j["quick"] = quick_;
  utsname u{};
  uname(&u);
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j["host"] = {{"cpus", sysconf(_SC_NPROCESSORS_ONLN)}, {"kernel", u.release}, {"date", date}};
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  std::printf("%-34s %14s %-6s %-36s %14s %8s\n", "metric", "value", "unit", "baseline",
              "baseline_val", "ratio");
  for (const auto& x : metrics_) {
    nlohmann::ordered_json e;
    e["value"] = x.value;
    e["unit"] = x.unit;
    e["better"] = x.better;
    if (!x.rounds.empty()) {
      e["rounds"] = x.rounds;
      e["min"] = *std::min_element(x.rounds.begin(), x.rounds.end());
      e["max"] = *std::max_element(x.rounds.begin(), x.rounds.end());
    }
    if (x.has_baseline) {
      e["baseline"] = x.baseline_name;
      e["baseline_value"] = x.baseline_value;
      e["ratio"] = x.baseline_value != 0 ? x.value / x.baseline_value : 0.0;
      if (!x.baseline_rounds.empty()) {
        e["baseline_rounds"] = x.baseline_rounds;
        e["baseline_min"] = *std::min_element(x.baseline_rounds.begin(), x.baseline_rounds.end());
        e["baseline_max"] = *std::max_element(x.baseline_rounds.begin(), x.baseline_rounds.end());
      }
      std::printf("%-34s %14.3f %-6s %-36s %14.3f %8.3f\n", x.name.c_str(), x.value, x.unit.c_str(),
                  x.baseline_name.c_str(), x.baseline_value,
                  x.baseline_value != 0 ? x.value / x.baseline_value : 0.0);
    } else {
      std::printf("%-34s %14.3f %-6s\n", x.name.c_str(), x.value, x.unit.c_str());
    }
    m[x.name] = e;
  }
  j["metrics"] = m;
  if (!notes_.empty()) j["notes"] = notes_;
  for (const auto& n : notes_) std::printf("note: %s\n", n.c_str());
  const std::string path = dir + "/" + suite_ + ".json";
  std::ofstream out(path);
  if (!out) return false;
  out << j.dump(2) << "\n";
  std::printf("wrote %s\n", path.c_str());
  return static_cast<bool>(out);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest sample with at least q of the sample at or below it.
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank - 1), v.end());
  return v[rank - 1];
}

bool BenchReport::Merge(const std::string& dir, const std::string& replace_notes_prefix) const {
  const std::string path = dir + "/" + suite_ + ".json";
  nlohmann::ordered_json old;
  {
    std::ifstream in(path);
    if (in) old = nlohmann::ordered_json::parse(in, nullptr, /*allow_exceptions=*/false);
  }
  if (!Write(dir)) return false;
  if (!old.is_object() || !old.contains("metrics")) return true;  // nothing to keep
  nlohmann::ordered_json now;
  {
    std::ifstream in(path);
    now = nlohmann::ordered_json::parse(in, nullptr, false);
  }
  if (!now.is_object()) return false;
  nlohmann::ordered_json metrics = old["metrics"];
  for (auto& [name, m] : now["metrics"].items()) metrics[name] = m;
  nlohmann::ordered_json notes = nlohmann::ordered_json::array();
  bool merged_before = false;  // an earlier merge already named the other rows' run
  if (old.contains("notes")) {
    for (const auto& n : old["notes"]) {
      if (n.is_string() && n.get<std::string>().rfind(replace_notes_prefix, 0) == 0) continue;
      merged_before |= n.is_string() && n.get<std::string>().rfind("merged:", 0) == 0;
      notes.push_back(n);
    }
  }
  if (now.contains("notes")) {
    for (const auto& n : now["notes"]) notes.push_back(n);
  }
  if (!merged_before && old.contains("host") && old["host"].contains("date")) {
    notes.push_back("merged: rows other than " + replace_notes_prefix + " come from the run of " +
                    old["host"]["date"].get<std::string>() +
                    (old.value("quick", false) ? " (a --quick run)" : " (a full run)"));
  }
  now["metrics"] = metrics;
  now["notes"] = notes;
  std::ofstream out(path);
  if (!out) return false;
  out << now.dump(2) << "\n";
  return static_cast<bool>(out);
}

}  // namespace cosmos::bench
