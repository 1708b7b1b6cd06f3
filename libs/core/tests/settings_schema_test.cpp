#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "plexus/core/json_schema.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/core/yaml_json.hpp"

using namespace plexus::core;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

struct Client {
    std::chrono::milliseconds timeout{1000};
    int attempts = 2;
    double budget_ratio = 0.2;
    bool operator==(const Client&) const = default;
};

struct Route {
    std::string path;
    int weight = 1;
    std::vector<std::string> methods;
    bool operator==(const Route&) const = default;
};

struct Tls {
    std::string cert, key;
    bool operator==(const Tls&) const = default;
};

struct Shop {
    std::string listen;
    int port = 8080;
    int workers = 4;
    bool debug = false;
    double sample_rate = 0.1;
    std::int64_t max_body_bytes = 1 << 20;
    std::chrono::milliseconds drain{5000};
    std::map<std::string, std::string> labels;
    std::optional<Tls> tls;
    std::vector<Route> routes;
    std::map<std::string, Client> clients;
    bool operator==(const Shop&) const = default;
};

// A loader written as the wiring layer writes them; the schema tests describe this very code.
void load_shop(SettingsReader& r, Shop& s) {
    r.field("listen", s.listen, Need::required);
    r.field("port", s.port, 1, 65535);
    r.field("workers", s.workers);
    r.field("debug", s.debug);
    // fail() only after a field returned a value: the rule that keeps the loader describable.
    if (r.field("sample_rate", s.sample_rate) && !(s.sample_rate >= 0 && s.sample_rate <= 1)) {
        r.fail("sample_rate", "must be between 0 and 1");
    }
    r.field("max_body_bytes", s.max_body_bytes);
    r.field("drain", s.drain);
    r.field("labels", s.labels);
    r.section("tls", [&](SettingsReader& t) {
        Tls tls;
        t.field("cert", tls.cert, Need::required);
        t.field("key", tls.key, Need::required);
        s.tls = tls;
    });
    r.each(
        "routes",
        [&](SettingsReader& rr) {
            Route route;
            rr.field("path", route.path, Need::required);
            rr.field("weight", route.weight, 0, 100);
            rr.field("methods", route.methods);
            s.routes.push_back(route);
        },
        Need::required);
    r.each_entry("clients", [&](const std::string& name, SettingsReader& c) {
        auto& client = s.clients[name];
        c.field("timeout", client.timeout);
        c.field("attempts", client.attempts, 1, 10);
        c.section("retry_budget", [&](SettingsReader& b) { b.field("ratio", client.budget_ratio); });
    });
    r.done();
}

json::object shop_schema() {
    auto d = SettingsReader::describer();
    Shop ignored;
    load_shop(d, ignored);
    return d.schema();
}

const char* const kGoodShop = R"(
listen: 0.0.0.0
port: 8443
workers: -1
debug: true
sample_rate: 0.5
max_body_bytes: 10485760
drain: 30s
labels: {team: shop, tier: gold}
tls:
  cert: /etc/tls/cert.pem
  key: /etc/tls/key.pem
routes:
  - path: /orders
    weight: 100
    methods: [GET, POST]
  - path: /health
clients:
  inventory:
    timeout: 250ms
    attempts: 3
    retry_budget: {ratio: 0.1}
  payments: {timeout: 2s}
)";

std::vector<std::string> schema_errors(const json::value& doc) {
    std::vector<std::string> out;
    for (const auto& e : validate(shop_schema(), doc)) out.push_back(to_string(e));
    return out;
}

