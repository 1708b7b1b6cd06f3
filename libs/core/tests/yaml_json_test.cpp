#include "plexus/core/yaml_json.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace plexus::core;
namespace json = boost::json;

namespace {

std::string error_of(std::string_view yaml) {
    try {
        auto v = yaml_to_json(yaml, "doc.yaml");
        return "no error, got " + json::serialize(v);
    } catch (const SettingsError& e) {
        return e.what();
    }
}

// What yaml_to_json makes of `text` as the value of a key.
json::value scalar(const std::string& text) { return yaml_to_json("v: " + text + "\n", "s.yaml").at("v"); }

void expect_round_trip(const json::value& v) {
    auto yaml = json_to_yaml(v);
    json::value back;
    try {
        back = yaml_to_json(yaml, "round.yaml");
    } catch (const SettingsError& e) {
        ADD_FAILURE() << e.what() << "\nfor " << json::serialize(v) << "\nwritten as\n" << yaml;
        return;
    }
    EXPECT_EQ(back, v) << "written as\n" << yaml << "read back as " << json::serialize(back);
    if (back.is_double() && v.is_double())
        EXPECT_EQ(std::signbit(back.get_double()), std::signbit(v.get_double()));
}

}  // namespace

TEST(YamlToJson, TypesPlainScalars) {
    EXPECT_TRUE(scalar("null").is_null());
    EXPECT_TRUE(scalar("~").is_null());
    EXPECT_TRUE(scalar("").is_null());
    EXPECT_EQ(scalar("true"), json::value(true));
    EXPECT_EQ(scalar("false"), json::value(false));
    EXPECT_EQ(scalar("8080"), json::value(std::int64_t{8080}));
    EXPECT_EQ(scalar("-12"), json::value(std::int64_t{-12}));
    EXPECT_EQ(scalar("+12"), json::value(std::int64_t{12}));
    EXPECT_EQ(scalar("9223372036854775807"), json::value(std::numeric_limits<std::int64_t>::max()));
    EXPECT_EQ(scalar("-9223372036854775808"), json::value(std::numeric_limits<std::int64_t>::min()));
    EXPECT_EQ(scalar("18446744073709551615"), json::value(std::numeric_limits<std::uint64_t>::max()));
    EXPECT_TRUE(scalar("1.5").is_double());
    EXPECT_EQ(scalar("1.5").as_double(), 1.5);
    EXPECT_EQ(scalar("-0.25").as_double(), -0.25);
    EXPECT_EQ(scalar("1e3").as_double(), 1000.0);
    EXPECT_EQ(scalar(".5").as_double(), 0.5);
    EXPECT_TRUE(scalar("1.0").is_double());
    EXPECT_TRUE(scalar("99999999999999999999999").is_double());  // past uint64
    for (const char* text : {"True", "yes", "on", "inf", "nan", "-inf", ".inf", "0x10", "1_000", "1e", "+-1",
                             "-x", "+", "5s", "250ms", "1.2.3", "abc"}) {
        auto v = scalar(text);
        EXPECT_TRUE(v.is_string()) << text << " -> " << json::serialize(v);
    }
}

TEST(YamlToJson, QuotedAndTaggedScalarsStayStrings) {
    auto doc = yaml_to_json(
        "a: \"true\"\nb: '123'\nc: \"\"\nd: 'null'\ne: !!str 1.5\nf: |\n  7\ng: \"~\"\nh: !!str\n", "q.yaml");
    EXPECT_EQ(doc,
              json::parse(R"({"a":"true","b":"123","c":"","d":"null","e":"1.5","f":"7\n","g":"~","h":""})"));
}

TEST(YamlToJson, ReadsNestedMapsAndLists) {
    auto doc = yaml_to_json(
        "name: gw\n"
        "routes:\n"
        "  - path: /x\n"
        "    weight: 3\n"
        "  - {path: /y, methods: [GET, POST]}\n"
        "clients:\n"
        "  inventory: {timeout: 250ms}\n"
        "empty_map: {}\n"
        "empty_list: []\n",
        "n.yaml");
    EXPECT_EQ(doc, json::parse(R"({"name":"gw",
        "routes":[{"path":"/x","weight":3},{"path":"/y","methods":["GET","POST"]}],
        "clients":{"inventory":{"timeout":"250ms"}},"empty_map":{},"empty_list":[]})"));
}

TEST(YamlToJson, AnEmptyDocumentIsNull) {
    EXPECT_TRUE(yaml_to_json("", "e.yaml").is_null());
    EXPECT_TRUE(yaml_to_json("# only a comment\n", "e.yaml").is_null());
    EXPECT_TRUE(yaml_to_json("---\n", "e.yaml").is_null());
    EXPECT_EQ(yaml_to_json("just text\n", "e.yaml"), json::value("just text"));
}

