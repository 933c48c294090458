// SimulatedEnclave: the trusted code of COSMOS run in-process, with secrets in
// locked, non-dumpable memory. No hardware isolation (see the header).
#include "sec/enclave_simulated.h"

#include <sys/prctl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/endian.h"
#include "common/log.h"
#include "protocol/sealed_batch.h"
#include "sec/key_files.h"

namespace cosmos::sec {
namespace {

// Applies an ecall's CounterWait for its duration (trusted side).
class CounterWaitPolicy {
 public:
  explicit CounterWaitPolicy(CounterWait wait) {
    if (wait == CounterWait::kNoWait) scope_.emplace();
  }

 private:
  std::optional<NoCounterWaitScope> scope_;
};
constexpr uint16_t kAppSealVersion = 1;
}  // namespace

Result<std::unique_ptr<SimulatedEnclave>> SimulatedEnclave::Create(SimulatedEnclaveOptions o) {
  std::unique_ptr<SimulatedEnclave> e(new SimulatedEnclave(std::move(o)));
  const auto& opt = e->options_;
  std::error_code ec;
  std::filesystem::create_directories(opt.state_dir, ec);
  if (ec) return Status::IoError("create enclave state dir " + opt.state_dir + ": " + ec.message());
  COSMOS_ASSIGN_OR_RETURN(e->secrets_, LockedBuffer::Create(64));
  {
    COSMOS_ASSIGN_OR_RETURN(Ed25519KeyPair kp,
                            LoadSigningKey(opt.platform_key_path, KeyKind::kPlatformPrivate));
    std::memcpy(e->secrets_->data(), kp.seed.data(), 32);
    e->platform_public_ = kp.public_key;
  }
  e->measurement_ = SimulatedMeasurement(opt.identity);
  {
    COSMOS_ASSIGN_OR_RETURN(Bytes secret,
                            ReadKeyFile(opt.sealing_secret_path, KeyKind::kSealingSecret));
    auto key = DeriveSealingKey(secret, e->measurement_);
    SecureWipe(secret);
    if (!key.ok()) return key.status();
    std::memcpy(e->secrets_->data() + 32, key->data(), 32);
  }
  COSMOS_ASSIGN_OR_RETURN(e->sealer_, Sealer::Create(ByteSpan(e->secrets_->data() + 32, 32)));
  if (opt.make_process_undumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    COSMOS_LOG_WARN("simulated enclave: prctl(PR_SET_DUMPABLE, 0) failed");
  }
  COSMOS_LOG_WARN("{}", e->Description());
  return e;
}

SimulatedEnclave::~SimulatedEnclave() {
  {
    std::lock_guard<std::mutex> l(rotate_mu_);
    rotate_stop_ = true;
  }
  rotate_cv_.notify_all();
  if (rotator_.joinable()) rotator_.join();
}

void SimulatedEnclave::QueueRotation(RegionHandle region) {
  {
    std::lock_guard<std::mutex> l(rotate_mu_);
    if (rotate_stop_) return;
    if (std::find(rotate_queue_.begin(), rotate_queue_.end(), region) == rotate_queue_.end()) {
      rotate_queue_.push_back(region);
    }
    if (!rotator_.joinable()) rotator_ = std::thread([this] { RotatorLoop(); });
  }
  rotate_cv_.notify_all();
}

void SimulatedEnclave::RotatorLoop() {
  std::unique_lock<std::mutex> l(rotate_mu_);
  for (;;) {
    rotate_cv_.wait(l, [&] { return rotate_stop_ || !rotate_queue_.empty(); });
    if (rotate_stop_) return;
    const RegionHandle h = rotate_queue_.front();
    rotate_queue_.pop_front();
    rotate_busy_ = true;
    rotate_current_ = h;
    l.unlock();
    std::shared_ptr<Region> r;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = regions_.find(h);
      if (it != regions_.end()) r = it->second;
    }
    bool done = true;
    if (r) {
      Status s = r->engine->BackgroundRotationStep(options_.rotation_step_blocks, &done);
      if (!s.ok()) {
        // Left in progress: the next open or RegionRotateKey resumes it.
        COSMOS_LOG_WARN("region {}: background key rotation paused: {}", r->key, s.ToString());
        done = true;
      } else if (done) {
        COSMOS_LOG_INFO("region {}: background key rotation finished (key epoch {})", r->key,
                        r->engine->key_epoch());
      }
    }
    r.reset();
    l.lock();
    ++rotation_steps_;
    rotate_busy_ = false;
    rotate_current_ = 0;
    // Round robin: a region with more to do goes to the back of the queue.
    if (!done && std::find(rotate_queue_.begin(), rotate_queue_.end(), h) == rotate_queue_.end()) {
      rotate_queue_.push_back(h);
    }
    rotate_cv_.notify_all();
  }
}

uint64_t SimulatedEnclave::WaitForRotations() {
  std::unique_lock<std::mutex> l(rotate_mu_);
  rotate_cv_.wait(l, [&] { return rotate_stop_ || (rotate_queue_.empty() && !rotate_busy_); });
  return rotation_steps_;
}

std::string SimulatedEnclave::Description() const {
  std::string d =
      "SIMULATED enclave (no hardware isolation: the host OS, root and debuggers can read its "
      "memory); secrets in ";
  d += secrets_ && secrets_->locked() ? "mlock'ed" : "NOT locked (mlock failed)";
  d += secrets_ && secrets_->dont_dump() ? ", MADV_DONTDUMP" : ", dumpable";
  d += " memory; measurement = SHA-256 of identity string '" + options_.identity +
       "', not of the running code; trusted counter simulated by a host file";
  return d;
}

Result<Bytes> SimulatedEnclave::Seal(std::string_view purpose, ByteSpan plaintext) {
  std::lock_guard<std::mutex> l(mu_);
  return sealer_->Seal(std::string("app:") + std::string(purpose), kAppSealVersion, {}, plaintext);
}