std::string load_error(const std::function<SettingsReader()>& make) {
    try {
        auto r = make();
        Shop s;
        load_shop(r, s);
    } catch (const SettingsError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(SettingsSchema, DescribesEveryKindOfField) {
    auto expected = json::parse(R"({
        "type": "object",
        "properties": {
            "listen": {"type": "string"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "workers": {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
            "debug": {"type": "boolean"},
            "sample_rate": {"type": "number"},
            "max_body_bytes": {"type": "integer"},
            "drain": {"type": "string", "format": "duration"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "tls": {
                "type": "object",
                "properties": {"cert": {"type": "string"}, "key": {"type": "string"}},
                "required": ["cert", "key"],
                "additionalProperties": false
            },
            "routes": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                    "methods": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["path"],
                "additionalProperties": false
            }},
            "clients": {"type": "object", "additionalProperties": {
                "type": "object",
                "properties": {
                    "timeout": {"type": "string", "format": "duration"},
                    "attempts": {"type": "integer", "minimum": 1, "maximum": 10},
                    "retry_budget": {
                        "type": "object",
                        "properties": {"ratio": {"type": "number"}},
                        "additionalProperties": false
                    }
                },
                "additionalProperties": false
            }}
        },
        "required": ["listen", "routes"],
        "additionalProperties": false
    })");
    auto schema = shop_schema();
    EXPECT_EQ(json::value(schema), expected) << json::serialize(schema);
    EXPECT_EQ(check_schema(schema), "");
}

TEST(SettingsSchema, AGoodDocumentPassesTheSchemaAndLoads) {
    auto doc = yaml_to_json(kGoodShop, "shop.yaml");
    EXPECT_EQ(schema_errors(doc), std::vector<std::string>{});

    Shop from_yaml;
    auto r = SettingsReader::from_text(kGoodShop, "shop.yaml");
    load_shop(r, from_yaml);
    EXPECT_EQ(from_yaml.port, 8443);
    EXPECT_EQ(from_yaml.clients.at("inventory").budget_ratio, 0.1);
    ASSERT_EQ(from_yaml.routes.size(), 2u);

    // The same document as JSON (from a config server, say), and written back as YAML.
    Shop from_json;
    auto j = SettingsReader::from_json(doc, "remote");
    load_shop(j, from_json);
    EXPECT_EQ(from_json, from_yaml);

    Shop again;
    auto y = SettingsReader::from_text(json_to_yaml(doc), "again.yaml");
    load_shop(y, again);
    EXPECT_EQ(again, from_yaml);
}

TEST(SettingsSchema, BadDocumentsFailTheSchemaAndTheLoaderAtTheSameKey) {
    struct Case {
        const char* yaml;
        const char* schema_error;
        const char* load_error;
    };
    const Case cases[] = {
        {"listen: x\nroutes: []\nprot: 1\n", "prot: unknown key", "bad.yaml:3: prot: unknown key"},
        {"routes: []\n", "listen: is required", "bad.yaml:1: listen: is required"},
        {"listen: x\n", "routes: is required", "bad.yaml:1: routes: is required"},
        {"listen: x\nroutes: []\nport: 0\n", "port: must be at least 1",
         "bad.yaml:3: port: must be between 1 and 65535, got 0"},
        {"listen: x\nroutes: []\nport: 80.0\n", "port: expected an integer",
         "bad.yaml:3: port: expected an integer, got '80.0'"},
        {"listen: x\nroutes: []\nworkers: 3000000000\n", "workers: must be at most 2147483647",
         "bad.yaml:3: workers: must be between -2147483648 and 2147483647, got 3000000000"},
        {"listen: x\nroutes: []\ndebug: yes\n", "debug: expected true or false",
         "bad.yaml:3: debug: expected true or false, got 'yes'"},
        {"listen: x\nroutes: []\ndrain: 5\n", "drain: expected a duration such as 250ms, 5s, 2m or 1h",
         "bad.yaml:3: drain: expected a duration such as 250ms, 5s, 2m or 1h, got '5'"},
        {"listen: x\nroutes: []\nlabels: {a: [b]}\n", "labels.a: expected a string",
         "bad.yaml:3: labels: expected a map of strings"},
        {"listen: x\nroutes: []\ntls: {cert: c}\n", "tls.key: is required",
         "bad.yaml:3: tls.key: is required"},
        {"listen: x\nroutes:\n  - path: /a\n  - weight: 5\n", "routes[1].path: is required",
         "bad.yaml:4: routes[1].path: is required"},
        {"listen: x\nroutes:\n  - path: /a\n    wieght: 5\n", "routes[0].wieght: unknown key",
         "bad.yaml:4: routes[0].wieght: unknown key"},
        {"listen: x\nroutes: [{path: /a, methods: GET}]\n", "routes[0].methods: expected a list",
         "bad.yaml:2: routes[0].methods: expected a list of strings"},
        {"listen: x\nroutes: []\nclients:\n  inventory:\n    timeout: 5\n",
         "clients.inventory.timeout: expected a duration such as 250ms, 5s, 2m or 1h",
         "bad.yaml:5: clients.inventory.timeout: expected a duration such as 250ms, 5s, 2m or 1h, got '5'"},
        {"listen: x\nroutes: []\nclients:\n  inventory:\n    timeout: 5m\n    attempts: 11\n",
         "clients.inventory.attempts: must be at most 10",
         "bad.yaml:6: clients.inventory.attempts: must be between 1 and 10, got 11"},
        {"listen: x\nroutes: []\nclients:\n  inventory: {retry_budget: {ratio: high}}\n",
         "clients.inventory.retry_budget.ratio: expected a number",
         "bad.yaml:4: clients.inventory.retry_budget.ratio: expected a number, got 'high'"},
        {"listen: x\nroutes: []\nclients:\n  inventory: {retries: 2}\n",
         "clients.inventory.retries: unknown key", "bad.yaml:4: clients.inventory.retries: unknown key"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.yaml);
        auto doc = yaml_to_json(c.yaml, "bad.yaml");
        auto found = schema_errors(doc);
        ASSERT_FALSE(found.empty());
        EXPECT_EQ(found.front(), c.schema_error);
        EXPECT_EQ(load_error([&] { return SettingsReader::from_text(c.yaml, "bad.yaml"); }), c.load_error);
    }
}

TEST(SettingsSchema, DescribeModeReadsNothing) {
    auto d = SettingsReader::describer();
    std::string s = "kept";
    int n = 7;
    std::vector<std::string> list{"kept"};
    EXPECT_FALSE(d.field("s", s, Need::required));
    EXPECT_FALSE(d.field("n", n, 0, 10));
    EXPECT_FALSE(d.field("list", list));
    EXPECT_EQ(s, "kept");
    EXPECT_EQ(n, 7);
    EXPECT_EQ(list, std::vector<std::string>{"kept"});
    EXPECT_FALSE(d.has("s"));

    int sections = 0, items = 0;
    std::vector<std::string> names;
    EXPECT_FALSE(d.section("sec", [&](SettingsReader& c) {
        ++sections;
        EXPECT_FALSE(c.has("anything"));
    }));
    EXPECT_FALSE(d.each("list_of_maps", [&](SettingsReader&) { ++items; }));
    EXPECT_FALSE(d.each_entry("map_of_maps",
                              [&](const std::string& name, SettingsReader&) { names.push_back(name); }));
    EXPECT_EQ(sections, 1);
    EXPECT_EQ(items, 1);
    EXPECT_EQ(names, std::vector<std::string>{"*"});
    EXPECT_NO_THROW(d.done());

    // Asking twice keeps one property and lists a required key once.
    EXPECT_FALSE(d.field("s", s, Need::required));
    auto schema = d.schema();
    EXPECT_EQ(schema.at("required"), json::parse(R"(["s"])"));
    EXPECT_EQ(schema.at("properties").as_object().size(), 6u);
}

TEST(SettingsSchema, FailWhileDescribingIsALoaderBug) {
    auto d = SettingsReader::describer();
    try {
        d.each("routes", [](SettingsReader& r) {
            std::string name;
            r.field("name", name);
            if (name.empty()) r.fail("name", "must not be empty");  // checks a value nobody read
        });
        FAIL() << "no error";
    } catch (const std::logic_error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("routes[*].name: fail() while describing settings"), std::string::npos) << what;
        EXPECT_NE(what.find("must not be empty"), std::string::npos) << what;
    }
}

TEST(SettingsSchema, SchemaNeedsADescriber) {
    auto r = SettingsReader::from_text("a: 1\n", "a.yaml");
    EXPECT_THROW(r.schema(), std::logic_error);
}

TEST(SettingsFromJson, ErrorsNameTheKeyPathWithoutALine) {
    auto error = [](std::string_view text) {
        return load_error([&] { return SettingsReader::from_json(json::parse(text), "remote"); });
    };
    EXPECT_EQ(error(R"({"listen": "x", "routes": [], "prot": 1})"), "remote: prot: unknown key");
    EXPECT_EQ(error(R"({"routes": []})"), "remote: listen: is required");
    EXPECT_EQ(error(R"({"listen": null, "routes": []})"), "remote: listen: is required");
    EXPECT_EQ(error(R"({"listen": "x", "routes": [{"path": "/a"}, {"weight": 1}]})"),
              "remote: routes[1].path: is required");
    EXPECT_EQ(error(R"({"listen": "x", "routes": [], "clients": {"inventory": {"timeout": "5"}}})"),
              "remote: clients.inventory.timeout: expected a duration such as 250ms, 5s, 2m or 1h, got '5'");
    EXPECT_EQ(error(R"({"listen": "x", "routes": [], "clients": {"inventory": {"attempts": 20}}})"),
              "remote: clients.inventory.attempts: must be between 1 and 10, got 20");
    EXPECT_EQ(error(R"({"listen": "x", "routes": [], "port": 80.0})"),
              "remote: port: expected an integer, got '80.0'");
    EXPECT_EQ(error(R"({"listen": "x", "routes": [], "debug": "yes"})"),
              "remote: debug: expected true or false, got 'yes'");
    EXPECT_EQ(error(R"({"listen": ["x"], "routes": []})"), "remote: listen: expected a string");
    EXPECT_EQ(error(R"({"listen": "x", "routes": {}})"), "remote: routes: expected a list");
    EXPECT_EQ(error(R"({"listen": "x", "routes": [], "tls": {"cert": "c"}})"),
              "remote: tls.key: is required");
    EXPECT_EQ(error(R"({"listen": "x", "routes": [], "sample_rate": 1.5})"),
              "remote: sample_rate: must be between 0 and 1");
    EXPECT_EQ(error(R"([1])"), "remote: the document must be a map of keys");
    EXPECT_EQ(error(R"("text")"), "remote: the document must be a map of keys");
}

TEST(SettingsFromJson, StringsStayStringsAndNumbersKeepTheirKind) {
    Shop s;
    auto r = SettingsReader::from_json(json::parse(R"({"listen": "true", "routes": [{"path": "null"}],
        "sample_rate": 1, "max_body_bytes": 9223372036854775807, "labels": {"n": "0123"}})"),
                                       "remote");
    load_shop(r, s);
    EXPECT_EQ(s.listen, "true");
    EXPECT_EQ(s.routes.at(0).path, "null");
    EXPECT_EQ(s.sample_rate, 1.0);
    EXPECT_EQ(s.max_body_bytes, std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(s.labels.at("n"), "0123");

    Shop empty;
    auto null_doc = SettingsReader::from_json(json::value(nullptr), "remote");
    null_doc.field("listen", empty.listen);
    EXPECT_NO_THROW(null_doc.done());
}

TEST(SettingsFromJson, RefusesWhatNoSettingsFileHolds) {
    json::value deep = json::object{};
    for (int i = 0; i < 100; ++i) deep = json::object{{"a", deep}};
    EXPECT_THROW(SettingsReader::from_json(deep, "remote"), SettingsError);
    try {
        SettingsReader::from_json(json::object{{"clients", json::object{{"x", std::nan("")}}}}, "remote");
        FAIL() << "no error";
    } catch (const SettingsError& e) {
        EXPECT_STREQ(e.what(), "remote: clients.x: is not a finite number");
    }
}