TEST(YamlToJson, ErrorsNameFileLineAndKeyPath) {
    EXPECT_EQ(error_of("a: 1\nb:\n  c: 2\n  c: 3\n"), "doc.yaml:4: b.c: duplicate key");
    EXPECT_EQ(error_of("a: 1\na: 1\n"), "doc.yaml:2: a: duplicate key");
    EXPECT_EQ(error_of("list:\n  - x: 1\n    y: 2\n    x: 3\n"), "doc.yaml:4: list[0].x: duplicate key");
    EXPECT_EQ(error_of("a:\n  [1, 2]: x\n"),
              "doc.yaml:2: a: a key must be a plain string, not a list, a map or empty");
    EXPECT_EQ(error_of("a:\n  - ok\n  - caf\xe9\n"), "doc.yaml:3: a[1]: is not valid UTF-8");
    EXPECT_EQ(error_of("a:\n  k\xff: 1\n"), "doc.yaml:2: a: a key is not valid UTF-8");
    EXPECT_EQ(error_of("a: !!int 5\n"),
              "doc.yaml:1: a: the tag 'tag:yaml.org,2002:int' is not supported (only !!str is)");
    EXPECT_EQ(error_of("a: 1\n---\nb: 2\n"), "doc.yaml:3: expected one YAML document, found 2");
    auto syntax = error_of("a: [1, 2\n");
    EXPECT_EQ(syntax.rfind("doc.yaml:", 0), 0u) << syntax;
}

TEST(YamlToJson, ReasonsDoNotQuoteValues) {
    for (auto text :
         {"secret: hunter2\nsecret: hunter2\n", "secret: !!binary aHVudGVyMg==\n", "secret: hunter2\xff\n"}) {
        auto err = error_of(text);
        EXPECT_EQ(err.find("hunter2"), std::string::npos) << err;
        EXPECT_EQ(err.find("aHVudGVyMg"), std::string::npos) << err;
    }
}

TEST(YamlToJson, RefusesAliasesThatContainThemselvesOrExplode) {
    EXPECT_NE(error_of("a: &x [1, *x]\n").find("nested more than 64 levels deep"), std::string::npos);
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'j'; ++c) {
        std::string prev(1, static_cast<char>(c - 1));
        bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
                ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
                "]\n";
    }
    EXPECT_NE(error_of(bomb).find("aliases expand to far more data"), std::string::npos);
    // A few aliases within reason are fine.
    EXPECT_EQ(yaml_to_json("base: &b {t: 1s}\nx: *b\ny: *b\n", "a.yaml"),
              json::parse(R"({"base":{"t":"1s"},"x":{"t":"1s"},"y":{"t":"1s"}})"));
}

TEST(JsonToYaml, WritesBlockStyle) {
    auto v = json::parse(R"({"name":"gw","port":8080,"ratio":1.0,"on":true,"off":null,
        "tags":["a","b"],"routes":[{"path":"/x","weight":3},{"path":"/y"}],
        "nested":[[1,2],[]],"labels":{},"clients":{"inventory":{"timeout":"250ms"}}})");
    EXPECT_EQ(json_to_yaml(v),
              "name: gw\n"
              "port: 8080\n"
              "ratio: 1.0\n"
              "\"on\": true\n"
              "\"off\": null\n"
              "tags:\n"
              "  - a\n"
              "  - b\n"
              "routes:\n"
              "  - path: /x\n"
              "    weight: 3\n"
              "  - path: /y\n"
              "nested:\n"
              "  - - 1\n"
              "    - 2\n"
              "  - []\n"
              "labels: {}\n"
              "clients:\n"
              "  inventory:\n"
              "    timeout: 250ms\n");
    expect_round_trip(v);
}

TEST(JsonToYaml, QuotesStringsThatWouldReadAsSomethingElse) {
    EXPECT_EQ(json_to_yaml(json::value("true")), "\"true\"\n");
    EXPECT_EQ(json_to_yaml(json::value("123")), "\"123\"\n");
    EXPECT_EQ(json_to_yaml(json::value("")), "\"\"\n");
    EXPECT_EQ(json_to_yaml(json::value("a: b")), "\"a: b\"\n");
    EXPECT_EQ(json_to_yaml(json::value("line\nbreak\t\"q\" \\")), "\"line\\nbreak\\t\\\"q\\\" \\\\\"\n");
    EXPECT_EQ(json_to_yaml(json::value("http://x:80/a")), "http://x:80/a\n");
    EXPECT_EQ(json_to_yaml(json::value("caf\xc3\xa9")), "caf\xc3\xa9\n");
    EXPECT_EQ(json_to_yaml(json::value("\xc2\x85")), "\"\\u0085\"\n");
    EXPECT_EQ(json_to_yaml(json::value(std::int64_t{-5})), "-5\n");
    EXPECT_EQ(json_to_yaml(json::value(2.0)), "2.0\n");
    EXPECT_EQ(json_to_yaml(json::value(1e300)), "1e+300\n");
    EXPECT_EQ(json_to_yaml(json::object{{"", 1}, {"null", 2}, {"k: v", 3}}),
              "\"\": 1\n\"null\": 2\n\"k: v\": 3\n");
}

