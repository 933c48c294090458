// Tests of the whole-value encoding of hashes, lists, sets and sorted sets:
// round trips, and rejection of every malformed input shape.
#include "kv/value_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/endian.h"

namespace cosmos::kv {
namespace {

TEST(ValueCodec, HashRoundTripKeepsInsertionOrder) {
  HashValue h;
  EXPECT_TRUE(h.Set("b", "2"));
  EXPECT_TRUE(h.Set("a", "1"));
  EXPECT_TRUE(h.Set(std::string("\0bin", 4), std::string("\xff\0", 2)));
  EXPECT_FALSE(h.Set("b", "22"));
  EXPECT_TRUE(h.Erase("a"));
  EXPECT_FALSE(h.Erase("a"));
  auto d = DecodeHash(EncodeHash(h));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(d->entries()[0].first, "b");
  EXPECT_EQ(d->entries()[0].second, "22");
  EXPECT_EQ(*d->Find(std::string("\0bin", 4)), std::string("\xff\0", 2));
  EXPECT_EQ(d->Find("a"), nullptr);
}

TEST(ValueCodec, ListSetAndZSetRoundTrip) {
  ListValue l = {"x", "", "x", std::string(1000, 'y')};
  auto dl = DecodeList(EncodeList(l));
  ASSERT_TRUE(dl.ok());
  EXPECT_EQ(*dl, l);

  SetValue s;
  s.Add("m1");
  s.Add("m2");
  EXPECT_FALSE(s.Add("m1"));
  auto ds = DecodeSet(EncodeSet(s));
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->members(), s.members());

  ZSetValue z;
  z.Set("a", 2.5);
  z.Set("b", -std::numeric_limits<double>::infinity());
  z.Set("c", 2.5);
  z.Set("a", 1);
  auto dz = DecodeZSet(EncodeZSet(z));
  ASSERT_TRUE(dz.ok());
  EXPECT_EQ(dz->ordered(), z.ordered());
  EXPECT_EQ(dz->Rank("b"), 0u);
  EXPECT_EQ(dz->Rank("c"), 2u);
}

TEST(ValueCodec, EmptyCollectionsRoundTrip) {
  EXPECT_EQ(DecodeList(EncodeList({}))->size(), 0u);
  EXPECT_EQ(DecodeHash(EncodeHash({}))->size(), 0u);
}

TEST(ValueCodec, HeaderCarriesVersionTypeAndCount) {
  ListValue l = {"a", "b", "c"};
  const std::string e = EncodeList(l);
  EXPECT_EQ(static_cast<uint8_t>(e[TypedValueLayout::kVersion]), kTypedValueVersion);
  EXPECT_EQ(static_cast<ValueType>(e[TypedValueLayout::kType]), ValueType::kList);
  EXPECT_EQ(LoadLE<uint32_t>(e.data() + TypedValueLayout::kCount), 3u);
  EXPECT_EQ(e.size(), TypedValueLayout::kSize + 3 * (4 + 1));
}

TEST(ValueCodec, RejectsMalformedValues) {
  const std::string good = EncodeList({"a", "bc"});
  // Every truncation fails.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeList(good.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeList(good + "x").ok());  // trailing bytes
  std::string bad = good;
  bad[TypedValueLayout::kVersion] = 2;
  EXPECT_EQ(DecodeList(bad).status().code(), StatusCode::kCorruption);
  EXPECT_FALSE(DecodeSet(good).ok());  // type mismatch
  bad = good;
  bad[TypedValueLayout::kReserved] = 1;
  EXPECT_FALSE(DecodeList(bad).ok());
  bad = good;
  StoreLE<uint32_t>(bad.data() + TypedValueLayout::kCount, 0xffffffffu);  // huge count
  EXPECT_FALSE(DecodeList(bad).ok());
  bad = good;
  StoreLE<uint32_t>(bad.data() + TypedValueLayout::kSize, 0xfffffff0u);  // huge length
  EXPECT_FALSE(DecodeList(bad).ok());
}

TEST(ValueCodec, RejectsRepeatsAndNaN) {
  // A list may repeat elements; as a set the same bytes repeat a member.
  std::string twice = EncodeList({"m", "m"});
  twice[TypedValueLayout::kType] = static_cast<char>(ValueType::kSet);
  EXPECT_FALSE(DecodeSet(twice).ok());
  twice = EncodeList({"f", "v", "f", "w"});
  twice[TypedValueLayout::kType] = static_cast<char>(ValueType::kHash);
  StoreLE<uint32_t>(twice.data() + TypedValueLayout::kCount, 2);
  EXPECT_FALSE(DecodeHash(twice).ok());

  ZSetValue z;
  z.Set("a", 1);
  std::string nan = EncodeZSet(z);
  const double q = std::numeric_limits<double>::quiet_NaN();
  std::memcpy(nan.data() + TypedValueLayout::kSize, &q, sizeof(q));
  EXPECT_FALSE(DecodeZSet(nan).ok());
}

}  // namespace
}  // namespace cosmos::kv
