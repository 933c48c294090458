// A deterministic metadata + data workload on a pool and the model of what
// each prefix of it must leave behind; shared by the pmem crash tests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pmem/pool.h"

namespace cosmos::pmem::crashtest {

struct Op {
  enum Kind { kCreate, kDelete, kWrite, kAtomic, kMetadata } kind;
  std::string region;
  uint64_t offset = 0;         // kCreate: size
  std::vector<uint8_t> bytes;  // kWrite, kMetadata; kAtomic: 8 bytes
};

struct ModelRegion {
  std::vector<uint8_t> data;
  std::vector<uint8_t> metadata;
};
using Model = std::map<std::string, ModelRegion>;

// The workload: creates, writes, deletes and re-creates regions so freed
// extents are reused, and updates metadata slots.
std::vector<Op> MakeWorkload(uint64_t seed);

// models[i] = expected pool contents after the first i operations.
std::vector<Model> ModelsOf(const std::vector<Op>& ops);

// Runs op on the pool; Ok only if it fully completed.
Status Execute(Pool& pool, const Op& op);

// Compares the pool with `model`. `skip_data_of` names a region whose data
// bytes are not compared (the target of an interrupted data write). Returns
// a description of the first difference, or "" when they match.
std::string Diff(Pool& pool, const Model& model, const std::string& skip_data_of);

}  // namespace cosmos::pmem::crashtest