TEST(JsonToYaml, RoundTripsTrickyStringsAsValuesAndKeys) {
    // Strings that would read back as another type.
    std::vector<std::string> tricky = {"",    "true", "false", "True", "NULL", "null",  "~",
                                       "yes", "No",   "on",    "OFF",  "123",  "-7",    "+7",
                                       "1.5", "1e3",  ".5",    "0x1F", ".inf", "-.inf", ".NaN"};
    // Indicators, comments and document markers.
    for (const char* s : {"a: b",   "a:",    "a :b",     "key:value",  "#comment",   "a #b",   "a#b",
                          "- item", "-",     "--- doc",  "...",        "? q",        ": c",    ",",
                          "[x]",    "{y}",   "a[0]",     "b{c}",       "&anchor",    "*alias", "!tag",
                          "|block", ">fold", "'single'", "\"double\"", "%directive", "@at",    "`tick",
                          "<<",     "=",     "a, b",     "a - b",      "x?",         "x!",     "x|y"}) {
        tricky.emplace_back(s);
    }
    // Whitespace, escapes, control characters and Unicode.
    for (const char* s : {" ", " lead", "trail ", "tab\there", "line\nbreak", "cr\r", "back\\slash",
                          "nul\x01", "del\x7f", "nel\xc2\x85", "ls\xe2\x80\xa8", "bom\xef\xbb\xbf",
                          "\xef\xbb\xbf-bom-first", "caf\xc3\xa9", "\xf0\x9f\x9a\x80"}) {
        tricky.emplace_back(s);
    }
    tricky.push_back(std::string(1500, 'k'));     // past YAML's 1024 characters for a plain key
    tricky.push_back(std::string("nul\0in", 6));  // an escaped NUL
    for (const auto& s : tricky) {
        SCOPED_TRACE(json::serialize(json::value(s)));
        expect_round_trip(json::value(s));
        expect_round_trip(json::object{{s, s}});
        expect_round_trip(json::array{s, json::object{{s, json::array{s}}}});
    }
}

TEST(JsonToYaml, RoundTripsRandomStrings) {
    // Strings drawn from the characters YAML treats specially, to find quoting rules missed above.
    const std::vector<std::string> pieces = {
        "a", "1", " ", ":", "-",  "#", "?",    ",",    "[",   "]",   "{",        "}",           "&",    "*",
        "!", "|", ">", "'", "\"", "%", "@",    "`",    "\\",  "\n",  "\t",       "\r",          "\x01", ".",
        "~", "e", "+", "0", "x",  "=", "null", "true", "---", "...", "\xc3\xa9", "\xe2\x80\xa8"};
    std::mt19937 rng(20240611);
    std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
    std::uniform_int_distribution<int> length(1, 6);
    for (int i = 0; i < 3000; ++i) {
        std::string s;
        for (int n = length(rng); n > 0; --n) s += pieces[pick(rng)];
        SCOPED_TRACE(json::serialize(json::value(s)));
        expect_round_trip(json::object{{s, s}, {"list", json::array{s}}});
        if (HasFailure()) break;
    }
}

TEST(JsonToYaml, RoundTripsNumbers) {
    for (double d : {0.0, -0.0, 1.0, -1.0, 0.1, 1.0 / 3, 1e-300, 1e300, 123456789.125, 5e-324,
                     std::numeric_limits<double>::max(), 9007199254740993.0}) {
        expect_round_trip(json::value(d));
        expect_round_trip(json::object{{"d", d}});
    }
    for (std::int64_t i : {std::int64_t{0}, std::int64_t{-1}, std::numeric_limits<std::int64_t>::min(),
                           std::numeric_limits<std::int64_t>::max()}) {
        expect_round_trip(json::value(i));
    }
    expect_round_trip(json::value(std::numeric_limits<std::uint64_t>::max()));
}

TEST(JsonToYaml, RoundTripsStructure) {
    expect_round_trip(
        json::parse(R"({"a":{},"b":[],"c":[{}],"d":[[]],"e":[{"x":[]}],"f":{"g":{"h":[1,[2,[3,{}]]]}}})"));
    expect_round_trip(json::parse(R"([{"a":1,"b":[{"c":null}]},[],{},"s",[[["deep"]]]])"));
    expect_round_trip(json::parse("[]"));
    expect_round_trip(json::parse("{}"));
    expect_round_trip(json::value(nullptr));
    expect_round_trip(json::value(false));
}

TEST(JsonToYaml, RefusesWhatYamlCannotCarryBack) {
    EXPECT_THROW(json_to_yaml(json::value("bad\xff")), std::invalid_argument);
    EXPECT_THROW(json_to_yaml(json::object{{"k\xff", 1}}), std::invalid_argument);
    EXPECT_THROW(json_to_yaml(json::value(std::numeric_limits<double>::infinity())), std::invalid_argument);
    EXPECT_THROW(json_to_yaml(json::array{std::nan("")}), std::invalid_argument);
}
