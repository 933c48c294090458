// cosmosd configuration: TOML keys, --pool flag syntax, opening pools.
#include "server/daemon_config.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "common/log.h"
#include "common/metrics.h"
#include "common/size.h"
#include "sec/protected_region.h"

namespace cosmos::server {
namespace {

// server.mtu / --mtu: the RPC layer's minimum datagram and the UDP
// transport's largest (9000-byte datagrams; 8972 fills a jumbo frame).
constexpr int64_t kMinConfigMtu = 256;
constexpr int64_t kMaxConfigMtu = 9000;

// Pool sizes: at least 1 MiB (a size written as a bare MiB count, the old
// `size_mb` habit, is caught here), at most 16 TiB.
constexpr uint64_t kMinPoolBytes = uint64_t{1} << 20;
constexpr uint64_t kMaxPoolBytes = uint64_t{1} << 44;

// Every key cosmosd reads (docs/operations.md "Configuration file"); any
// other key or section in the file is a typo and refused.
constexpr std::string_view kKnownKeys[] = {
    "server.listen",
    "server.port",
    "server.workers",
    "server.flushers",
    "server.mtu",
    "server.busy_poll",
    "server.idle_spin_us",
    "server.log_level",
    "server.log_file",
    "server.log_format",
    "server.platform_keys",
    "server.enclave_state",
    "server.allow",
    "server.secure_block_size",
    "server.require_secure",
    "server.freshness",
    "server.relaxed_window",
    "server.counter_delay_ms",
    "server.accept_counter_reset",  // refused below with its own explanation
    "server.secure_flushers",
    "server.metrics_listen",
    "qos.client_bytes_per_sec",
    "qos.client_ops_per_sec",
    "qos.region_bytes_per_sec",
    "qos.region_ops_per_sec",
    "qos.burst_seconds",
    "pool[].name",
    "pool[].path",
    "pool[].size",
    "pool[].size_mb",
    "pool[].backend",
    "pool[].create",
};

// A pool size from ParseSize or a config integer: 1 MiB .. 16 TiB. `what`
// names the setting in the error.
Result<uint64_t> CheckPoolSize(uint64_t bytes, const std::string& what) {
  if (bytes < kMinPoolBytes) {
    return Status::InvalidArgument(what + " = " + std::to_string(bytes) +
                                   " bytes: a pool needs at least 1M (sizes without a unit are "
                                   "bytes; write e.g. 64M)");
  }
  if (bytes > kMaxPoolBytes) {
    return Status::InvalidArgument(what + " = " + std::to_string(bytes) +
                                   " bytes: a pool is at most 16T");
  }
  return bytes;
}

// [[pool]] size: `size` (an integer byte count or a size string such as
// "64M") or the deprecated `size_mb` (an integer MiB count); 64M when absent.
Result<uint64_t> PoolSizeFromConfig(const ConfigFile& p, const std::string& origin) {
  const bool has_size = p.Has("size"), has_mb = p.Has("size_mb");
  if (has_size && has_mb) {
    return Status::InvalidArgument("config " + origin +
                                   ": give 'size' or the deprecated 'size_mb', not both");
  }
  if (has_mb) {
    COSMOS_ASSIGN_OR_RETURN(int64_t mb, p.GetInt("size_mb", 64, 1, 1 << 24));
    COSMOS_LOG_WARN("cosmosd: config {}: 'size_mb = {}' is deprecated; write size = \"{}M\"",
                    origin, mb, mb);
    return static_cast<uint64_t>(mb) << 20;
  }
  if (!has_size) return uint64_t{64} << 20;
  const std::string what = "config " + origin + ": key 'size'";
  if (auto text = p.GetString("size", ""); text.ok()) {
    auto bytes = ParseSize(*text);
    if (!bytes.ok()) return bytes.status().WithContext(what);
    return CheckPoolSize(*bytes, what);
  }
  auto n = p.GetInt("size", 0, 0);
  if (!n.ok()) {
    return Status::InvalidArgument(what + " must be a size string (\"64M\") or a byte count");
  }
  return CheckPoolSize(static_cast<uint64_t>(*n), what);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find('.');
  if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
  return base.empty() ? "pool" : base;
}

// `key` as a string or an array of strings; `present` tells whether the key
// is in the file at all. An empty array is an empty list.
Result<std::vector<std::string>> GetStringList(const ConfigFile& f, const std::string& key,
                                               bool* present) {
  *present = f.Has(key);
  std::vector<std::string> out;
  if (!*present) return out;
  const Status wrong = Status::InvalidArgument("config " + f.origin() + ": key '" + key +
                                               "' must be a string or an array of strings");
  if (!f.Has(key + "[0]")) {
    // A string, an empty array (toml++ paths index arrays) or a wrong type.
    if (auto one = f.GetString(key, ""); one.ok()) {
      out.push_back(*one);
      return out;
    }
    if (f.GetInt(key, 0).ok() || f.GetBool(key, false).ok() || f.GetDouble(key, 0).ok()) {
      return wrong;
    }
    return out;
  }
  for (size_t i = 0;; ++i) {
    const std::string element = key + "[" + std::to_string(i) + "]";
    if (!f.Has(element)) break;
    auto v = f.GetString(element, "");
    if (!v.ok()) return wrong;
    out.push_back(*v);
  }
  return out;
}

}  // namespace

Status ValidateSecureConfig(const SecureConfig& s) {
  const uint32_t b = s.block_size;
  if (b < 512 || b > 65536 || (b & (b - 1)) != 0) {
    return Status::InvalidArgument("secure_block_size " + std::to_string(b) +
                                   ": must be a power of two in [512, 65536]");
  }
  if (s.freshness != "strict" && s.freshness != "relaxed") {
    return Status::InvalidArgument("freshness '" + s.freshness + "': must be strict or relaxed");
  }
  if (s.relaxed_window < 1 || s.relaxed_window > 1'000'000) {
    return Status::InvalidArgument("relaxed_window " + std::to_string(s.relaxed_window) +
                                   ": must be 1..1000000");
  }
  if (s.counter_delay_ms > 60'000) {
    return Status::InvalidArgument("counter_delay_ms " + std::to_string(s.counter_delay_ms) +
                                   ": must be 0..60000");
  }
  if (s.platform_keys.empty()) {
    if (!s.allow.empty()) return Status::InvalidArgument("allow needs platform_keys");
    if (!s.enclave_state.empty())
      return Status::InvalidArgument("enclave_state needs platform_keys");
    if (s.require_secure)
      return Status::InvalidArgument("require_secure needs platform_keys (secure mode)");
  }
  return Status::Ok();
}

sec::RegionPolicy RegionPolicyFor(const SecureConfig& s) {
  sec::RegionPolicy p;
  p.counter_mode =
      s.freshness == "relaxed" ? sec::CounterMode::kRelaxed : sec::CounterMode::kStrict;
  p.relaxed_window = s.relaxed_window;
  p.accept_counter_reset = s.accept_counter_reset;
  return p;
}

std::string DescribeFreshness(const SecureConfig& s) {
  const std::string counter =
      "simulated trusted counter (models a hardware/remote counter) "
      "with a " +
      std::to_string(s.counter_delay_ms) + " ms stabilisation delay";
  if (s.freshness == "relaxed") {
    return "freshness relaxed: a flush is acknowledged before its counter value is stable; "
           "rollback window " +
           std::to_string(s.relaxed_window) +
           " flushes per region (a crash plus a host rollback can undo at most the last " +
           std::to_string(s.relaxed_window) + " acknowledged flushes); " + counter;
  }
  return "freshness strict: a flush is acknowledged only once its counter value is stable "
         "(flushes waiting together share one value); rollback window 0 flushes; "
         "flush latency >= the delay; " +
         counter;
}

Result<DaemonConfig> LoadDaemonConfig(const ConfigFile& f, DaemonConfig c) {
  COSMOS_RETURN_IF_ERROR(f.CheckKnownKeys(kKnownKeys));
  COSMOS_ASSIGN_OR_RETURN(c.server.listen_ip, f.GetString("server.listen", c.server.listen_ip));
  COSMOS_ASSIGN_OR_RETURN(int64_t port, f.GetInt("server.port", c.server.port, 0, 65535));
  c.server.port = static_cast<uint16_t>(port);
  COSMOS_ASSIGN_OR_RETURN(int64_t workers, f.GetInt("server.workers", c.server.workers, 1, 64));
  c.server.workers = static_cast<uint32_t>(workers);
  COSMOS_ASSIGN_OR_RETURN(int64_t flushers, f.GetInt("server.flushers", c.server.flushers, 1, 64));
  c.server.flushers = static_cast<uint32_t>(flushers);
  COSMOS_ASSIGN_OR_RETURN(int64_t mtu, f.GetInt("server.mtu", static_cast<int64_t>(c.server.mtu),
                                                kMinConfigMtu, kMaxConfigMtu));
  c.server.mtu = static_cast<size_t>(mtu);
  COSMOS_ASSIGN_OR_RETURN(c.server.busy_poll, f.GetBool("server.busy_poll", c.server.busy_poll));
  COSMOS_ASSIGN_OR_RETURN(int64_t spin,
                          f.GetInt("server.idle_spin_us", c.server.idle_spin_us, 0, 10'000'000));
  c.server.idle_spin_us = static_cast<uint32_t>(spin);
  COSMOS_ASSIGN_OR_RETURN(c.log_level, f.GetString("server.log_level", c.log_level));
  COSMOS_ASSIGN_OR_RETURN(c.log_file, f.GetPath("server.log_file", c.log_file));
  COSMOS_ASSIGN_OR_RETURN(c.log_format, f.GetString("server.log_format", c.log_format));
  COSMOS_ASSIGN_OR_RETURN(c.metrics_listen, f.GetString("server.metrics_listen", c.metrics_listen));
  SecureConfig& sc = c.secure;
  COSMOS_ASSIGN_OR_RETURN(sc.platform_keys, f.GetPath("server.platform_keys", sc.platform_keys));
  COSMOS_ASSIGN_OR_RETURN(sc.enclave_state, f.GetPath("server.enclave_state", sc.enclave_state));
  bool allow_present = false;
  COSMOS_ASSIGN_OR_RETURN(std::vector<std::string> allow,
                          GetStringList(f, "server.allow", &allow_present));
  if (allow_present) {
    for (auto& a : allow) a = f.ResolvePath(a);
    sc.allow = std::move(allow);
  }
  for (const auto& a : sc.allow) {
    if (a.empty())
      return Status::InvalidArgument("config " + f.origin() +
                                     ": key 'server.allow' has an empty path");
  }
  COSMOS_ASSIGN_OR_RETURN(int64_t block,
                          f.GetInt("server.secure_block_size", sc.block_size, 512, 65536));
  sc.block_size = static_cast<uint32_t>(block);
  COSMOS_ASSIGN_OR_RETURN(sc.require_secure, f.GetBool("server.require_secure", sc.require_secure));
  COSMOS_ASSIGN_OR_RETURN(sc.freshness, f.GetString("server.freshness", sc.freshness));
  if (sc.freshness != "strict" && sc.freshness != "relaxed") {
    return Status::InvalidArgument("config " + f.origin() +
                                   ": key 'server.freshness' must be \"strict\" or \"relaxed\"");
  }
  COSMOS_ASSIGN_OR_RETURN(int64_t window,
                          f.GetInt("server.relaxed_window", sc.relaxed_window, 1, 1'000'000));
  sc.relaxed_window = static_cast<uint32_t>(window);
  COSMOS_ASSIGN_OR_RETURN(int64_t delay,
                          f.GetInt("server.counter_delay_ms", sc.counter_delay_ms, 0, 60'000));
  sc.counter_delay_ms = static_cast<uint32_t>(delay);
  if (f.Has("server.accept_counter_reset")) {
    return Status::InvalidArgument(
        "config " + f.origin() +
        ": key 'server.accept_counter_reset' is not a file key: the override is the one-off "
        "flag --accept-counter-reset (docs/operations.md)");
  }
  COSMOS_ASSIGN_OR_RETURN(int64_t sflushers,
                          f.GetInt("server.secure_flushers", c.server.secure_flushers, 1, 256));
  c.server.secure_flushers = static_cast<uint32_t>(sflushers);
  if ((sc.block_size & (sc.block_size - 1)) != 0) {
    return Status::InvalidArgument("config " + f.origin() +
                                   ": key 'server.secure_block_size' must be a power of two");
  }
  auto& q = c.server.qos;
  COSMOS_ASSIGN_OR_RETURN(q.client_bytes_per_sec,
                          f.GetDouble("qos.client_bytes_per_sec", q.client_bytes_per_sec));
  COSMOS_ASSIGN_OR_RETURN(q.client_ops_per_sec,
                          f.GetDouble("qos.client_ops_per_sec", q.client_ops_per_sec));
  COSMOS_ASSIGN_OR_RETURN(q.region_bytes_per_sec,
                          f.GetDouble("qos.region_bytes_per_sec", q.region_bytes_per_sec));
  COSMOS_ASSIGN_OR_RETURN(q.region_ops_per_sec,
                          f.GetDouble("qos.region_ops_per_sec", q.region_ops_per_sec));
  COSMOS_ASSIGN_OR_RETURN(q.burst_seconds, f.GetDouble("qos.burst_seconds", q.burst_seconds));
  if (q.client_bytes_per_sec < 0 || q.client_ops_per_sec < 0 || q.region_bytes_per_sec < 0 ||
      q.region_ops_per_sec < 0 || q.burst_seconds <= 0) {
    return Status::InvalidArgument(f.origin() + ": qos limits must be >= 0 and burst_seconds > 0");
  }
  COSMOS_ASSIGN_OR_RETURN(size_t n, f.TableArraySize("pool"));
  for (size_t i = 0; i < n; ++i) {
    COSMOS_ASSIGN_OR_RETURN(ConfigFile p, f.TableArrayElement("pool", i));
    PoolSpec s;
    COSMOS_ASSIGN_OR_RETURN(s.path, p.GetPath("path", ""));
    if (s.path.empty())
      return Status::InvalidArgument(f.origin() + ": [[pool]] #" + std::to_string(i) +
                                     " needs path");
    COSMOS_ASSIGN_OR_RETURN(s.name, p.GetString("name", BaseName(s.path)));
    COSMOS_ASSIGN_OR_RETURN(s.size_bytes, PoolSizeFromConfig(p, p.origin()));
    COSMOS_ASSIGN_OR_RETURN(s.backend, p.GetString("backend", "auto"));
    COSMOS_ASSIGN_OR_RETURN(s.create, p.GetBool("create", false));
    c.pools.push_back(std::move(s));
  }
  return c;
}

Result<PoolSpec> ParsePoolFlag(const std::string& text) {
  PoolSpec s;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    parts.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  const std::string& head = parts[0];
  size_t eq = head.find('=');
  if (eq == std::string::npos) {
    s.path = head;
    s.name = BaseName(head);
  } else {
    s.name = head.substr(0, eq);
    s.path = head.substr(eq + 1);
  }
  if (s.path.empty() || s.name.empty())
    return Status::InvalidArgument("--pool '" + text + "': empty name or path");
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p == "create") {
      s.create = true;
    } else if (p.rfind("size=", 0) == 0) {
      const std::string what = "--pool '" + text + "': size";
      auto bytes = ParseSize(p.substr(5));
      if (!bytes.ok()) return bytes.status().WithContext(what);
      const bool bare = p.find_first_not_of("0123456789", 5) == std::string::npos;
      if (bare && *bytes > 0 && *bytes < kMinPoolBytes) {
        // Before the one size grammar, --pool size= was a bare MiB count. No
        // pool is below 1M, so such a number can only mean MiB: keep old
        // command lines working, and say how to write it now.
        COSMOS_LOG_WARN("cosmosd: --pool size={} as MiB is deprecated; write size={}M", *bytes,
                        *bytes);
        *bytes <<= 20;
      }
      COSMOS_ASSIGN_OR_RETURN(s.size_bytes, CheckPoolSize(*bytes, what));
    } else if (p.rfind("backend=", 0) == 0) {
      s.backend = p.substr(8);
    } else {
      return Status::InvalidArgument("--pool '" + text + "': unknown option '" + p + "'");
    }
  }
  return s;
}

Status ValidateStartConfig(const DaemonConfig& cfg) {
  in_addr addr{};
  in6_addr addr6{};
  if (inet_pton(AF_INET, cfg.server.listen_ip.c_str(), &addr) != 1 &&
      inet_pton(AF_INET6, cfg.server.listen_ip.c_str(), &addr6) != 1) {
    return Status::InvalidArgument(
        "server.listen: '" + cfg.server.listen_ip +
        "' is not an IPv4 or IPv6 address (e.g. 0.0.0.0, 10.0.0.5, :: or ::1)");
  }
  if (cfg.server.port != 0 && uint32_t{cfg.server.port} + cfg.server.workers > 65536) {
    return Status::InvalidArgument(
        "server.port: workers use ports " + std::to_string(cfg.server.port) + ".." +
        std::to_string(cfg.server.port + cfg.server.workers - 1) + ", past 65535");
  }
  if (!cfg.metrics_listen.empty()) {
    COSMOS_RETURN_IF_ERROR(
        ParseMetricsAddress(cfg.metrics_listen).status().WithContext("server.metrics_listen"));
  }
  if (cfg.pools.empty())
    return Status::InvalidArgument("no pools configured (use --pool or [[pool]])");
  std::set<std::string> names;
  for (const auto& p : cfg.pools) {
    if (!names.insert(p.name).second)
      return Status::InvalidArgument("pool name '" + p.name + "' used twice");
    COSMOS_RETURN_IF_ERROR(
        pmem::BackendFromName(p.backend).status().WithContext("pool '" + p.name + "'"));
  }
  return Status::Ok();
}

Result<std::vector<ServedPool>> OpenPools(const std::vector<PoolSpec>& specs,
                                          std::vector<std::string>* created_files) {
  if (specs.empty()) return Status::InvalidArgument("no pools configured (use --pool or [[pool]])");
  std::vector<ServedPool> out;
  std::vector<std::string> created;
  // A failure closes what was opened and removes what this call created.
  auto fail = [&](Status s) {
    out.clear();
    RemovePoolFiles(created);
    return s;
  };
  std::set<std::string> names;
  for (const auto& s : specs) {
    if (!names.insert(s.name).second)
      return fail(Status::InvalidArgument("pool name '" + s.name + "' used twice"));
    pmem::PoolOptions o;
    auto backend = pmem::BackendFromName(s.backend);
    if (!backend.ok()) return fail(backend.status().WithContext("pool '" + s.name + "'"));
    o.backend = *backend;
    struct stat st;
    bool exists = ::stat(s.path.c_str(), &st) == 0;
    Result<std::unique_ptr<pmem::Pool>> pool = Status::Internal("unset");
    if (o.backend == pmem::BackendKind::kDram) {
      pool = pmem::Pool::Create(s.path, s.size_bytes, o);
    } else if (!exists && s.create) {
      COSMOS_LOG_INFO("cosmosd: creating pool '{}' at {} ({})", s.name, s.path,
                      FormatSize(s.size_bytes));
      pool = pmem::Pool::Create(s.path, s.size_bytes, o);
      if (pool.ok()) created.push_back(s.path);
    } else {
      pool = pmem::Pool::Open(s.path, o);
    }
    if (!pool.ok()) return fail(pool.status().WithContext("pool '" + s.name + "'"));
    out.push_back(ServedPool{s.name, std::move(*pool)});
  }
  if (created_files != nullptr) *created_files = std::move(created);
  return out;
}

void RemovePoolFiles(const std::vector<std::string>& paths) {
  for (const auto& path : paths) {
    if (::unlink(path.c_str()) == 0) {
      COSMOS_LOG_INFO("cosmosd: removed pool file {} created by this failed start", path);
    }
  }
}

}  // namespace cosmos::server
