#include "plexus/core/json_schema.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using namespace plexus::core;
namespace json = boost::json;

namespace {

// The errors of `doc` against `schema`, both written as JSON, as "key: reason" lines.
std::vector<std::string> errors(std::string_view schema, std::string_view doc, std::size_t limit = 20) {
    std::vector<std::string> out;
    for (const auto& e : validate(json::parse(schema), json::parse(doc), limit)) out.push_back(to_string(e));
    return out;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST(CheckSchema, AcceptsEveryDocumentedKeyword) {
    auto schema = json::parse(R"({
        "description": "a service",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 63},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "ratio": {"type": ["number", "null"], "minimum": 0.0, "maximum": 1},
            "timeout": {"type": "string", "format": "duration"},
            "level": {"enum": ["debug", "info", 3, null]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 0, "maxItems": 10},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "open": {"type": "object", "additionalProperties": true}
        },
        "required": ["name"],
        "additionalProperties": false
    })");
    EXPECT_EQ(check_schema(schema), "");
    EXPECT_EQ(check_schema(json::parse("{}")), "");
}

TEST(CheckSchema, NamesWhereASchemaIsWrong) {
    auto why = [](std::string_view schema) { return check_schema(json::parse(schema)); };
    EXPECT_EQ(why("true"), "a schema must be an object");
    EXPECT_EQ(why(R"({"type": "int"})"),
              "type: expected object, array, string, integer, number, boolean or null");
    EXPECT_EQ(why(R"({"type": []})"), "type: expected a type name or a non-empty list of them");
    EXPECT_EQ(why(R"({"type": ["string", "string"]})"), "type: lists a type twice");
    EXPECT_EQ(why(R"({"properties": []})"), "properties: expected an object of schemas");
    EXPECT_EQ(why(R"({"properties": {"a": {"properties": {"b": {"minimum": "1"}}}}})"),
              "properties.a.properties.b.minimum: expected a number");
    EXPECT_EQ(why(R"({"properties": {"a": 5}})"), "properties.a: a schema must be an object");
    EXPECT_EQ(why(R"({"required": "a"})"), "required: expected a list of names");
    EXPECT_EQ(why(R"({"required": ["a", 1]})"), "required: expected a list of names");
    EXPECT_EQ(why(R"({"required": ["a", "a"]})"), "required: lists a name twice");
    EXPECT_EQ(why(R"({"additionalProperties": "no"})"), "additionalProperties: a schema must be an object");
    EXPECT_EQ(why(R"({"additionalProperties": {"type": "x"}})"),
              "additionalProperties.type: expected object, array, string, integer, number, boolean or null");
    EXPECT_EQ(why(R"({"items": [{}]})"),
              "items: expected one schema for every item (prefixItems is not supported)");
    EXPECT_EQ(why(R"({"items": {"maxItems": -1}})"), "items.maxItems: expected an integer of 0 or more");
    EXPECT_EQ(why(R"({"enum": []})"), "enum: expected a non-empty list of values");
    EXPECT_EQ(why(R"({"maximum": null})"), "maximum: expected a number");
    EXPECT_EQ(why(R"({"minLength": 1.0})"), "minLength: expected an integer of 0 or more");
    EXPECT_EQ(why(R"({"minItems": "2"})"), "minItems: expected an integer of 0 or more");
    EXPECT_EQ(why(R"({"maxLength": -3})"), "maxLength: expected an integer of 0 or more");
    EXPECT_EQ(why(R"({"description": 5})"), "description: expected a string");
    EXPECT_EQ(why(R"({"format": "email"})"), "format: only \"duration\" is supported");
    EXPECT_EQ(why(R"({"pattern": "^a"})"), "pattern: is not a supported keyword");
    EXPECT_EQ(why(R"({"properties": {"x": {"$ref": "#"}}})"),
              "properties.x.$ref: is not a supported keyword");
    EXPECT_THROW(validate(json::parse(R"({"oneOf": []})"), json::value(1)), std::invalid_argument);
}

TEST(CheckSchema, RefusesSchemasNestedTooDeeply) {
    json::value schema = json::object{};
    for (int i = 0; i < 100; ++i) schema = json::object{{"items", schema}};
    EXPECT_NE(check_schema(schema).find("nested more than 64 levels deep"), std::string::npos);
}

TEST(Validate, Type) {
    EXPECT_EQ(errors(R"({"type": "string"})", R"("x")"), Lines{});
    EXPECT_EQ(errors(R"({"type": "string"})", "5"), Lines{"expected a string"});
    EXPECT_EQ(errors(R"({"type": "object"})", "[]"), Lines{"expected a map"});
    EXPECT_EQ(errors(R"({"type": "array"})", "{}"), Lines{"expected a list"});
    EXPECT_EQ(errors(R"({"type": "boolean"})", R"("true")"), Lines{"expected true or false"});
    EXPECT_EQ(errors(R"({"type": "null"})", "0"), Lines{"expected null"});
    EXPECT_EQ(errors(R"({"type": "null"})", "null"), Lines{});
    EXPECT_EQ(errors(R"({"type": ["string", "integer", "null"]})", "1.5"),
              Lines{"expected a string, an integer or null"});
    EXPECT_EQ(errors(R"({"type": ["string", "integer"]})", "7"), Lines{});
}

TEST(Validate, IntegersAreStrictAndAreNumbers) {
    EXPECT_EQ(errors(R"({"type": "integer"})", "5"), Lines{});
    EXPECT_EQ(errors(R"({"type": "integer"})", "-5"), Lines{});
    EXPECT_EQ(errors(R"({"type": "integer"})", "18446744073709551615"), Lines{});
    EXPECT_EQ(errors(R"({"type": "integer"})", "5.0"), Lines{"expected an integer"});
    EXPECT_EQ(errors(R"({"type": "integer"})", "\"5\""), Lines{"expected an integer"});
    EXPECT_EQ(errors(R"({"type": "number"})", "5"), Lines{});
    EXPECT_EQ(errors(R"({"type": "number"})", "5.5"), Lines{});
    EXPECT_EQ(errors(R"({"type": "number"})", "true"), Lines{"expected a number"});
}

TEST(Validate, MinimumAndMaximumCompareAcrossNumberKinds) {
    const auto schema = R"({"minimum": 1, "maximum": 500})";
    EXPECT_EQ(errors(schema, "1"), Lines{});
    EXPECT_EQ(errors(schema, "500"), Lines{});
    EXPECT_EQ(errors(schema, "500.0"), Lines{});
    EXPECT_EQ(errors(schema, "0"), Lines{"must be at least 1"});
    EXPECT_EQ(errors(schema, "0.999"), Lines{"must be at least 1"});
    EXPECT_EQ(errors(schema, "501"), Lines{"must be at most 500"});
    EXPECT_EQ(errors(schema, "500.5"), Lines{"must be at most 500"});
    EXPECT_EQ(errors(schema, "18446744073709551615"), Lines{"must be at most 500"});
    EXPECT_EQ(errors(schema, R"("600")"), Lines{});  // only numbers have a size
    EXPECT_EQ(errors(R"({"maximum": 0.5})", "1"), Lines{"must be at most 0.5"});
    EXPECT_EQ(errors(R"({"minimum": -1.5})", "-2"), Lines{"must be at least -1.5"});
    // Exact at the edges of int64, where a double cannot tell neighbours apart.
    EXPECT_EQ(errors(R"({"maximum": 9223372036854775806})", "9223372036854775807"),
              Lines{"must be at most 9223372036854775806"});
    EXPECT_EQ(errors(R"({"maximum": 9223372036854775807})", "9223372036854775807"), Lines{});
    EXPECT_EQ(errors(R"({"minimum": 18446744073709551615})", "18446744073709551614"),
              Lines{"must be at least 18446744073709551615"});
}

TEST(Validate, StringLengthInCharacters) {
    const auto schema = R"({"type": "string", "minLength": 2, "maxLength": 3})";
    EXPECT_EQ(errors(schema, R"("ab")"), Lines{});
    EXPECT_EQ(errors(schema, "\"\xc3\xa9t\xc3\xa9\""), Lines{});  // five bytes, three characters
    EXPECT_EQ(errors(schema, R"("a")"), Lines{"must be at least 2 characters long"});
    EXPECT_EQ(errors(schema, R"("abcd")"), Lines{"must be at most 3 characters long"});
    EXPECT_EQ(errors(schema, R"("")"), Lines{"must be at least 2 characters long"});
    EXPECT_EQ(errors(R"({"maxLength": 1})", R"("ab")"), Lines{"must be at most 1 character long"});
}

TEST(Validate, DurationFormat) {
    const auto schema = R"({"type": "string", "format": "duration"})";
    for (auto ok : {R"("250ms")", R"("5s")", R"("2m")", R"("1h")", R"("0")"})
        EXPECT_EQ(errors(schema, ok), Lines{});
    for (auto bad : {R"("5")", R"("PT5S")", R"("5 s")", R"("-1s")", R"("")"}) {
        EXPECT_EQ(errors(schema, bad), Lines{"expected a duration such as 250ms, 5s, 2m or 1h"}) << bad;
    }
    EXPECT_EQ(errors(schema, "5"), Lines{"expected a duration such as 250ms, 5s, 2m or 1h"});
    EXPECT_EQ(errors(R"({"type": ["string", "null"], "format": "duration"})", "5"),
              Lines{"expected a string or null"});
    EXPECT_EQ(errors(R"({"format": "duration"})", "5"), Lines{});  // format applies to strings only
}

TEST(Validate, Enum) {
    const auto schema = R"({"enum": ["round_robin", "least_request"]})";
    EXPECT_EQ(errors(schema, R"("least_request")"), Lines{});
    EXPECT_EQ(errors(schema, R"("random")"), Lines{"must be one of: round_robin, least_request"});
    EXPECT_EQ(errors(schema, "1"), Lines{"must be one of: round_robin, least_request"});
    const auto mixed = R"({"enum": [1, null, [1, 2], {"a": 1.0}]})";
    EXPECT_EQ(errors(mixed, "1.0"), Lines{});  // numbers compare by value
    EXPECT_EQ(errors(mixed, "null"), Lines{});
    EXPECT_EQ(errors(mixed, "[1, 2.0]"), Lines{});
    EXPECT_EQ(errors(mixed, R"({"a": 1})"), Lines{});
    EXPECT_EQ(errors(mixed, "[2, 1]"), Lines{R"(must be one of: 1, null, [1,2], {"a":1E0})"});
    EXPECT_EQ(errors(mixed, R"({"a": 1, "b": 2})"), Lines{R"(must be one of: 1, null, [1,2], {"a":1E0})"});
}

TEST(Validate, PropertiesRequiredAndAdditionalProperties) {
    const auto schema = R"({
        "type": "object",
        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
        "required": ["name", "port"],
        "additionalProperties": false
    })";
    EXPECT_EQ(errors(schema, R"({"name": "gw", "port": 80})"), Lines{});
    EXPECT_EQ(errors(schema, R"({"port": 80})"), Lines{"name: is required"});
    EXPECT_EQ(errors(schema, R"({"name": "gw", "port": 80, "prot": 1})"), Lines{"prot: unknown key"});
    EXPECT_EQ(errors(schema, R"({"name": 1, "port": "80"})"),
              (Lines{"name: expected a string", "port: expected an integer"}));
    // Without additionalProperties any other key is fine; with a schema it must match it.
    EXPECT_EQ(errors(R"({"properties": {"a": {"type": "string"}}})", R"({"a": "x", "b": 1})"), Lines{});
    const auto labels = R"({"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}})";
    EXPECT_EQ(errors(labels, R"({"team": "ops", "tier": "gold", "n": 1})"),
              (Lines{"tier: must be at most 3 characters long", "n: expected a string"}));
}

