// Server side of secure connections: the RPC connect hook's handshake step
// (the ClientHello in the connect payload goes into the enclave, the
// ServerHello comes back as the connect reply) and the rpc::PacketProtector
// that seals and opens the session's packets inside the enclave.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "rpc/protector.h"
#include "rpc/rpc.h"
#include "sec/enclave.h"

namespace cosmos::server {

// Protects one server-side RPC session with the enclave's session keys. The
// sequence number is the header's `seq` field (authenticated as AAD).
// Closes the enclave session when destroyed (the RPC session ended), so its
// keys are wiped and its handle stops working for region operations too.
class EnclavePacketProtector final : public rpc::PacketProtector {
 public:
  // `enclave` must outlive the protector. `on_close` (optional) runs after
  // the enclave session is closed, so the server can forget its binding.
  EnclavePacketProtector(sec::Enclave* enclave, sec::SessionHandle session,
                         std::function<void()> on_close = {})
      : enclave_(enclave), session_(session), on_close_(std::move(on_close)) {}
  ~EnclavePacketProtector() override;

  size_t tag_size() const override;
  // If the enclave refuses (only on a broken sequence contract or a closed
  // session) the payload and tag are zeroed, so no plaintext leaves and the
  // peer drops the packet; the failure is logged.
  void Seal(std::span<const std::byte> header, std::span<std::byte> payload,
            std::span<std::byte> tag) override;
  // IntegrityViolation for a forged, modified, replayed or out-of-window
  // packet, or when the enclave session is gone.
  [[nodiscard]] Status Open(std::span<const std::byte> header, std::span<std::byte> payload,
                            std::span<const std::byte> tag) override;

  sec::SessionHandle session() const { return session_; }

 private:
  sec::Enclave* enclave_;
  sec::SessionHandle session_;
  std::function<void()> on_close_;
};

// Result of a secure connect: the hook's decision plus, on acceptance, what
// the server needs to act for the session (its enclave handle and the
// client's public identity).
struct SecureConnectOutcome {
  rpc::ConnectDecision decision;
  sec::SessionHandle session = 0;  // 0 when refused
  sec::Ed25519PublicKey client_identity{};
};

// Runs the server side of the handshake on a connect payload. On success the
// decision carries the ServerHello as reply and an EnclavePacketProtector;
// otherwise a refusal with IntegrityViolation (malformed or forged hello) or
// PermissionDenied (client not on the allow list).
// `on_close(session)` is handed to the protector (runs when the RPC session
// ends).
SecureConnectOutcome AcceptSecureConnect(sec::Enclave* enclave,
                                         std::span<const std::byte> connect_payload,
                                         std::function<void(sec::SessionHandle)> on_close = {});

}  // namespace cosmos::server