Result<Bytes> SimulatedEnclave::Unseal(std::string_view purpose, ByteSpan blob) {
  std::lock_guard<std::mutex> l(mu_);
  return sealer_->Unseal(std::string("app:") + std::string(purpose), kAppSealVersion, {}, blob);
}

Status SimulatedEnclave::SetClientAllowList(std::span<const Ed25519PublicKey> clients) {
  std::lock_guard<std::mutex> l(mu_);
  allowed_ = std::set<Ed25519PublicKey>(clients.begin(), clients.end());
  return Status::Ok();
}

Result<AcceptedSession> SimulatedEnclave::AcceptClientHello(ByteSpan client_hello) {
  std::set<Ed25519PublicKey> allowed;
  {
    std::lock_guard<std::mutex> l(mu_);
    allowed = allowed_;
  }
  COSMOS_ASSIGN_OR_RETURN(Ed25519KeyPair platform, Ed25519FromSeed(ByteSpan(secrets_->data(), 32)));
  COSMOS_ASSIGN_OR_RETURN(ServerSession s,
                          sec::AcceptClientHello(
                              client_hello, platform, measurement_,
                              [&](const Ed25519PublicKey& k) { return allowed.count(k) > 0; },
                              options_.channel_options));
  auto session = std::make_shared<Session>();
  COSMOS_ASSIGN_OR_RETURN(session->batch_channel,
                          s.channel->NewBatchChannel(options_.channel_options));
  session->channel = std::move(s.channel);
  session->client = s.client_identity;
  AcceptedSession out;
  out.server_hello = std::move(s.server_hello);
  out.session_id = s.session_id;
  out.client_identity = s.client_identity;
  std::lock_guard<std::mutex> l(mu_);
  out.session = next_handle_++;
  sessions_[out.session] = std::move(session);
  return out;
}

Status SimulatedEnclave::SealPacket(SessionHandle session, uint64_t seq, ByteSpan header,
                                    MutableByteSpan payload, MutableByteSpan tag) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return Status::NotFound("unknown secure session");
    s = it->second;
  }
  std::lock_guard<std::mutex> l(s->mu);
  return s->channel->Seal(seq, header, payload, tag);
}

Status SimulatedEnclave::OpenPacket(SessionHandle session, uint64_t seq, ByteSpan header,
                                    MutableByteSpan payload, ByteSpan tag) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return Status::NotFound("unknown secure session");
    s = it->second;
  }
  std::lock_guard<std::mutex> l(s->mu);
  return s->channel->Open(seq, header, payload, tag);
}

Status SimulatedEnclave::CloseSession(SessionHandle session) {
  std::lock_guard<std::mutex> l(mu_);
  if (sessions_.erase(session) == 0) return Status::NotFound("unknown secure session");
  return Status::Ok();
}

std::string SimulatedEnclave::CounterPath(const RegionBinding& binding) const {
  // The pool UUID is host-supplied: keep only characters safe in a file name
  // (a forged UUID can at worst name another region's counter, whose sealed
  // records then fail to authenticate under this binding).
  std::string uuid;
  for (char c : binding.pool_uuid) {
    uuid += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  }
  return options_.state_dir + "/counter-" + uuid + "-" + std::to_string(binding.region_id);
}

Result<std::unique_ptr<SimulatedCounter>> SimulatedEnclave::OpenCounter(
    const RegionBinding& binding, bool existing) {
  const std::string label = "region '" + binding.name + "' (" + binding.Key() + ")";
  SimulatedCounter::Options co;
  co.path = CounterPath(binding);
  co.must_exist = existing && !options_.region_policy.accept_counter_reset;
  co.stabilisation_delay_ns = options_.counter_stabilisation_ns;
  co.manual = options_.counter_manual;
  co.now_ns = options_.counter_now_ns;
  co.sleep_ns = options_.counter_sleep_ns;
  auto c = SimulatedCounter::Open(std::move(co));
  if (!c.ok() && c.status().code() == StatusCode::kNotFound) {
    // Sealed state exists (the region is being reopened) but its counter does
    // not: a fresh counter at 0 would accept any old state of the region.
    COSMOS_LOG_ERROR("{}: {}", label, c.status().message());
    return Status::IntegrityViolation(
        label + ": trusted counter file is missing" +
        " while the region's sealed state exists (deleted or lost enclave state: rollback "
        "detection would be void); refusing to open. If the counter state is known lost and "
        "the pool is current, restart once with --accept-counter-reset (docs/operations.md)");
  }
  if (c.ok() && existing && options_.region_policy.accept_counter_reset && (*c)->Current() == 0) {
    COSMOS_LOG_WARN(
        "{}: opening with --accept-counter-reset; its trusted counter starts "
        "from the sealed record",
        label);
  }
  return c;
}

