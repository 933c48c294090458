// SecureChannel: AES-GCM packet protection with replay window and ratchet.
#include "sec/secure_channel.h"

#include <cstring>

#include "common/endian.h"

namespace cosmos::sec {

Status RatchetKey(ByteSpan key, MutableByteSpan next) {
  return HkdfExpand(key, AsBytes("cosmos rekey v1"), next);
}

Result<std::unique_ptr<SecureChannel>> SecureChannel::Create(ChannelRole role, uint64_t session_id,
                                                             const SessionKeys& keys,
                                                             const ChannelOptions& options) {
  if (options.rekey_interval == 0) return Status::InvalidArgument("rekey interval must be > 0");
  std::unique_ptr<SecureChannel> c(new SecureChannel());
  c->role_ = role;
  c->session_id_ = session_id;
  c->options_ = options;
  c->verify_ = keys.verify;
  c->key_wrap_ = keys.key_wrap;
  c->batch_c2s_ = keys.batch_client_to_server;
  c->batch_s2c_ = keys.batch_server_to_client;
  const bool client = role == ChannelRole::kClient;
  c->send_key_ = client ? keys.client_to_server : keys.server_to_client;
  c->recv_key_ = client ? keys.server_to_client : keys.client_to_server;
  COSMOS_ASSIGN_OR_RETURN(c->send_gcm_, AesGcm::Create(c->send_key_.span()));
  COSMOS_ASSIGN_OR_RETURN(c->recv_gcm_, AesGcm::Create(c->recv_key_.span()));
  COSMOS_ASSIGN_OR_RETURN(c->recv_prev_gcm_, AesGcm::Create(c->recv_key_.span()));
  COSMOS_ASSIGN_OR_RETURN(c->recv_scratch_gcm_, AesGcm::Create(c->recv_key_.span()));
  return c;
}

SecureChannel::~SecureChannel() = default;

Result<std::unique_ptr<SecureChannel>> SecureChannel::NewBatchChannel(
    const ChannelOptions& options) const {
  SessionKeys keys;
  keys.client_to_server = batch_c2s_;
  keys.server_to_client = batch_s2c_;
  return Create(role_, session_id_, keys, options);
}

void SecureChannel::Nonce(uint8_t direction, uint64_t seq, GcmNonce* nonce) const {
  // byte 0: direction (0 = client to server); bytes 1..3: low 24 bits of the
  // session id; bytes 4..11: sequence number. Keys differ per direction and
  // epoch, so uniqueness only needs distinct seqs, which Seal enforces.
  (*nonce)[0] = direction;
  (*nonce)[1] = static_cast<uint8_t>(session_id_);
  (*nonce)[2] = static_cast<uint8_t>(session_id_ >> 8);
  (*nonce)[3] = static_cast<uint8_t>(session_id_ >> 16);
  StoreLE<uint64_t>(nonce->data() + 4, seq);
}

Status SecureChannel::RatchetSend(uint64_t epoch) {
  if (epoch - send_epoch_ > kMaxEpochSkip) {
    return Status::InvalidArgument("secure channel: sequence number jumps too many key epochs");
  }
  while (send_epoch_ < epoch) {
    SecretArray<32> next;
    COSMOS_RETURN_IF_ERROR(RatchetKey(send_key_.span(), next.mutable_span()));
    send_key_ = next;  // the old key is overwritten
    ++send_epoch_;
    ++stats_.send_rekeys;
  }
  return send_gcm_->Rekey(send_key_.span());
}

Status SecureChannel::Seal(uint64_t seq, ByteSpan header, MutableByteSpan payload,
                           MutableByteSpan tag) {
  if (sent_any_ && seq <= last_sent_) {
    return Status::FailedPrecondition("secure channel: sequence number not increasing");
  }
  const uint64_t epoch = seq / options_.rekey_interval;
  if (epoch != send_epoch_) COSMOS_RETURN_IF_ERROR(RatchetSend(epoch));
  GcmNonce nonce;
  Nonce(role_ == ChannelRole::kClient ? 0 : 1, seq, &nonce);
  COSMOS_RETURN_IF_ERROR(send_gcm_->Seal(nonce, header, payload, payload, tag));
  sent_any_ = true;
  last_sent_ = seq;
  ++stats_.sealed;
  return Status::Ok();
}

Result<uint64_t> SecureChannel::SealNext(ByteSpan header, MutableByteSpan payload,
                                         MutableByteSpan tag) {
  const uint64_t seq = sent_any_ ? last_sent_ + 1 : 0;
  if (sent_any_ && seq == 0) return Status::ResourceExhausted("sequence space exhausted");
  COSMOS_RETURN_IF_ERROR(Seal(seq, header, payload, tag));
  return seq;
}

Status SecureChannel::Open(uint64_t seq, ByteSpan header, MutableByteSpan payload, ByteSpan tag) {
  // Replay check first (cheap); the window is updated only after authentication.
  if (received_any_) {
    if (seq + kReplayWindow <= max_received_) {
      ++stats_.replays_rejected;
      SecureWipe(payload);
      return Status::IntegrityViolation("secure channel: packet older than the replay window");
    }
    if (seq <= max_received_) {
      const uint64_t off = max_received_ - seq;
      if (window_[off / 64] & (1ull << (off % 64))) {
        ++stats_.replays_rejected;
        SecureWipe(payload);
        return Status::IntegrityViolation("secure channel: replayed packet");
      }
    }
  }
  const uint64_t epoch = seq / options_.rekey_interval;
  AesGcm* gcm = nullptr;
  SecretArray<32> newer_key;
  if (epoch == recv_epoch_) {
    gcm = recv_gcm_.get();
  } else if (epoch + 1 == recv_epoch_ && have_prev_) {
    gcm = recv_prev_gcm_.get();
  } else if (epoch > recv_epoch_ && epoch - recv_epoch_ <= kMaxEpochSkip) {
    newer_key = recv_key_;
    for (uint64_t e = recv_epoch_; e < epoch; ++e) {
      SecretArray<32> next;
      COSMOS_RETURN_IF_ERROR(RatchetKey(newer_key.span(), next.mutable_span()));
      newer_key = next;
    }
    COSMOS_RETURN_IF_ERROR(recv_scratch_gcm_->Rekey(newer_key.span()));
    gcm = recv_scratch_gcm_.get();
  } else {
    ++stats_.auth_failures;
    SecureWipe(payload);
    return Status::IntegrityViolation(
        "secure channel: packet from an erased or implausible key epoch");
  }
  GcmNonce nonce;
  Nonce(role_ == ChannelRole::kClient ? 1 : 0, seq, &nonce);
  if (!gcm->Open(nonce, header, payload, tag, payload).ok()) {
    ++stats_.auth_failures;
    return Status::IntegrityViolation("secure channel: packet authentication failed");
  }
  if (epoch > recv_epoch_) {
    // Commit the ratchet: current -> previous, scratch -> current.
    if (epoch == recv_epoch_ + 1) {
      std::swap(recv_prev_gcm_, recv_gcm_);
      have_prev_ = true;
    } else {
      have_prev_ = false;
    }
    std::swap(recv_gcm_, recv_scratch_gcm_);
    recv_key_ = newer_key;
    recv_epoch_ = epoch;
    ++stats_.receive_rekeys;
  }
  MarkReceived(seq);
  ++stats_.opened;
  return Status::Ok();
}

void SecureChannel::MarkReceived(uint64_t seq) {
  // Bit i of the window is sequence number max_received_ - i.
  if (received_any_ && seq <= max_received_) {
    const uint64_t off = max_received_ - seq;
    window_[off / 64] |= 1ull << (off % 64);
    return;
  }
  const uint64_t shift = received_any_ ? seq - max_received_ : kReplayWindow;
  if (shift >= kReplayWindow) {
    window_.fill(0);
  } else {
    const size_t words = shift / 64, bits = shift % 64;
    for (size_t w = window_.size(); w-- > 0;) {
      uint64_t v = 0;
      if (w >= words) {
        v = window_[w - words] << bits;
        if (bits != 0 && w >= words + 1) v |= window_[w - words - 1] >> (64 - bits);
      }
      window_[w] = v;
    }
  }
  max_received_ = seq;
  received_any_ = true;
  window_[0] |= 1;
}

}  // namespace cosmos::sec
