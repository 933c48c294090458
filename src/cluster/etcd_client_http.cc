// EtcdClient over etcd's v3 JSON gateway with libcurl: one easy handle per
// unary call (thread-safe without shared state), one multi handle and thread
// per watch stream (so cancellation is immediate via curl_multi_wakeup).
#include "cluster/etcd_client_http.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <mutex>
#include <thread>

#include "cluster/etcd_codec.h"
#include "cluster/watch_queue.h"
#include "common/log.h"

namespace cosmos::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Accumulates a reply body up to a limit.
struct BodySink {
  std::string body;
  size_t limit = 0;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * count;
  if (sink->body.size() + n > sink->limit) {
    sink->overflow = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  sink->body.append(data, n);
  return n;
}

struct CurlSlist {
  curl_slist* list = nullptr;
  CurlSlist() {
    list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  }
  ~CurlSlist() { curl_slist_free_all(list); }
};

// Options every request shares: POST of `body` to `url`, no proxy (etcd is
// reached directly; a proxy from the environment must not intercept it),
// plain HTTP only, bounded connect and total time, no signals (threads).
void SetCommonOptions(CURL* h, const std::string& url, const std::string& body,
                      const curl_slist* headers, milliseconds connect_timeout, char* error_buffer) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  error_buffer[0] = '\0';
}

// The outcome of one HTTP exchange with one endpoint.
struct Exchange {
  CURLcode code = CURLE_OK;
  long http_status = 0;
  bool connected = false;  // the request may have reached etcd
  bool overflow = false;
  std::string body;
  std::string error;
};

Exchange Post(const std::string& url, const std::string& body, milliseconds timeout,
              const EtcdHttpOptions& options) {
  Exchange ex;
  CURL* h = curl_easy_init();
  if (h == nullptr) {
    ex.code = CURLE_OUT_OF_MEMORY;
    ex.error = "curl_easy_init failed";
    return ex;
  }
  CurlSlist headers;
  char error_buffer[CURL_ERROR_SIZE];
  BodySink sink;
  sink.limit = options.max_reply_bytes;
  SetCommonOptions(h, url, body, headers.list, std::min(options.connect_timeout, timeout),
                   error_buffer);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, std::max<long>(1, static_cast<long>(timeout.count())));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  ex.code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ex.http_status);
  curl_off_t connect_time = 0;
  curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_time);
  ex.connected = connect_time > 0 || ex.http_status != 0;
  ex.overflow = sink.overflow;
  ex.body = std::move(sink.body);
  ex.error = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(ex.code);
  curl_easy_cleanup(h);
  return ex;
}

milliseconds Remaining(Clock::time_point deadline) {
  return std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
}

// ---------------------------------------------------------------------------
// Watch stream.

class HttpWatchStream final : public WatchStream {
 public:
  HttpWatchStream(std::string url, std::string body, const EtcdHttpOptions& options)
      : url_(std::move(url)), body_(std::move(body)), options_(options) {}

  ~HttpWatchStream() override {
    stop_.store(true);
    if (multi_ != nullptr) curl_multi_wakeup(multi_);
    if (thread_.joinable()) thread_.join();
    if (multi_ != nullptr && easy_ != nullptr) curl_multi_remove_handle(multi_, easy_);
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
  }

