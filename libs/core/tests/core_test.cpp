#include <gtest/gtest.h>

#include <set>

#include "plexus/core/clock.hpp"
#include "plexus/core/duration.hpp"
#include "plexus/core/ids.hpp"
#include "plexus/core/result.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/core/sharded_map.hpp"

using namespace plexus::core;
using namespace std::chrono_literals;

TEST(Ids, TraceIdRoundTripsThroughHex) {
    auto id = TraceId::random();
    auto hex = id.hex();
    ASSERT_EQ(hex.size(), 32u);
    auto back = TraceId::from_hex(hex);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, id);
}

TEST(Ids, RejectsMalformedHex) {
    EXPECT_FALSE(TraceId::from_hex("00000000000000000000000000000000"));
    EXPECT_FALSE(TraceId::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736"));  // upper case
    EXPECT_FALSE(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e473"));
    EXPECT_FALSE(SpanId::from_hex("0000000000000000"));
    EXPECT_FALSE(SpanId::from_hex("00f067aa0ba902bx"));
    auto span = SpanId::from_hex("00f067aa0ba902b7");
    ASSERT_TRUE(span);
    EXPECT_EQ(span->value, 0x00f067aa0ba902b7u);
}

TEST(Ids, RequestIdsAreDistinct) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) seen.insert(new_request_id());
    EXPECT_EQ(seen.size(), 1000u);
    EXPECT_EQ(new_instance_id("catalog").rfind("catalog-", 0), 0u);
}

TEST(Ids, WriteHex16MatchesAppendHex) {
    for (std::uint64_t v : {0ull, 1ull, 0xabcdef0123456789ull, ~0ull, 0x00ff00ff00ff00ffull}) {
        char out[16];
        plexus::core::write_hex16(out, v);
        std::string expected;
        plexus::core::append_hex(expected, v, 16);
        EXPECT_EQ(std::string_view(out, 16), expected);
    }
}

TEST(Duration, ParsesUnits) {
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("5s"), 5000ms);
    EXPECT_EQ(parse_duration("2m"), 120000ms);
    EXPECT_EQ(parse_duration("1h"), 3600000ms);
    EXPECT_EQ(parse_duration("0"), 0ms);
    EXPECT_FALSE(parse_duration("5"));
    EXPECT_FALSE(parse_duration("s"));
    EXPECT_FALSE(parse_duration("-5s"));
    EXPECT_FALSE(parse_duration("5 s"));
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(120000ms), "2m");
}

TEST(ManualClock, MovesOnlyWhenAdvanced) {
    ManualClock clock;
    auto t0 = clock.now();
    EXPECT_EQ(clock.now(), t0);
    clock.advance(3s);
    EXPECT_EQ(clock.now() - t0, 3s);
}

TEST(Result, CarriesErrorCode) {
    plexus::Result<int> r = make_error_code(errc::not_found);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "not found");
    plexus::Result<int> ok = 7;
    EXPECT_EQ(*ok, 7);
}

struct Sample {
    std::string name;
    int port = 80;
    bool enabled = false;
    std::chrono::milliseconds timeout{1000};
    std::vector<std::string> tags;
    std::vector<std::pair<std::string, int>> routes;
};

static Sample read_sample(std::string_view text) {
    Sample s;
    auto r = SettingsReader::from_text(text, "sample.yaml");
    r.field("name", s.name, Need::required);
    r.field("port", s.port, 1, 65535);
    r.field("enabled", s.enabled);
    r.field("timeout", s.timeout);
    r.field("tags", s.tags);
    r.each("routes", [&](SettingsReader& route) {
        std::string path;
        int weight = 1;
        route.field("path", path, Need::required);
        route.field("weight", weight);
        s.routes.emplace_back(path, weight);
    });
    r.done();
    return s;
}

static std::string error_of(std::string_view text) {
    try {
        read_sample(text);
    } catch (const SettingsError& e) {
        return e.what();
    }
    return "";
}

TEST(Settings, ReadsTypedFields) {
    auto s = read_sample(
        "name: gw\nport: 8080\nenabled: true\ntimeout: 250ms\ntags: [a, b]\n"
        "routes:\n  - path: /x\n    weight: 3\n");
    EXPECT_EQ(s.name, "gw");
    EXPECT_EQ(s.port, 8080);
    EXPECT_TRUE(s.enabled);
    EXPECT_EQ(s.timeout, 250ms);
    EXPECT_EQ(s.tags, (std::vector<std::string>{"a", "b"}));
    ASSERT_EQ(s.routes.size(), 1u);
    EXPECT_EQ(s.routes[0].second, 3);
}

TEST(Settings, UnknownKeyNamesFileLineAndKey) {
    EXPECT_EQ(error_of("name: gw\nprot: 8080\n"), "sample.yaml:2: prot: unknown key");
    EXPECT_EQ(error_of("name: gw\nroutes:\n  - path: /x\n    wieght: 3\n"),
              "sample.yaml:4: routes[0].wieght: unknown key");
}

