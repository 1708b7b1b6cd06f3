// Layering, merging, flattening and diffs of configuration documents, and their secrets.

#include "plexus/config/document.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "plexus/config/secrets.hpp"

using namespace plexus::config;
namespace json = boost::json;

namespace {
json::object obj(std::string_view text) { return json::parse(text).as_object(); }
}  // namespace

TEST(Layers, SharedThenProfilesThenTheApplicationThenItsProfiles) {
    auto l = layers("catalog", {"prod", "eu"});
    std::vector<std::string> names;
    for (const auto& k : l) names.push_back(k.name());
    EXPECT_EQ(names, (std::vector<std::string>{"application", "application-prod", "application-eu", "catalog",
                                               "catalog-prod", "catalog-eu"}));
    EXPECT_EQ(layers("application", {}).size(), 1u);
}

TEST(Merge, MapsMergeKeyByKeyOtherValuesAreReplacedAndNullRemoves) {
    auto base = obj(R"({"server":{"port":80,"host":"a"},"list":[1,2],"gone":1,"keep":true})");
    merge_into(base, obj(R"({"server":{"port":8080},"list":[3],"gone":null})"));
    EXPECT_EQ(base, obj(R"({"server":{"port":8080,"host":"a"},"list":[3],"keep":true})"));
}

TEST(Flatten, NamesLeavesAsSpringDoes) {
    auto flat = flatten(obj(R"({"a":{"b":1,"c":[true,{"d":"x"}]},"e":{},"f":[]})"));
    ASSERT_EQ(flat.size(), 5u);
    EXPECT_EQ(flat[0].key, "a.b");
    EXPECT_EQ(flat[1].key, "a.c[0]");
    EXPECT_EQ(flat[2].key, "a.c[1].d");
    EXPECT_EQ(flat[2].value, json::value("x"));
    EXPECT_EQ(flat[3].key, "e");
    EXPECT_EQ(flat[4].key, "f");
}

TEST(Paths, SetMakesMapsOnTheWayAndRefusesToGoThroughAValue) {
    json::object doc;
    std::string why;
    EXPECT_TRUE(set_path(doc, "db.pool.size", 10, why));
    EXPECT_EQ(doc, obj(R"({"db":{"pool":{"size":10}}})"));
    EXPECT_FALSE(set_path(doc, "db.pool.size.x", 1, why));
    EXPECT_NE(why.find("holds a value"), std::string::npos);
    EXPECT_FALSE(set_path(doc, "a..b", 1, why));
    EXPECT_FALSE(set_path(doc, "", 1, why));
    EXPECT_TRUE(remove_path(doc, "db.pool.size"));
    EXPECT_FALSE(remove_path(doc, "db.pool.size"));
    EXPECT_EQ(doc, obj(R"({"db":{"pool":{}}})"));
}

TEST(Diff, ListsAddedRemovedAndChangedPropertiesInKeyOrder) {
    auto d = diff(obj(R"({"a":1,"b":{"c":2},"z":0})"), obj(R"({"a":1,"b":{"c":3},"n":true})"));
    ASSERT_EQ(d.size(), 3u);
    EXPECT_EQ(d[0].key, "b.c");
    EXPECT_EQ(d[0].op, Change::changed);
    EXPECT_EQ(d[1].key, "n");
    EXPECT_EQ(d[1].op, Change::added);
    EXPECT_EQ(d[2].key, "z");
    EXPECT_EQ(d[2].op, Change::removed);
}

TEST(Names, ApplicationAndProfileNamesAreCheckedAndReservedWordsRefused) {
    EXPECT_EQ(app_name_problem("shop-catalog_2.x"), "");
    EXPECT_NE(app_name_problem(""), "");
    EXPECT_NE(app_name_problem("-x"), "");
    EXPECT_NE(app_name_problem("a/b"), "");
    EXPECT_NE(app_name_problem(".."), "");
    EXPECT_NE(app_name_problem("v1"), "");
    std::string why;
    EXPECT_EQ(parse_profiles("prod,eu,prod", why), (std::vector<std::string>{"prod", "eu"}));
    EXPECT_TRUE(parse_profiles("prod,,eu", why).empty());
    EXPECT_FALSE(why.empty());
}

TEST(Secrets, CipherValuesAreEncryptedBoundToTheirApplicationAndKeptWhenWrittenBack) {
    SecretBox box(std::string(32, 'k'));
    auto doc = obj(R"({"db":{"password":"{cipher}hunter2","user":"shop"},"tokens":["{cipher}t1","plain"]})");
    std::string why;
    ASSERT_TRUE(box.seal(doc, "catalog", why)) << why;
    auto stored = json::serialize(doc);
    EXPECT_EQ(stored.find("hunter2"), std::string::npos);
    EXPECT_EQ(stored.find("\"t1\""), std::string::npos);
    auto sealed_password = std::string(doc.at("db").at("password").as_string());
    EXPECT_TRUE(sealed_password.starts_with("{cipher}a1:"));
    // Written back as read: the ciphertext is kept, not encrypted again.
    auto again = doc;
    ASSERT_TRUE(box.seal(again, "catalog", why));
    EXPECT_EQ(again, doc);
    // Another application's document cannot take it (it would decrypt under that one's readers).
    auto stolen = doc;
    EXPECT_FALSE(box.seal(stolen, "inventory", why));
    EXPECT_NE(why.find("db"), std::string::npos) << why;
    EXPECT_EQ(why.find(sealed_password.substr(12)), std::string::npos);  // no ciphertext echoed
    auto opened = doc;
    box.open_all(opened, "catalog");
    EXPECT_EQ(opened, obj(R"({"db":{"password":"hunter2","user":"shop"},"tokens":["t1","plain"]})"));
    auto masked = doc;
    SecretBox::mask_all(masked);
    EXPECT_EQ(masked.at("db").at("password"), json::value(kMasked));
    // Same plaintext, different ciphertexts: the same value.
    auto other = obj(R"({"p":"{cipher}hunter2"})");
    ASSERT_TRUE(box.seal(other, "catalog", why));
    EXPECT_NE(other.at("p"), doc.at("db").at("password"));
    EXPECT_TRUE(box.same(other.at("p"), doc.at("db").at("password"), "catalog"));
    // No key: a secret cannot be written at all.
    SecretBox none;
    auto plain = obj(R"({"p":"{cipher}x"})");
    EXPECT_FALSE(none.seal(plain, "catalog", why));
    EXPECT_NE(why.find("key"), std::string::npos);
}

TEST(Secrets, KeysAreReadAsHexOrBase64url) {
    std::string why;
    EXPECT_TRUE(SecretBox::from_text(std::string(64, 'a') + "\n", why));
    EXPECT_TRUE(SecretBox::from_text("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", why));
    EXPECT_FALSE(SecretBox::from_text("short", why));
    EXPECT_FALSE(SecretBox::from_text(std::string(64, 'z'), why));
    EXPECT_NE(why.find("32 bytes"), std::string::npos);
}