  // Starts the stream and waits until etcd confirms the watch. Unavailable
  // or Timeout (the stream is unusable) otherwise.
  Status Start(milliseconds timeout) {
    multi_ = curl_multi_init();
    easy_ = curl_easy_init();
    if (multi_ == nullptr || easy_ == nullptr) return Status::ResourceExhausted("curl handles");
    SetCommonOptions(easy_, url_, body_, headers_.list, std::min(options_.connect_timeout, timeout),
                     error_buffer_);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpWatchStream::OnData);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    // A stream idles for long; TCP keepalive notices a vanished host.
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPINTVL, 5L);
    curl_multi_add_handle(multi_, easy_);
    thread_ = std::thread([this] { Run(); });
    return queue_.WaitConfirmed(timeout).WithContext(url_);
  }

  Result<WatchBatch> Next(milliseconds timeout) override { return queue_.Next(timeout); }

 private:
  void Run() {
    int running = 1;
    while (!stop_.load() && running > 0) {
      if (curl_multi_perform(multi_, &running) != CURLM_OK) break;
      if (running == 0) break;
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    int left = 0;
    Status status = Status::Unavailable("etcd watch stream at " + url_ + " ended");
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK) {
        status = Status::Unavailable("etcd watch stream at " + url_ + ": " +
                                     (error_buffer_[0] != '\0'
                                          ? std::string(error_buffer_)
                                          : std::string(curl_easy_strerror(msg->data.result))));
      }
    }
    queue_.End(stop_.load() ? Status::Cancelled("etcd watch cancelled") : status);
  }

  static size_t OnData(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<HttpWatchStream*>(user);
    const size_t n = size * count;
    return self->Consume(std::string_view(data, n)) ? n : 0;
  }

  // Splits the byte stream into lines (one message each) and queues their
  // batches. Returns false to abort the transfer after a fatal message.
  bool Consume(std::string_view bytes) {
    pending_.append(bytes);
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!Deliver(std::string_view(pending_).substr(start, nl - start))) return false;
    }
    pending_.erase(0, start);
    if (pending_.size() > options_.max_reply_bytes) {
      queue_.End(Status::Corruption("etcd watch message exceeds " +
                                    std::to_string(options_.max_reply_bytes) + " bytes"));
      return false;
    }
    return true;
  }

  bool Deliver(std::string_view line) {
    if (line.find_first_not_of(" \r\t") == std::string_view::npos) return true;
    auto message = codec::ParseWatchMessage(line);
    if (!message.ok()) {
      queue_.End(message.status());
      return false;
    }
    if (message->canceled) {
      queue_.End(message->compact_revision > 0
                     ? Status::OutOfRange("etcd watch: revision compacted up to " +
                                          std::to_string(message->compact_revision))
                     : Status::Unavailable("etcd cancelled the watch: " + message->cancel_reason));
      return false;
    }
    if (message->created) queue_.Confirm();
    if (!message->batch.events.empty()) queue_.Push(std::move(message->batch));
    return true;
  }

  const std::string url_;
  const std::string body_;
  const EtcdHttpOptions options_;
  CurlSlist headers_;
  char error_buffer_[CURL_ERROR_SIZE] = {};
  CURLM* multi_ = nullptr;
  CURL* easy_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::string pending_;  // only the transfer thread touches it
  WatchQueue queue_;
};

// ---------------------------------------------------------------------------
// Unary calls.

class HttpEtcdClient final : public EtcdClient {
 public:
  explicit HttpEtcdClient(EtcdHttpOptions options) : options_(std::move(options)) {}

  Result<RangeResult> Range(const KeyRange& range, int64_t limit) override {
    COSMOS_ASSIGN_OR_RETURN(std::string body,
                            Call("/v3/kv/range", codec::EncodeRangeRequest(range, limit), true));
    return codec::ParseRangeReply(body);
  }

  Result<int64_t> Put(std::string_view key, std::string_view value, int64_t lease) override {
    COSMOS_ASSIGN_OR_RETURN(std::string body,
                            Call("/v3/kv/put", codec::EncodePutRequest(key, value, lease), false));
    return codec::ParsePutReply(body);
  }

  Result<int64_t> Delete(const KeyRange& range) override {
    COSMOS_ASSIGN_OR_RETURN(std::string body,
                            Call("/v3/kv/deleterange", codec::EncodeDeleteRequest(range), false));
    return codec::ParseDeleteReply(body);
  }

  Result<TxnResult> Txn(const TxnRequest& request) override {
    COSMOS_ASSIGN_OR_RETURN(std::string body,
                            Call("/v3/kv/txn", codec::EncodeTxnRequest(request), false));
    return codec::ParseTxnReply(body, request);
  }

  Result<LeaseGrant> GrantLease(int64_t ttl_seconds) override {
    if (ttl_seconds < 1) return Status::InvalidArgument("etcd lease TTL must be >= 1 s");
    COSMOS_ASSIGN_OR_RETURN(
        std::string body,
        Call("/v3/lease/grant", codec::EncodeLeaseGrantRequest(ttl_seconds), false));
    return codec::ParseLeaseGrantReply(body);
  }

  Result<int64_t> KeepAlive(int64_t lease_id) override {
    COSMOS_ASSIGN_OR_RETURN(
        std::string body, Call("/v3/lease/keepalive", codec::EncodeLeaseIdRequest(lease_id), true));
    return codec::ParseLeaseKeepAliveReply(body);
  }

  Status RevokeLease(int64_t lease_id) override {
    COSMOS_ASSIGN_OR_RETURN(std::string body,
                            Call("/v3/lease/revoke", codec::EncodeLeaseIdRequest(lease_id), false));
    return codec::ParseLeaseRevokeReply(body);
  }