Result<RegionHandle> SimulatedEnclave::CreateRegion(SessionHandle creator,
                                                    const RegionBinding& binding,
                                                    const RegionGeometry& geometry,
                                                    UntrustedStore* store,
                                                    UserKeyRequest* user_key) {
  COSMOS_RETURN_IF_ERROR(binding.Validate());
  const std::string key = binding.Key();
  Ed25519PublicKey client;
  std::shared_ptr<Session> session;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = sessions_.find(creator);
    if (it == sessions_.end()) return Status::NotFound("unknown secure session");
    client = it->second->client;
    session = it->second;
    for (const auto& [h, r] : regions_) {
      if (r->key == key) return Status::AlreadyExists("region already open");
    }
  }
  SecretArray<kUserKeySize> material;
  if (user_key != nullptr) {
    COSMOS_ASSIGN_OR_RETURN(material, UnwrapSessionUserKey(*session, UserKeyUse::kCreateRegion,
                                                           binding.name, user_key->wrapped));
  }
  AccessList acl;
  COSMOS_RETURN_IF_ERROR(acl.Grant(client, kRightRead | kRightWrite | kRightAdmin));
  auto region = std::make_shared<Region>();
  region->key = key;
  COSMOS_ASSIGN_OR_RETURN(region->counter, OpenCounter(binding, /*existing=*/false));
  COSMOS_ASSIGN_OR_RETURN(region->sealer, Sealer::Create(ByteSpan(secrets_->data() + 32, 32)));
  COSMOS_ASSIGN_OR_RETURN(
      region->engine,
      ProtectedRegion::Create(binding, geometry, acl.Serialize(), store, region->counter.get(),
                              region->sealer.get(), options_.region_policy,
                              user_key != nullptr ? material.span() : ByteSpan{}));
  if (user_key != nullptr) {
    user_key->key_epoch = region->engine->key_epoch();
    user_key->receipt = SessionUserKeyReceipt(*session, UserKeyUse::kCreateRegion, binding.name,
                                              user_key->key_epoch, material.span());
  }
  std::lock_guard<std::mutex> l(mu_);
  const RegionHandle h = next_handle_++;
  regions_[h] = std::move(region);
  return h;
}

Result<RegionHandle> SimulatedEnclave::OpenRegion(const RegionBinding& binding,
                                                  UntrustedStore* store, CounterWait wait) {
  CounterWaitPolicy policy(wait);
  COSMOS_RETURN_IF_ERROR(binding.Validate());
  const std::string key = binding.Key();
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [h, r] : regions_) {
      if (r->key == key) return Status::AlreadyExists("region already open");
    }
  }
  auto region = std::make_shared<Region>();
  region->key = key;
  COSMOS_ASSIGN_OR_RETURN(region->counter, OpenCounter(binding, /*existing=*/true));
  COSMOS_ASSIGN_OR_RETURN(region->sealer, Sealer::Create(ByteSpan(secrets_->data() + 32, 32)));
  COSMOS_ASSIGN_OR_RETURN(region->engine,
                          ProtectedRegion::Open(binding, store, region->counter.get(),
                                                region->sealer.get(), options_.region_policy));
  const bool resume = options_.background_rotation && region->engine->rotation_in_progress();
  RegionHandle h = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    h = next_handle_++;
    regions_[h] = std::move(region);
  }
  // A rotation interrupted by a crash or shutdown: finish it.
  if (resume) QueueRotation(h);
  return h;
}

Status SimulatedEnclave::CloseRegion(RegionHandle region) {
  {
    // The caller frees the region's store after this returns: no background
    // rotation step may still be using it.
    std::unique_lock<std::mutex> r(rotate_mu_);
    std::erase(rotate_queue_, region);
    rotate_cv_.wait(r, [&] { return !(rotate_busy_ && rotate_current_ == region); });
  }
  std::lock_guard<std::mutex> l(mu_);
  if (regions_.erase(region) == 0) return Status::NotFound("unknown region handle");
  return Status::Ok();
}

SimulatedCounter* SimulatedEnclave::CounterForTesting(const RegionBinding& binding) {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [h, r] : regions_) {
    if (r->key == binding.Key()) return r->counter.get();
  }
  return nullptr;
}

Status SimulatedEnclave::Authorize(SessionHandle session, RegionHandle region, uint8_t right,
                                   std::shared_ptr<Session>* s, std::shared_ptr<Region>* r) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto si = sessions_.find(session);
    if (si == sessions_.end()) return Status::PermissionDenied("unknown secure session");
    auto ri = regions_.find(region);
    if (ri == regions_.end()) return Status::NotFound("unknown region handle");
    *s = si->second;
    *r = ri->second;
  }
  auto acl = AccessList::Parse((*r)->engine->access_list());
  if (!acl.ok()) return Status::IntegrityViolation("region access list is malformed");
  if (right == 0) {
    if (acl->RightsOf((*s)->client) == 0) {
      return Status::PermissionDenied("client has no right on this region");
    }
    return Status::Ok();
  }
  return acl->Check((*s)->client, right);
}

Status SimulatedEnclave::RegionCheckAccess(SessionHandle session, RegionHandle region,
                                           uint8_t rights) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  return Authorize(session, region, rights, &s, &r);
}

Result<uint64_t> SimulatedEnclave::RegionSize(RegionHandle region) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = regions_.find(region);
  if (it == regions_.end()) return Status::NotFound("unknown region handle");
  return it->second->engine->size();
}

Status SimulatedEnclave::RegionRead(SessionHandle session, RegionHandle region, uint64_t offset,
                                    MutableByteSpan out) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightRead, &s, &r));
  return r->engine->Read(offset, out);
}

Status SimulatedEnclave::RegionWrite(SessionHandle session, RegionHandle region, uint64_t offset,
                                     ByteSpan data, CounterWait wait) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightWrite, &s, &r));
  CounterWaitPolicy policy(wait);
  return r->engine->Write(offset, data);
}

Status SimulatedEnclave::RegionFlush(SessionHandle session, RegionHandle region, CounterWait wait) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightWrite, &s, &r));
  CounterWaitPolicy policy(wait);
  return r->engine->Flush();
}

Result<Digest> SimulatedEnclave::RegionVerify(SessionHandle session, RegionHandle region,
                                              std::span<const ByteRange> ranges) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightRead, &s, &r));
  SecretArray<32> key;
  {
    std::lock_guard<std::mutex> l(s->mu);
    std::memcpy(key.data(), s->channel->verify_key().data(), 32);
  }
  return r->engine->Verify(ranges, key.span());
}