TEST(Settings, WrongTypeAndRangeAreErrors) {
    EXPECT_EQ(error_of("name: gw\nport: eighty\n"), "sample.yaml:2: port: expected an integer, got 'eighty'");
    EXPECT_EQ(error_of("name: gw\nport: 70000\n"),
              "sample.yaml:2: port: must be between 1 and 65535, got 70000");
    EXPECT_EQ(error_of("name: gw\nenabled: maybe\n"),
              "sample.yaml:2: enabled: expected true or false, got 'maybe'");
    EXPECT_EQ(error_of("name: gw\ntimeout: 5\n"),
              "sample.yaml:2: timeout: expected a duration such as 250ms, 5s, 2m or 1h, got '5'");
}

TEST(Settings, StringsAndKeysMustBeUtf8) {
    // yaml-cpp passes any byte through; a route's rewrite of bytes 0x81 reached the gateway's
    // /-/routes JSON as text no JSON parser reads.
    EXPECT_EQ(error_of("name: gw\x81\n"), "sample.yaml:1: name: is not valid UTF-8");
    EXPECT_EQ(error_of("name: gw\ntags: [a, \xed\xa0\x80]\n"), "sample.yaml:2: tags: is not valid UTF-8");
    EXPECT_EQ(error_of("name: gw\nn\xffme: 1\n"), "sample.yaml:2: a key is not valid UTF-8");
    EXPECT_EQ(read_sample("name: caf\xc3\xa9 \xf0\x9f\x9a\x80\n").name, "caf\xc3\xa9 \xf0\x9f\x9a\x80");
}

TEST(Settings, KeysMustBeStrings) {
    // A list as a key used to escape as YAML::TypedBadConversion, not a SettingsError.
    EXPECT_EQ(error_of("name: gw\n[a, b]: 1\n"),
              "sample.yaml:2: a key must be a plain string, not a list, a map or empty");
    EXPECT_EQ(error_of("name: gw\nroutes:\n  - {path: /x, {a: b}: 3}\n"),
              "sample.yaml:3: routes[0]: a key must be a plain string, not a list, a map or empty");
    EXPECT_NE(error_of("name: gw\n? \n: 1\n").find(": a key must be a plain string"), std::string::npos);
}

TEST(Settings, MissingRequiredKeyIsAnError) {
    EXPECT_EQ(error_of("port: 80\n"), "sample.yaml:1: name: is required");
    EXPECT_EQ(error_of("name: gw\nroutes:\n  - weight: 3\n"), "sample.yaml:3: routes[0].path: is required");
}

TEST(Settings, SyntaxErrorNamesLine) {
    auto err = error_of("name: gw\nport: [1, 2\n");
    EXPECT_EQ(err.rfind("sample.yaml:", 0), 0u) << err;
}

TEST(Settings, AFailureWithoutAKeyNamesTheMapItself) {
    auto r = SettingsReader::from_text("clients:\n  payments:\n    timeout: 1s\n", "c.yaml");
    try {
        r.each_entry("clients", [](const std::string&, SettingsReader& c) { c.fail("", "no such client"); });
        FAIL() << "no error";
    } catch (const SettingsError& e) {
        EXPECT_STREQ(e.what(), "c.yaml:3: clients.payments: no such client");
    }
}

namespace {
struct Rank {
    int operator()(int v) const noexcept { return v; }
};
}  // namespace

TEST(ShardedMap, FindsWhatUpsertAddedAndChangesItInPlace) {
    ShardedMap<int, Rank> m(1600);
    EXPECT_FALSE(m.find("a", [](const int* v) { return v != nullptr; }));
    EXPECT_EQ(m.upsert("a", [] { return 5; }, [](int& v) { return v += 1; }), 6);
    EXPECT_EQ(m.upsert("a", [] { return 100; }, [](int& v) { return v += 1; }), 7);  // not made again
    EXPECT_EQ(m.find("a", [](const int* v) { return v ? *v : -1; }), 7);
    EXPECT_EQ(m.size(), 1u);
}

TEST(ShardedMap, AFullShardForgetsItsLowestRankedEntryForANewKey) {
    ShardedMap<int, Rank> m(32);  // two entries per shard
    auto present = [&](const std::string& k) { return m.find(k, [](const int* v) { return v != nullptr; }); };
    m.upsert("high", [] { return 1'000'000; }, [](int&) {});  // added first, ranked highest
    m.upsert("low", [] { return -1; }, [](int&) {});          // ranked lowest
    for (int i = 0; i < 1000; ++i) m.upsert("k" + std::to_string(i), [i] { return i; }, [](int&) {});
    EXPECT_LE(m.size(), 32u);
    EXPECT_TRUE(present("high"));  // not the oldest first
    EXPECT_FALSE(present("low"));
    EXPECT_TRUE(present("k999"));  // the newest key was added
}