TEST(Validate, ItemsAndItemCounts) {
    const auto schema = R"({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2})";
    EXPECT_EQ(errors(schema, R"(["a"])"), Lines{});
    EXPECT_EQ(errors(schema, "[]"), Lines{"must have at least 1 item"});
    EXPECT_EQ(errors(schema, R"(["a", "b", "c"])"), Lines{"must have at most 2 items"});
    EXPECT_EQ(errors(schema, R"(["a", 2])"), Lines{"[1]: expected a string"});
}

TEST(Validate, ReportsEveryProblemInDocumentOrderWithPaths) {
    const auto schema = R"({
        "type": "object",
        "properties": {
            "routes": {"type": "array", "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "weight": {"type": "integer", "maximum": 100}},
                "required": ["path"],
                "additionalProperties": false}},
            "clients": {"type": "object", "additionalProperties": {
                "type": "object",
                "properties": {"timeout": {"type": "string", "format": "duration"}},
                "additionalProperties": false}}
        },
        "additionalProperties": false
    })";
    const auto doc = R"({
        "clients": {"inventory": {"timeout": "5"}, "payments": {"timeout": "1s", "retries": 2}},
        "routes": [{"path": "/a"}, {"weight": 101}, {"path": "/c", "weight": 1.5}],
        "listen": ":8080"
    })";
    EXPECT_EQ(errors(schema, doc),
              (Lines{"clients.inventory.timeout: expected a duration such as 250ms, 5s, 2m or 1h",
                     "clients.payments.retries: unknown key", "routes[1].path: is required",
                     "routes[1].weight: must be at most 100", "routes[2].weight: expected an integer",
                     "listen: unknown key"}));
    EXPECT_EQ(errors(schema, doc, 2),
              (Lines{"clients.inventory.timeout: expected a duration such as 250ms, 5s, 2m or 1h",
                     "clients.payments.retries: unknown key"}));
    EXPECT_EQ(errors(schema, doc, 0).size(), 6u);
    EXPECT_EQ(errors(R"({"items": {"type": "integer"}})", "[[1], 2, \"x\"]"),
              (Lines{"[0]: expected an integer", "[2]: expected an integer"}));
}

TEST(Validate, StopsAtTheLimit) {
    json::array many;
    for (int i = 0; i < 100; ++i) many.emplace_back("x");
    auto schema = json::parse(R"({"items": {"type": "integer"}})");
    EXPECT_EQ(validate(schema, many).size(), 20u);
    EXPECT_EQ(validate(schema, many, 3).size(), 3u);
    EXPECT_EQ(validate(schema, many, 0).size(), 100u);
}

TEST(Validate, ReasonsNeverQuoteTheValue) {
    const auto schema = R"({
        "type": "object",
        "properties": {
            "a": {"type": "integer"}, "b": {"enum": ["x", "y"]}, "c": {"maxLength": 2},
            "d": {"type": "string", "format": "duration"}, "e": {"type": "array", "maxItems": 0},
            "f": {"type": "object", "additionalProperties": false}
        }
    })";
    const auto doc = R"({"a": "hunter2", "b": "hunter2", "c": "hunter2", "d": "hunter2", "e": ["hunter2"],
                         "f": {"k": "hunter2"}})";
    auto found = errors(schema, doc);
    EXPECT_EQ(found.size(), 6u);
    for (const auto& e : found) EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
}