Result<uint64_t> SimulatedEnclave::RegionAtomic(SessionHandle session, RegionHandle region,
                                                const AtomicUpdate& update, uint64_t attempt,
                                                CounterWait wait) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightWrite, &s, &r));
  CounterWaitPolicy policy(wait);
  if (attempt == 0 && wait == CounterWait::kNoWait) {
    return Status::InvalidArgument("an atomic that may be deferred needs an attempt id");
  }
  std::optional<uint64_t> before;
  if (attempt != 0) {
    std::lock_guard<std::mutex> l(s->atomics_mu);
    auto it = s->pending_atomics.find(attempt);
    if (it != s->pending_atomics.end()) {
      if (it->second.region != region || !(it->second.update == update)) {
        s->pending_atomics.erase(it);
        return Status::InvalidArgument("atomic attempt repeated with other arguments");
      }
      before = it->second.before;  // applied by an earlier call: only finish it
    } else if (s->pending_atomics.size() >= kMaxPendingAtomicsPerSession) {
      return Status::ResourceExhausted("too many unfinished atomics on this session");
    }
  }
  if (!before.has_value()) {
    // A counter-wait refusal here leaves the region unchanged: nothing to
    // remember, the repeat applies the update then.
    COSMOS_ASSIGN_OR_RETURN(before, r->engine->ApplyAtomic(update));
    if (attempt != 0) {
      std::lock_guard<std::mutex> l(s->atomics_mu);
      s->pending_atomics[attempt] = PendingAtomic{region, update, *before};
    }
  }
  Status flushed = r->engine->Flush();
  if (IsCounterWaitNeeded(flushed)) return flushed;  // applied; a repeat finishes it
  if (attempt != 0) {
    std::lock_guard<std::mutex> l(s->atomics_mu);
    s->pending_atomics.erase(attempt);
  }
  COSMOS_RETURN_IF_ERROR(flushed);
  return *before;
}

Result<uint64_t> SimulatedEnclave::RegionCompareAndSwap(SessionHandle session, RegionHandle region,
                                                        uint64_t offset, uint64_t expected,
                                                        uint64_t desired, uint64_t attempt,
                                                        CounterWait wait) {
  return RegionAtomic(session, region,
                      AtomicUpdate{AtomicUpdate::Kind::kCompareAndSwap, offset, expected, desired},
                      attempt, wait);
}

Result<uint64_t> SimulatedEnclave::RegionFetchAdd(SessionHandle session, RegionHandle region,
                                                  uint64_t offset, uint64_t delta, uint64_t attempt,
                                                  CounterWait wait) {
  return RegionAtomic(session, region,
                      AtomicUpdate{AtomicUpdate::Kind::kFetchAdd, offset, delta, 0}, attempt, wait);
}

Status SimulatedEnclave::UpdateAccessList(const Session& s, Region& r,
                                          const std::function<Status(AccessList*)>& change) {
  std::lock_guard<std::mutex> l(r.access_mu);
  auto acl = AccessList::Parse(r.engine->access_list());
  if (!acl.ok()) return Status::IntegrityViolation("region access list is malformed");
  // Checked again on the list the change applies to: a concurrent change may
  // have taken this client's admin right after Authorize looked.
  COSMOS_RETURN_IF_ERROR(acl->Check(s.client, kRightAdmin));
  COSMOS_RETURN_IF_ERROR(change(&*acl));
  if (!acl->HasAdmin()) {
    return Status::FailedPrecondition(
        "the change would leave the region without an admin (grant admin to another client "
        "first)");
  }
  return r.engine->SetAccessList(acl->Serialize());
}

Status SimulatedEnclave::RegionSetAccess(SessionHandle session, RegionHandle region,
                                         ByteSpan access_list) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightAdmin, &s, &r));
  auto parsed = AccessList::Parse(access_list);
  if (!parsed.ok())
    return Status::InvalidArgument("access list blob: " + parsed.status().message());
  return UpdateAccessList(*s, *r, [&](AccessList* acl) {
    *acl = std::move(*parsed);
    return Status::Ok();
  });
}

Status SimulatedEnclave::RegionGrant(SessionHandle session, RegionHandle region,
                                     const Ed25519PublicKey& identity, uint8_t rights) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightAdmin, &s, &r));
  return UpdateAccessList(*s, *r, [&](AccessList* acl) { return acl->Grant(identity, rights); });
}

Result<RegionAccessInfo> SimulatedEnclave::RegionListAccess(SessionHandle session,
                                                            RegionHandle region) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightAdmin, &s, &r));
  auto acl = AccessList::Parse(r->engine->access_list());
  if (!acl.ok()) return Status::IntegrityViolation("region access list is malformed");
  RegionAccessInfo info;
  info.key_epoch = r->engine->key_epoch();
  info.entries = acl->entries();
  return info;
}

Status SimulatedEnclave::RegionRotateKey(SessionHandle session, RegionHandle region,
                                         UserKeyRequest* user_key) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, kRightAdmin, &s, &r));
  const std::string& name = r->engine->binding().name;
  SecretArray<kUserKeySize> material;
  if (user_key != nullptr) {
    COSMOS_ASSIGN_OR_RETURN(
        material, UnwrapSessionUserKey(*s, UserKeyUse::kRotateKey, name, user_key->wrapped));
  }
  const ByteSpan user_material = user_key != nullptr ? material.span() : ByteSpan{};
  auto receipt = [&] {
    if (user_key != nullptr) {
      user_key->key_epoch = r->engine->key_epoch();
      user_key->receipt = SessionUserKeyReceipt(*s, UserKeyUse::kRotateKey, name,
                                                user_key->key_epoch, material.span());
    }
    return Status::Ok();
  };
  if (!options_.background_rotation) {
    COSMOS_RETURN_IF_ERROR(r->engine->RotateKey(user_material));
    return receipt();
  }
  if (r->engine->rotation_in_progress()) {
    QueueRotation(region);  // resumes one that paused
    return Status::FailedPrecondition("a key rotation of this region is already in progress");
  }
  // The new key is committed (and used for every write) before this
  // returns; old blocks migrate in the background.
  COSMOS_RETURN_IF_ERROR(r->engine->StartKeyRotation(user_material));
  QueueRotation(region);
  return receipt();
}

