// Shared pieces of the cosmos-kv SIGKILL crash tests: concurrent MSET
// writers that record what was acknowledged, and a verifier that checks every
// acknowledged pair after a restart (and that an unacknowledged one is whole
// or absent, never half-present).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "kv_test_util.h"

namespace cosmos::kv::testing {

// Deterministic value for (writer, index): length varies so records straddle
// pages; content names its key so a torn or misplaced value is detected.
inline std::string ValueFor(int writer, int64_t index) {
  std::string v = "w" + std::to_string(writer) + "#" + std::to_string(index) + ":";
  const size_t len = 40 + static_cast<size_t>((index * 7919 + writer * 131) % 3000);
  while (v.size() < len) v += static_cast<char>('a' + (v.size() + index) % 26);
  return v;
}

inline std::string KeyFor(int writer, int64_t index, char pair) {
  return "w" + std::to_string(writer) + ":" + std::to_string(index) + pair;
}

struct WriterState {
  int64_t next = 0;         // next index to write
  int64_t acked_below = 0;  // every index < acked_below was acknowledged
  int64_t in_flight = -1;   // index sent but not acknowledged when killed
};

// Writes MSET pairs (key 'a' and 'b', same value) until the connection dies.
inline void Writer(int port, int id, WriterState* st, std::atomic<bool>* stop) {
  RespClient c(port);
  if (!c.connected()) return;
  while (!stop->load()) {
    const int64_t i = st->next;
    const std::string v = ValueFor(id, i);
    st->in_flight = i;
    auto r = c.Call({"MSET", KeyFor(id, i, 'a'), v, KeyFor(id, i, 'b'), v});
    if (!r.has_value() || r->text != "OK") return;
    st->acked_below = i + 1;
    st->in_flight = -1;
    st->next = i + 1;
  }
}

// Checks every acknowledged pair and the in-flight one; advances `next` past
// an in-flight write that did survive.
inline void Verify(int port, int id, WriterState* st, int kill_no) {
  RespClient c(port);
  ASSERT_TRUE(c.connected());
  constexpr int64_t kBatch = 200;
  for (int64_t from = 0; from < st->acked_below; from += kBatch) {
    std::vector<std::string> args = {"MGET"};
    const int64_t to = std::min(st->acked_below, from + kBatch);
    for (int64_t i = from; i < to; ++i) {
      args.push_back(KeyFor(id, i, 'a'));
      args.push_back(KeyFor(id, i, 'b'));
    }
    auto r = c.Call(args);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->elements.size(), args.size() - 1);
    for (int64_t i = from; i < to; ++i) {
      const auto& a = r->elements[static_cast<size_t>(2 * (i - from))];
      const auto& b = r->elements[static_cast<size_t>(2 * (i - from) + 1)];
      ASSERT_FALSE(a.null) << "kill " << kill_no << ": acknowledged " << KeyFor(id, i, 'a')
                           << " lost";
      ASSERT_EQ(a.text, ValueFor(id, i)) << "kill " << kill_no;
      ASSERT_FALSE(b.null);
      ASSERT_EQ(b.text, ValueFor(id, i));
    }
  }
  if (st->in_flight >= 0) {
    const int64_t i = st->in_flight;
    auto r = c.Call({"MGET", KeyFor(id, i, 'a'), KeyFor(id, i, 'b')});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->elements.size(), 2u);
    ASSERT_EQ(r->elements[0].null, r->elements[1].null)
        << "kill " << kill_no << ": MSET half-present for index " << i;
    if (!r->elements[0].null) {
      ASSERT_EQ(r->elements[0].text, ValueFor(id, i));
      ASSERT_EQ(r->elements[1].text, ValueFor(id, i));
      st->acked_below = i + 1;  // it survived: now it must stay
    } else {
      // Absent: it will be written again under the same index, same value.
    }
    st->next = st->acked_below;
    st->in_flight = -1;
  }
  st->next = st->acked_below;
}

}  // namespace cosmos::kv::testing