  Result<std::unique_ptr<WatchStream>> Watch(const KeyRange& range,
                                             int64_t start_revision) override {
    const std::string request = codec::EncodeWatchCreateRequest(range, start_revision);
    const Clock::time_point deadline = Clock::now() + options_.request_timeout;
    const size_t n = options_.endpoints.size();
    const size_t first = preferred_.load();
    std::string failures;
    for (size_t i = 0; i < n; ++i) {
      const milliseconds left = Remaining(deadline);
      if (left.count() <= 0) break;
      const size_t index = (first + i) % n;
      auto stream = std::make_unique<HttpWatchStream>(options_.endpoints[index] + "/v3/watch",
                                                      request, options_);
      const Status status = stream->Start(left / static_cast<int64_t>(n - i));
      if (status.ok()) {
        preferred_.store(index);
        return std::unique_ptr<WatchStream>(std::move(stream));
      }
      if (status.code() != StatusCode::kUnavailable && status.code() != StatusCode::kTimeout) {
        return status;
      }
      failures += (failures.empty() ? "" : "; ") + status.message();
    }
    return Status::Unavailable("etcd watch: no endpoint confirmed it: " + failures);
  }

 private:
  // POSTs `body` to `path`, failing over between endpoints (see the header).
  // Returns the body of a 200 reply, or the call's error.
  Result<std::string> Call(std::string_view path, const std::string& body, bool idempotent) {
    const Clock::time_point deadline = Clock::now() + options_.request_timeout;
    const size_t n = options_.endpoints.size();
    const size_t first = preferred_.load();
    std::string failures;
    for (size_t i = 0; i < n; ++i) {
      milliseconds left = Remaining(deadline);
      if (left.count() <= 0) break;
      if (idempotent) left /= static_cast<int64_t>(n - i);
      const size_t index = (first + i) % n;
      const std::string url = options_.endpoints[index] + std::string(path);
      Exchange ex = Post(url, body, left, options_);
      if (ex.code == CURLE_OK && ex.http_status == 200) {
        preferred_.store(index);
        return std::move(ex.body);
      }
      if (ex.overflow) {
        return Status::Corruption(url + ": reply exceeds " +
                                  std::to_string(options_.max_reply_bytes) + " bytes");
      }
      Status status;
      if (ex.code == CURLE_OK) {
        status = codec::ParseErrorReply(ex.body, ex.http_status);
        // etcd itself unavailable (no leader, stopping): another member may
        // serve an idempotent call.
        if (!(idempotent && status.code() == StatusCode::kUnavailable)) return status;
      } else if (ex.connected && !idempotent) {
        return Status::Timeout(url + ": no reply (" + ex.error + "); the " + std::string(path) +
                               " request may or may not have been applied");
      }
      failures += (failures.empty() ? "" : "; ") + url + ": " + ex.error;
      COSMOS_LOG_DEBUG("etcd {}: {}", url, ex.error);
    }
    return Status::Unavailable("no etcd endpoint answered " + std::string(path) + " within " +
                               std::to_string(options_.request_timeout.count()) +
                               " ms: " + (failures.empty() ? "deadline passed" : failures));
  }

  const EtcdHttpOptions options_;
  std::atomic<size_t> preferred_{0};
};

}  // namespace

Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view list) {
  std::vector<std::string> endpoints;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view entry = list.substr(start, comma - start);
    start = comma + 1;
    const std::string shown(entry);
    if (entry.empty()) return Status::InvalidArgument("etcd endpoint list has an empty entry");
    if (entry.find("://") != std::string_view::npos) {
      if (!entry.starts_with("http://")) {
        return Status::InvalidArgument("etcd endpoint '" + shown +
                                       "': only http:// is supported (TLS is not wired yet)");
      }
      entry.remove_prefix(7);
    }
    while (entry.ends_with('/')) entry.remove_suffix(1);
    const size_t colon = entry.rfind(':');
    if (entry.find('/') != std::string_view::npos || colon == std::string_view::npos ||
        colon == 0) {
      return Status::InvalidArgument("etcd endpoint '" + shown +
                                     "' is not [http://]host:port without a path");
    }
    const std::string_view port = entry.substr(colon + 1);
    int value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value <= 0 ||
        value > 65535) {
      return Status::InvalidArgument("etcd endpoint '" + shown + "' has an invalid port");
    }
    endpoints.push_back("http://" + std::string(entry));
  }
  return endpoints;
}

Result<std::unique_ptr<EtcdClient>> OpenEtcdHttpClient(EtcdHttpOptions options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("no etcd endpoint given");
  for (const std::string& e : options.endpoints) {
    if (!e.starts_with("http://")) {
      return Status::InvalidArgument("etcd endpoint '" + e + "' is not an http:// URL");
    }
  }
  if (options.request_timeout.count() <= 0 || options.connect_timeout.count() <= 0) {
    return Status::InvalidArgument("etcd timeouts must be positive");
  }
  if (options.max_reply_bytes == 0) return Status::InvalidArgument("etcd reply limit is zero");
  InitCurlOnce();
  return std::unique_ptr<EtcdClient>(std::make_unique<HttpEtcdClient>(std::move(options)));
}

}  // namespace cosmos::cluster
