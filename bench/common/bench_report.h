// BenchReport: collects metrics with their same-run baselines and writes the
// JSON shape of ../shared/BENCHMARKS.md plus a readable table on stdout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cosmos::bench {

class BenchReport {
 public:
  BenchReport(std::string suite, bool quick);

  // A metric without a baseline.
  void Add(const std::string& name, double value, const std::string& unit,
           const std::string& better);
  // A metric with its baseline measured in the same run; ratio = value / baseline.
  void AddWithBaseline(const std::string& name, double value, const std::string& unit,
                       const std::string& better, const std::string& baseline_name,
                       double baseline_value);
  // The same, with the per-round values behind the value and the baseline
  // (A/B rounds): written as "rounds" / "baseline_rounds" with their min and
  // max, so a reader sees the spread next to the median. Either may be empty.
  void AddWithBaseline(const std::string& name, double value, const std::string& unit,
                       const std::string& better, const std::string& baseline_name,
                       double baseline_value, std::vector<double> rounds,
                       std::vector<double> baseline_rounds);
  // A metric without a baseline, with its per-round values.
  void Add(const std::string& name, double value, const std::string& unit,
           const std::string& better, std::vector<double> rounds);
  // Free-form note stored under "notes" (e.g. "pool on tmpfs: not durable").
  void Note(const std::string& text);

  // Prints the table and writes `<dir>/<suite>.json`. Returns false on I/O error.
  bool Write(const std::string& dir) const;
  // Like Write, for a second program adding rows to a suite's file: metrics
  // of an existing `<dir>/<suite>.json` that this report does not replace
  // (by name) are kept, and so are its notes, except those starting with
  // `replace_notes_prefix` (this report's notes should start with it). The
  // file's host/date become this run's; a note records the earlier date.
  bool Merge(const std::string& dir, const std::string& replace_notes_prefix) const;

 private:
  struct Metric {
    std::string name, unit, better, baseline_name;
    double value = 0, baseline_value = 0;
    bool has_baseline = false;
    std::vector<double> rounds, baseline_rounds;
  };
  std::string suite_;
  bool quick_;
  std::vector<Metric> metrics_;
  std::vector<std::string> notes_;
};

// Median of a sample (copied); 0 for empty input.
double Median(std::vector<double> v);

// Exact nearest-rank quantile (q in [0, 1]) of a sample (copied); 0 for
// empty input. For latency ratios that must not carry LatencyHistogram's
// bucket rounding (up to one ~1.6-3% bucket, in either direction per side).
double Quantile(std::vector<double> v, double q);

}  // namespace cosmos::bench