Result<SecretArray<kUserKeySize>> SimulatedEnclave::UnwrapSessionUserKey(Session& s, UserKeyUse use,
                                                                         std::string_view name,
                                                                         ByteSpan wrapped) {
  std::lock_guard<std::mutex> l(s.mu);
  return UnwrapUserKey(s.channel->key_wrap_key(), use, name, wrapped);
}

Digest SimulatedEnclave::SessionUserKeyReceipt(Session& s, UserKeyUse use, std::string_view name,
                                               uint32_t key_epoch, ByteSpan material) {
  std::lock_guard<std::mutex> l(s.mu);
  return UserKeyReceipt(s.channel->key_wrap_key(), use, name, key_epoch, material);
}

namespace {

std::span<const std::byte> StdBytes(ByteSpan b) {
  return {reinterpret_cast<const std::byte*>(b.data()), b.size()};
}

// Enclave scratch for plaintext, wiped when it goes out of scope.
class SecureBuffer {
 public:
  explicit SecureBuffer(size_t size) : bytes_(size) {}
  ~SecureBuffer() { SecureWipe(bytes_); }
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  uint8_t* data() { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  Bytes bytes_;
};

}  // namespace

Result<Bytes> SimulatedEnclave::ExecuteSealedBatch(SessionHandle session, RegionHandle region,
                                                   ByteSpan message) {
  return RunSealedBatch(session, region, message, /*epoch=*/0, nullptr);
}

Result<Bytes> SimulatedEnclave::RunSealedBatch(SessionHandle session, RegionHandle region,
                                               ByteSpan message, uint64_t epoch,
                                               protocol::RequestBuilder* effects) {
  std::shared_ptr<Session> s;
  std::shared_ptr<Region> r;
  COSMOS_RETURN_IF_ERROR(Authorize(session, region, /*any right*/ 0, &s, &r));
  COSMOS_ASSIGN_OR_RETURN(protocol::SealedRequestView view,
                          protocol::ParseSealedRequest(StdBytes(message)));
  // The plaintext exists only here, in enclave memory, and is wiped on return.
  SecureBuffer plain(view.ciphertext.size());
  if (!view.ciphertext.empty()) {
    std::memcpy(plain.data(), view.ciphertext.data(), view.ciphertext.size());
  }
  {
    std::lock_guard<std::mutex> l(s->batch_mu);
    const auto* aad = reinterpret_cast<const uint8_t*>(view.associated_data.data());
    const auto* tag = reinterpret_cast<const uint8_t*>(view.tag.data());
    Status opened = s->batch_channel->Open(
        view.header.seq, ByteSpan(aad, view.associated_data.size()),
        MutableByteSpan(plain.data(), plain.size()), ByteSpan(tag, view.tag.size()));
    if (!opened.ok()) {
      return Status::IntegrityViolation("sealed batch rejected (forged, modified or replayed): " +
                                        opened.ToString());
    }
  }
  // The host routed the message by a handle it controls: the region it chose
  // must be the one the client named (the name is authenticated both in the
  // message and in the region's sealed root record).
  const std::string& name = r->engine->binding().name;
  if (view.header.name != name) {
    return Status::IntegrityViolation("sealed batch for region '" + std::string(view.header.name) +
                                      "' was routed to region '" + name + "'");
  }
  // A batch the client sent for a replicated region at one epoch runs only
  // with replication at that epoch: a host cannot skip the backups by
  // routing it to the unreplicated path, nor replay it into another epoch.
  const bool has_epoch = (view.header.flags & protocol::kSealedFlagEpoch) != 0;
  if (has_epoch != (epoch != 0) || (has_epoch && view.header.epoch != epoch)) {
    return Status::IntegrityViolation(
        "sealed batch for region '" + name + "': the client's epoch (" +
        (has_epoch ? std::to_string(view.header.epoch) : std::string("none")) +
        ") is not the one it runs at (" + (epoch != 0 ? std::to_string(epoch) : "none") + ")");
  }
  std::vector<protocol::Op> ops;
  protocol::ResponseBuilder out;
  const std::span<const std::byte> request(reinterpret_cast<const std::byte*>(plain.data()),
                                           plain.size());
  Status parsed = protocol::ParseRequest(request, &ops);
  if (parsed.ok()) {
    for (const protocol::Op& op : ops) {
      if (!protocol::IsDataOpcode(op.opcode) || op.handle != view.header.handle) {
        parsed = Status::InvalidArgument("a sealed batch holds only data ops on its own region");
      } else if ((view.header.flags & protocol::kSealedFlagReadOnly) != 0 &&
                 op.opcode != protocol::Opcode::kRead) {
        parsed = Status::InvalidArgument("a read-only sealed batch holds only reads");
      }
      if (!parsed.ok()) break;
    }
  }
  if (!parsed.ok()) {
    // Nothing runs; the client learns why, sealed like any answer.
    out.AddError(parsed);
  } else {
    const uint64_t size = r->engine->size();
    for (size_t i = 0; i < ops.size(); ++i) {
      Status st = RunSealedOp(session, region, size, ops[i], &out, effects);
      if (st.ok()) continue;
      out.AddError(st);
      for (size_t j = i + 1; j < ops.size(); ++j) {
        out.AddError(
            Status::Cancelled("not executed: op " + std::to_string(i) + " of the batch failed"));
      }
      break;
    }
  }
  std::span<const std::byte> response = out.bytes();
  Bytes sealed(protocol::kSealedResponseHeaderSize + response.size() + protocol::kSealedTagSize);
  std::memcpy(sealed.data() + protocol::kSealedResponseHeaderSize, response.data(),
              response.size());
  SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(out.buffer().data()), out.buffer().size()));
  {
    std::lock_guard<std::mutex> l(s->batch_mu);
    protocol::SealedResponseHeader h;
    h.request_seq = view.header.seq;
    h.response_seq = ++s->batch_response_seq;
    auto* header = reinterpret_cast<std::byte*>(sealed.data());
    protocol::EncodeSealedResponseHeader(h,
                                         std::span<std::byte, protocol::kSealedResponseHeaderSize>(
                                             header, protocol::kSealedResponseHeaderSize));
    COSMOS_RETURN_IF_ERROR(s->batch_channel->Seal(
        h.response_seq, ByteSpan(sealed.data(), protocol::kSealedResponseHeaderSize),
        MutableByteSpan(sealed.data() + protocol::kSealedResponseHeaderSize, response.size()),
        MutableByteSpan(sealed.data() + sealed.size() - protocol::kSealedTagSize,
                        protocol::kSealedTagSize)));
  }
  return sealed;
}

