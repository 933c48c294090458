// Deterministic crash-test workload and its model.
#include "workload.h"

#include <cstring>
#include <random>

namespace cosmos::pmem::crashtest {

std::vector<Op> MakeWorkload(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto bytes = [&](size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng() | 1);  // never all-zero
    return v;
  };
  std::vector<Op> ops;
  ops.push_back({Op::kCreate, "alpha", 8192, {}});
  ops.push_back({Op::kCreate, "beta", 20000, {}});
  ops.push_back({Op::kWrite, "alpha", 100, bytes(300)});
  ops.push_back({Op::kMetadata, "beta", 0, bytes(200)});
  ops.push_back({Op::kCreate, "gamma", 4096, {}});
  ops.push_back({Op::kWrite, "beta", 4000, bytes(9000)});  // spans pages
  ops.push_back({Op::kAtomic, "gamma", 64, bytes(8)});
  ops.push_back({Op::kDelete, "alpha", 0, {}});
  ops.push_back({Op::kCreate, "delta", 6000, {}});  // reuses alpha's extent
  ops.push_back({Op::kWrite, "delta", 0, bytes(64)});
  ops.push_back({Op::kMetadata, "gamma", 0, bytes(256)});
  ops.push_back({Op::kMetadata, "beta", 0, bytes(17)});
  ops.push_back({Op::kDelete, "gamma", 0, {}});
  ops.push_back({Op::kCreate, "epsilon", 12000, {}});
  ops.push_back({Op::kAtomic, "epsilon", 11992, bytes(8)});
  ops.push_back({Op::kDelete, "beta", 0, {}});
  ops.push_back({Op::kCreate, "zeta", 30000, {}});
  ops.push_back({Op::kWrite, "zeta", 29000, bytes(1000)});
  ops.push_back({Op::kMetadata, "delta", 0, {}});
  ops.push_back({Op::kDelete, "delta", 0, {}});
  return ops;
}

std::vector<Model> ModelsOf(const std::vector<Op>& ops) {
  std::vector<Model> models(1);
  for (const Op& op : ops) {
    Model m = models.back();
    switch (op.kind) {
      case Op::kCreate:
        m[op.region] = ModelRegion{std::vector<uint8_t>(op.offset), {}};
        break;
      case Op::kDelete:
        m.erase(op.region);
        break;
      case Op::kWrite:
      case Op::kAtomic:
        std::memcpy(m[op.region].data.data() + op.offset, op.bytes.data(), op.bytes.size());
        break;
      case Op::kMetadata:
        m[op.region].metadata = op.bytes;
        break;
    }
    models.push_back(std::move(m));
  }
  return models;
}

Status Execute(Pool& pool, const Op& op) {
  switch (op.kind) {
    case Op::kCreate:
      return pool.CreateRegion(op.region, op.offset).status();
    case Op::kDelete:
      return pool.DeleteRegion(op.region);
    case Op::kWrite: {
      COSMOS_ASSIGN_OR_RETURN(Region r, pool.OpenRegion(op.region));
      return r.MemcpyPersist(op.offset, op.bytes.data(), op.bytes.size());
    }
    case Op::kAtomic: {
      COSMOS_ASSIGN_OR_RETURN(Region r, pool.OpenRegion(op.region));
      uint64_t v;
      std::memcpy(&v, op.bytes.data(), 8);
      return r.AtomicStore64(op.offset, v);
    }
    case Op::kMetadata: {
      COSMOS_ASSIGN_OR_RETURN(Region r, pool.OpenRegion(op.region));
      return r.WriteMetadata(std::as_bytes(std::span(op.bytes)));
    }
  }
  return Status::Internal("unknown op");
}

std::string Diff(Pool& pool, const Model& model, const std::string& skip_data_of) {
  const auto regions = pool.ListRegions();
  if (regions.size() != model.size()) {
    return "pool has " + std::to_string(regions.size()) + " regions, model " +
           std::to_string(model.size());
  }
  for (const auto& info : regions) {
    auto it = model.find(info.name);
    if (it == model.end()) return "unexpected region " + info.name;
    if (info.size != it->second.data.size()) return "size of " + info.name;
    auto r = pool.OpenRegion(info.name);
    if (!r.ok()) return r.status().ToString();
    auto meta = r->ReadMetadata();
    if (!meta.ok()) return meta.status().ToString();
    const std::vector<uint8_t> got(reinterpret_cast<const uint8_t*>(meta->data()),
                                   reinterpret_cast<const uint8_t*>(meta->data()) + meta->size());
    if (got != it->second.metadata) {
      return "metadata of " + info.name;
    }
    if (info.name != skip_data_of &&
        std::memcmp(r->data(), it->second.data.data(), info.size) != 0) {
      return "data of " + info.name;
    }
  }
  return "";
}

}  // namespace cosmos::pmem::crashtest
