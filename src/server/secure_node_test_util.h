// Test helper: an in-process secure node (simulated enclave, DRAM pool, one
// worker on a loopback port) whose host-side security engine a test may wrap
// to play a hostile host, and the client options that reach it.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cosmos/client.h"
#include "pmem/pool.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/enclave_region_engine.h"
#include "server/server.h"

namespace cosmos::server {

class InProcessSecureNode {
 public:
  // Wraps the real engine into the one the server uses (the host's code).
  using WrapEngine = std::function<std::unique_ptr<SecureRegionEngine>(SecureRegionEngine* real)>;

  // Starts the node; check ok() (gtest assertions inside report failures).
  explicit InProcessSecureNode(const WrapEngine& wrap = nullptr) { Start(wrap); }
  ~InProcessSecureNode() {
    if (server_) server_->Stop();
    server_.reset();  // closes its secure regions in the engines first
    host_.reset();
    real_.reset();
    enclave_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  bool ok() const { return server_ != nullptr; }
  // A client with key "t" (on the enclave's allow list).
  ClientOptions SecureClientOptions() const {
    ClientOptions co;
    co.server = "127.0.0.1:" + std::to_string(server_->port());
    co.timeout_ms = 20000;
    co.platform_public_key_file = keys_ + "/platform.pub";
    co.measurement_file = keys_ + "/measurement";
    co.client_key_file = keys_ + "/t.key";
    return co;
  }
  Server& server() { return *server_; }

 private:
  void Start(const WrapEngine& wrap) {
    char tmpl[] = "/tmp/cosmos_secnode_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    keys_ = dir_ + "/keys";
    ASSERT_TRUE(sec::GeneratePlatformKeys(keys_).ok());
    ASSERT_TRUE(sec::GenerateClientCredentials(keys_, "t").ok());
    pmem::PoolOptions fo;
    fo.backend = pmem::BackendKind::kDram;  // not durable: these tests need no medium
    auto pool = pmem::Pool::Create(dir_ + "/node.pool", 16 << 20, fo);
    ASSERT_TRUE(pool.ok()) << pool.status();
    sec::SimulatedEnclaveOptions eo;
    eo.platform_key_path = keys_ + "/platform.key";
    eo.sealing_secret_path = keys_ + "/sealing.secret";
    eo.state_dir = dir_ + "/state";
    eo.counter_stabilisation_ns = 0;
    auto enclave = sec::SimulatedEnclave::Create(std::move(eo));
    ASSERT_TRUE(enclave.ok()) << enclave.status();
    enclave_ = std::move(*enclave);
    auto key = sec::LoadPublicKey(keys_ + "/t.pub", sec::KeyKind::kClientPublic);
    ASSERT_TRUE(key.ok());
    std::vector<sec::Ed25519PublicKey> allowed{*key};
    ASSERT_TRUE(enclave_->SetClientAllowList(allowed).ok());
    real_ = std::make_unique<EnclaveRegionEngine>(enclave_.get(), 4096);
    if (wrap) host_ = wrap(real_.get());
    std::vector<ServedPool> pools;
    pools.push_back({"p", std::move(*pool)});
    ServerOptions so;
    so.listen_ip = "127.0.0.1";
    so.port = 0;
    so.workers = 1;
    so.secure_engine = host_ ? host_.get() : real_.get();
    auto server = Server::Start(so, std::move(pools));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string dir_, keys_;
  std::unique_ptr<sec::SimulatedEnclave> enclave_;
  std::unique_ptr<EnclaveRegionEngine> real_;
  std::unique_ptr<SecureRegionEngine> host_;
  std::unique_ptr<Server> server_;
};

}  // namespace cosmos::server