Status SimulatedEnclave::RunSealedOp(SessionHandle session, RegionHandle region, uint64_t size,
                                     const protocol::Op& op, protocol::ResponseBuilder* out,
                                     protocol::RequestBuilder* effects) {
  using protocol::Opcode;
  const auto* payload = reinterpret_cast<const uint8_t*>(op.payload.data());
  // What the backups must apply after this op (replicated regions).
  auto effect_write = [&](uint64_t offset, std::span<const std::byte> data) {
    if (effects != nullptr) effects->Write(0, offset, data);
  };
  auto effect_flush = [&] {
    if (effects != nullptr) effects->Flush(0, {});
  };
  switch (op.opcode) {
    case Opcode::kWrite:
      COSMOS_RETURN_IF_ERROR(protocol::CheckOpRange(op.offset, op.payload.size(), size, "write"));
      COSMOS_RETURN_IF_ERROR(RegionWrite(
          session, region, op.offset, ByteSpan(payload, op.payload.size()), CounterWait::kMayWait));
      effect_write(op.offset, op.payload);
      out->AddOk();
      return Status::Ok();
    case Opcode::kRead: {
      const uint64_t len = protocol::PayloadU64(op.payload, 0);
      COSMOS_RETURN_IF_ERROR(protocol::CheckOpRange(op.offset, len, size, "read"));
      if (out->bytes().size() + len + protocol::kSealedResponseHeaderSize +
              protocol::kSealedTagSize >
          protocol::kMaxMessageLength - 1024) {
        return Status::InvalidArgument("read of " + std::to_string(len) +
                                       " bytes exceeds the node's response limit");
      }
      // Decrypt into enclave scratch first: a refused or tampered read leaves
      // no half-built result behind.
      SecureBuffer plain(static_cast<size_t>(len));
      COSMOS_RETURN_IF_ERROR(
          RegionRead(session, region, op.offset, MutableByteSpan(plain.data(), plain.size())));
      std::byte* dst = out->Add(StatusCode::kOk, len);
      if (len > 0) std::memcpy(dst, plain.data(), len);
      return Status::Ok();
    }
    case Opcode::kFlush:
    case Opcode::kVerify: {
      const auto ranges = protocol::DecodeRanges(op.payload);
      for (const auto& x : ranges) {
        COSMOS_RETURN_IF_ERROR(protocol::CheckOpRange(
            x.offset, x.length, size, op.opcode == Opcode::kFlush ? "flush" : "verify"));
      }
      // Verify persists first, as a flush does, when the client may write; a
      // reader gets the digest of the durable state.
      const bool persist =
          op.opcode == Opcode::kFlush || RegionCheckAccess(session, region, kRightWrite).ok();
      if (persist) {
        COSMOS_RETURN_IF_ERROR(RegionFlush(session, region, CounterWait::kMayWait));
        effect_flush();
      }
      if (op.opcode == Opcode::kFlush) {
        out->AddOk();
        return Status::Ok();
      }
      std::vector<ByteRange> r;
      r.reserve(ranges.size());
      for (const auto& x : ranges) r.push_back({x.offset, x.length});
      COSMOS_ASSIGN_OR_RETURN(Digest d, RegionVerify(session, region, r));
      uint64_t v = 0;
      for (int i = 7; i >= 0; --i) v = (v << 8) | d[static_cast<size_t>(i)];
      out->AddU64(v);
      return Status::Ok();
    }
    case Opcode::kWriteAfterFlush: {
      COSMOS_RETURN_IF_ERROR(protocol::CheckOpAtomic(op.offset, size, "write_after_flush"));
      // Ordered after everything before it, durable on return: the write
      // persists only once the earlier writes have (RegionWrite + flush, as
      // the unreplicated path; the backups apply the same order).
      COSMOS_RETURN_IF_ERROR(
          RegionWrite(session, region, op.offset, ByteSpan(payload, 8), CounterWait::kMayWait));
      COSMOS_RETURN_IF_ERROR(RegionFlush(session, region, CounterWait::kMayWait));
      effect_flush();
      effect_write(op.offset, op.payload.first(8));
      effect_flush();
      out->AddOk();
      return Status::Ok();
    }
    case Opcode::kCompareAndSwap:
    case Opcode::kFetchAdd: {
      COSMOS_RETURN_IF_ERROR(protocol::CheckOpAtomic(op.offset, size, OpcodeName(op.opcode)));
      // The batch runs once, on a thread that may wait: no attempt id needed.
      COSMOS_ASSIGN_OR_RETURN(
          uint64_t before,
          op.opcode == Opcode::kCompareAndSwap
              ? RegionCompareAndSwap(
                    session, region, op.offset, protocol::PayloadU64(op.payload, 0),
                    protocol::PayloadU64(op.payload, 1), /*attempt=*/0, CounterWait::kMayWait)
              : RegionFetchAdd(session, region, op.offset, protocol::PayloadU64(op.payload, 0),
                               /*attempt=*/0, CounterWait::kMayWait));
      if (effects != nullptr) {
        // The primary decided the atomic; the backups store its outcome.
        uint64_t after = before + protocol::PayloadU64(op.payload, 0);
        if (op.opcode == Opcode::kCompareAndSwap) {
          after = before == protocol::PayloadU64(op.payload, 0)
                      ? protocol::PayloadU64(op.payload, 1)
                      : before;
        }
        std::array<std::byte, 8> word;
        StoreLE<uint64_t>(word.data(), after);
        effect_write(op.offset, word);
        effect_flush();
        SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(word.data()), word.size()));
      }
      out->AddU64(before);
      return Status::Ok();
    }
    default:
      return Status::InvalidArgument("unexpected opcode in a sealed batch");
  }
}

