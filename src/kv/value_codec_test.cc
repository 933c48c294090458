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

namespace cosmos::kv {
namespace {

TEST(ValueCodecDelta, JournaledChangesReplayOntoTheBase) {
  HashValue h;
  h.Set("a", "1");
  h.Set("b", "2");
  const std::string base = EncodeHash(h);
  auto loaded = DecodeHash(base);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->journal().ops(), 0u);
  loaded->Set("c", "3");
  loaded->Erase("a");
  loaded->Set("b", "22");
  const std::string delta = EncodeDelta(ValueType::kHash, loaded->journal());
  auto replayed = DecodeHash(base);
  ASSERT_TRUE(ApplyDelta(delta, &*replayed).ok());
  EXPECT_EQ(replayed->entries(), loaded->entries());
  auto folded = FoldTypedValue(base, {delta});
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(DecodeHash(*folded)->entries(), loaded->entries());
}

TEST(ValueCodecDelta, ListPushesAndPopsAreDeltasOtherChangesAreNot) {
  ListValue l = {"m"};
  const std::string base = EncodeList(l);
  auto v = DecodeList(base);
  v->PushFront("f");
  v->PushBack("b");
  v->PopFront();
  v->PopBack();
  v->PushBack("z");
  ASSERT_TRUE(v->journal().valid());
  auto replayed = DecodeList(base);
  ASSERT_TRUE(ApplyDelta(EncodeDelta(ValueType::kList, v->journal()), &*replayed).ok());
  EXPECT_EQ(*replayed, (ListValue{"m", "z"}));
  v->mutable_items()[0] = "changed";
  EXPECT_FALSE(v->journal().valid());
}

TEST(ValueCodecDelta, SetAndZSetDeltas) {
  SetValue s;
  s.Add("x");
  const std::string sbase = EncodeSet(s);
  auto sv = DecodeSet(sbase);
  sv->Add("y");
  sv->Erase("x");
  sv->Add("y");  // no change, not journaled
  EXPECT_EQ(sv->journal().ops(), 2u);
  auto sr = DecodeSet(sbase);
  ASSERT_TRUE(ApplyDelta(EncodeDelta(ValueType::kSet, sv->journal()), &*sr).ok());
  EXPECT_EQ(sr->members(), sv->members());

  ZSetValue z;
  z.Set("a", 1);
  const std::string zbase = EncodeZSet(z);
  auto zv = DecodeZSet(zbase);
  zv->Set("a", 5);
  zv->Set("b", -1);
  zv->Erase("b");
  zv->Set("c", 2);
  auto zr = DecodeZSet(zbase);
  ASSERT_TRUE(ApplyDelta(EncodeDelta(ValueType::kZSet, zv->journal()), &*zr).ok());
  EXPECT_EQ(zr->ordered(), zv->ordered());
}

TEST(ValueCodecDelta, RejectsDeltasThatDoNotApply) {
  ListValue empty;
  ListValue one = {"a"};
  auto v = DecodeList(EncodeList(one));
  v->PopFront();
  const std::string pop = EncodeDelta(ValueType::kList, v->journal());
  EXPECT_EQ(ApplyDelta(pop, &empty).code(), StatusCode::kCorruption);  // pop from empty
  HashValue h;
  EXPECT_FALSE(ApplyDelta(pop, &h).ok());  // a list delta on a hash
  // Every truncation of a valid delta fails.
  for (size_t n = 0; n < pop.size(); ++n) {
    ListValue l = {"a"};
    EXPECT_FALSE(ApplyDelta(pop.substr(0, n), &l).ok()) << n;
  }
  std::string bad_op = pop;
  bad_op[TypedValueLayout::kSize] = 9;  // unknown opcode
  ListValue l = {"a"};
  EXPECT_FALSE(ApplyDelta(bad_op, &l).ok());
  // A whole value is not a delta (version byte).
  SetValue s;
  EXPECT_FALSE(ApplyDelta(EncodeSet(s), &s).ok());
}

}  // namespace
}  // namespace cosmos::kv