// --- Peer channels and replicated secure regions ---------------------------

Status SimulatedEnclave::SetPeerPlatformKeys(std::span<const Ed25519PublicKey> keys) {
  if (keys.size() > kMaxPeerChannels) return Status::InvalidArgument("too many peer platform keys");
  std::lock_guard<std::mutex> l(peers_mu_);
  peer_platform_keys_.assign(keys.begin(), keys.end());
  return Status::Ok();
}

Result<PeerConnectStart> SimulatedEnclave::PeerConnect() {
  AttestationPolicy trusted;
  {
    std::lock_guard<std::mutex> l(peers_mu_);
    if (peer_platform_keys_.empty()) {
      return Status::FailedPrecondition("no peer platform keys configured (--peer-platform-keys)");
    }
    trusted.platform_public_key = peer_platform_keys_.front();
    trusted.more_platform_keys.assign(peer_platform_keys_.begin() + 1, peer_platform_keys_.end());
  }
  COSMOS_ASSIGN_OR_RETURN(Ed25519KeyPair platform, Ed25519FromSeed(ByteSpan(secrets_->data(), 32)));
  COSMOS_ASSIGN_OR_RETURN(auto initiator, PeerInitiator::Start(platform, measurement_, trusted));
  PeerConnectStart out;
  out.hello = initiator->hello();
  std::lock_guard<std::mutex> l(peers_mu_);
  if (peer_attempts_.size() >= kMaxPeerChannels) peer_attempts_.erase(peer_attempts_.begin());
  out.attempt = next_peer_attempt_++;
  peer_attempts_[out.attempt] = std::move(initiator);
  return out;
}

Result<PeerChannelId> SimulatedEnclave::PeerFinish(uint64_t attempt, ByteSpan reply) {
  std::unique_ptr<PeerInitiator> initiator;
  {
    std::lock_guard<std::mutex> l(peers_mu_);
    auto it = peer_attempts_.find(attempt);
    if (it == peer_attempts_.end()) return Status::NotFound("unknown peer connect attempt");
    initiator = std::move(it->second);
    peer_attempts_.erase(it);
  }
  uint64_t id = 0;
  auto channel = initiator->Finish(reply, &id, options_.channel_options);
  if (!channel.ok()) return channel.status().WithContext("peer enclave refused");
  if (id == 0) return Status::IntegrityViolation("peer channel id 0");
  auto peer = std::make_shared<Peer>();
  peer->channel = std::move(*channel);
  peer->initiator = true;
  AddPeer(id, std::move(peer));
  return id;
}

Result<AcceptedPeerChannel> SimulatedEnclave::PeerAccept(ByteSpan hello) {
  AttestationPolicy trusted;
  {
    std::lock_guard<std::mutex> l(peers_mu_);
    if (peer_platform_keys_.empty()) {
      return Status::IntegrityViolation("peer hello refused: this node trusts no peer platform");
    }
    trusted.platform_public_key = peer_platform_keys_.front();
    trusted.more_platform_keys.assign(peer_platform_keys_.begin() + 1, peer_platform_keys_.end());
  }
  COSMOS_ASSIGN_OR_RETURN(Ed25519KeyPair platform, Ed25519FromSeed(ByteSpan(secrets_->data(), 32)));
  auto accepted = AcceptPeerHello(hello, platform, measurement_, trusted, options_.channel_options);
  if (!accepted.ok()) return accepted.status().WithContext("peer hello refused");
  if (accepted->channel_id == 0) return Status::Unavailable("peer channel id 0: retry");
  auto peer = std::make_shared<Peer>();
  peer->channel = std::move(accepted->channel);
  AcceptedPeerChannel out;
  out.reply = std::move(accepted->reply);
  out.channel = accepted->channel_id;
  AddPeer(out.channel, std::move(peer));
  return out;
}

void SimulatedEnclave::AddPeer(PeerChannelId id, std::shared_ptr<Peer> peer) {
  std::lock_guard<std::mutex> l(peers_mu_);
  if (peers_.count(id) == 0) peer_order_.push_back(id);
  peers_[id] = std::move(peer);
  while (peers_.size() > kMaxPeerChannels && !peer_order_.empty()) {
    peers_.erase(peer_order_.front());
    peer_order_.pop_front();
  }
}

Status SimulatedEnclave::ClosePeer(PeerChannelId channel) {
  std::lock_guard<std::mutex> l(peers_mu_);
  if (peers_.erase(channel) == 0) return Status::NotFound("unknown peer channel");
  peer_order_.erase(std::remove(peer_order_.begin(), peer_order_.end(), channel),
                    peer_order_.end());
  return Status::Ok();
}

Result<std::shared_ptr<SimulatedEnclave::Peer>> SimulatedEnclave::FindPeer(PeerChannelId id,
                                                                           bool initiator) {
  std::lock_guard<std::mutex> l(peers_mu_);
  auto it = peers_.find(id);
  if (it == peers_.end() || it->second->initiator != initiator) {
    return Status::NotFound("unknown peer channel " + std::to_string(id));
  }
  return it->second;
}

Result<ReplicatedSealedBatch> SimulatedEnclave::ExecuteReplicatedSealedBatch(
    SessionHandle session, RegionHandle region, ByteSpan message, uint64_t epoch,
    std::span<const PeerChannelId> backups) {
  if (epoch == 0) return Status::InvalidArgument("a replicated batch runs at an epoch >= 1");
  std::vector<std::shared_ptr<Peer>> peers;
  for (PeerChannelId id : backups) {
    COSMOS_ASSIGN_OR_RETURN(auto p, FindPeer(id, /*initiator=*/true));
    peers.push_back(std::move(p));
  }
  protocol::RequestBuilder effects;
  ReplicatedSealedBatch out;
  COSMOS_ASSIGN_OR_RETURN(out.response, RunSealedBatch(session, region, message, epoch, &effects));
  std::string name;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = regions_.find(region);
    if (it != regions_.end()) name = it->second->engine->binding().name;
  }
  auto wipe_effects = [&] {
    SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(effects.buffer().data()),
                               effects.buffer().size()));
  };
  if (effects.empty() || name.empty()) {
    wipe_effects();
    return out;
  }
  const std::span<const std::byte> plain = effects.bytes();
  for (size_t i = 0; i < peers.size(); ++i) {
    Peer& p = *peers[i];
    std::lock_guard<std::mutex> l(p.mu);
    protocol::ReplicaBatchHeader h;
    h.channel_id = backups[i];
    h.seq = p.send_seq + 1;
    h.epoch = epoch;
    h.name = name;
    std::vector<std::byte> header = protocol::EncodeReplicaBatchHeader(h);
    Bytes m(header.size() + plain.size() + protocol::kSealedTagSize);
    std::memcpy(m.data(), header.data(), header.size());
    std::memcpy(m.data() + header.size(), plain.data(), plain.size());
    Status sealed = p.channel->Seal(
        h.seq, ByteSpan(m.data(), header.size()),
        MutableByteSpan(m.data() + header.size(), plain.size()),
        MutableByteSpan(m.data() + m.size() - protocol::kSealedTagSize, protocol::kSealedTagSize));
    if (!sealed.ok()) {
      wipe_effects();
      return sealed;
    }
    p.send_seq = h.seq;
    out.replica_messages.push_back(std::move(m));
  }
  wipe_effects();
  return out;
}

Status SimulatedEnclave::ApplyReplicaBatch(RegionHandle region, ByteSpan message) {
  COSMOS_ASSIGN_OR_RETURN(protocol::ReplicaBatchView view,
                          protocol::ParseReplicaBatch(StdBytes(message)));
  auto peer = FindPeer(view.header.channel_id, /*initiator=*/false);
  if (!peer.ok()) {
    return Status::IntegrityViolation("replica batch on an unknown peer channel (reconnect)");
  }
  std::shared_ptr<Region> r;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = regions_.find(region);
    if (it == regions_.end()) return Status::NotFound("unknown region handle");
    r = it->second;
  }
  // The name in the clear header is authenticated by the open below; check
  // it first, so that a host routing the message to another region cannot
  // use up its sequence number (it would then be refused as a replay).
  const std::string& name = r->engine->binding().name;
  if (view.header.name != name) {
    return Status::IntegrityViolation("replica batch for region '" + std::string(view.header.name) +
                                      "' was routed to region '" + name + "'");
  }
  SecureBuffer plain(view.ciphertext.size());
  if (!view.ciphertext.empty()) {
    std::memcpy(plain.data(), view.ciphertext.data(), view.ciphertext.size());
  }
  {
    Peer& p = **peer;
    std::lock_guard<std::mutex> l(p.mu);
    const auto* aad = reinterpret_cast<const uint8_t*>(view.associated_data.data());
    const auto* tag = reinterpret_cast<const uint8_t*>(view.tag.data());
    Status opened = p.channel->Open(view.header.seq, ByteSpan(aad, view.associated_data.size()),
                                    MutableByteSpan(plain.data(), plain.size()),
                                    ByteSpan(tag, view.tag.size()));
    if (!opened.ok()) {
      return Status::IntegrityViolation("replica batch rejected (forged, modified or replayed): " +
                                        opened.ToString());
    }
  }
  std::vector<protocol::Op> ops;
  const std::span<const std::byte> request(reinterpret_cast<const std::byte*>(plain.data()),
                                           plain.size());
  COSMOS_RETURN_IF_ERROR(protocol::ParseRequest(request, &ops));
  const uint64_t size = r->engine->size();
  CounterWaitPolicy policy(CounterWait::kMayWait);
  for (const protocol::Op& op : ops) {
    if (op.handle != 0) return Status::Corruption("replica batch: op on another handle");
    if (op.opcode == protocol::Opcode::kWrite) {
      COSMOS_RETURN_IF_ERROR(
          protocol::CheckOpRange(op.offset, op.payload.size(), size, "replica write"));
      COSMOS_RETURN_IF_ERROR(r->engine->Write(
          op.offset,
          ByteSpan(reinterpret_cast<const uint8_t*>(op.payload.data()), op.payload.size())));
    } else if (op.opcode == protocol::Opcode::kFlush) {
      COSMOS_RETURN_IF_ERROR(r->engine->Flush());
    } else {
      return Status::Corruption("replica batch: only writes and flushes");
    }
  }
  return Status::Ok();
}

}  // namespace cosmos::sec
