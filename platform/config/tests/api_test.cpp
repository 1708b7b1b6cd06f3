// The config server's HTTP API in process: a ConfigService over a SQLite file in a temporary
// directory, a fixed secrets key, and the Api's routes on a net::Server over a two-thread runtime
// on loopback port 0, driven with raw requests. Callers present JWTs signed with a key the
// verifier holds statically (no JWKS is fetched); one fixture runs without a verifier (anonymous).
// Every wait is bounded by kWait. A watch that must be woken waits kLongWait, longer than any
// request is waited for, so one that is not woken fails the test by timing out; no assertion puts
// an upper bound on wall-clock time.

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

#include "plexus/auth/verifier.hpp"
#include "plexus/config/config.hpp"
#include "plexus/config/secrets.hpp"
#include "plexus/config/service.hpp"
#include "plexus/config/store.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/core/yaml_json.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/security/jwk.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/security/secrets.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

using namespace plexus;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace security = plexus::security;

using namespace plexus::net::testing;

namespace {

constexpr const char* kIssuer = "https://id.test";
constexpr const char* kAudience = "plexus";

// Longer than kWait: a watch asked to wait this long answers within a test only when something woke it.
constexpr const char* kLongWait = "&wait=60s";

// A response's JSON body; throws (failing the test) if it is not an object.
json::object body_of(const net::Response& res) { return json::parse(res.body).as_object(); }

std::string str(const json::value& v) { return std::string(v.as_string()); }

std::int64_t version_of(const net::Response& res) {
    return body_of(res).at("version").to_number<std::int64_t>();
}

std::int64_t header_version(const net::Response& res) {
    auto h = res.headers.get("X-Plexus-Version");
    if (!h) throw std::runtime_error("no X-Plexus-Version header");
    return std::stoll(std::string(*h));
}

std::string header(const net::Response& res, std::string_view name) {
    return std::string(res.headers.get(name).value_or(""));
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// The detail of a problem+json answer, after checking that it is one with `status`.
std::string problem(const net::Response& res, int status) {
    EXPECT_EQ(res.status, status) << res.body;
    EXPECT_EQ(header(res, "Content-Type"), "application/problem+json") << res.body;
    boost::system::error_code ec;
    auto v = json::parse(res.body, ec);
    if (ec || !v.is_object()) {
        ADD_FAILURE() << "not a problem document: " << res.body;
        return {};
    }
    const auto& o = v.get_object();
    const auto* s = o.if_contains("status");
    EXPECT_TRUE(s && s->is_int64() && s->get_int64() == status) << res.body;
    const auto* detail = o.if_contains("detail");
    if (!detail || !detail->is_string()) {
        ADD_FAILURE() << "a problem without detail: " << res.body;
        return {};
    }
    return std::string(detail->get_string());
}

std::string doc_path(const std::string& app, const std::string& profile = "") {
    return "/v1/documents/" + app + (profile.empty() ? "" : "/profiles/" + profile);
}

// The names of a Spring answer's propertySources, highest first.
std::vector<std::string> source_names(const json::object& spring) {
    std::vector<std::string> names;
    for (const auto& s : spring.at("propertySources").as_array())
        names.push_back(str(s.as_object().at("name")));
    return names;
}

// The flattened source named `name` of a Spring answer; throws when there is none.
json::object source(const json::object& spring, std::string_view name) {
    for (const auto& s : spring.at("propertySources").as_array())
        if (s.as_object().at("name").as_string() == name) return s.as_object().at("source").as_object();
    throw std::runtime_error("no property source " + std::string(name));
}

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

class ConfigApiTest : public ::testing::Test {
  protected:
    explicit ConfigApiTest(bool anonymous = false) : anonymous_(anonymous) {}

    void SetUp() override {
        telemetry::set_log_level(telemetry::Level::warn);
        dir_ = std::filesystem::temp_directory_path() /
               ("plexus-config-api-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        auto store = config::open_sqlite_store((dir_ / "config.db").string());
        ASSERT_TRUE(store) << store.error().message();
        service_ = std::make_unique<config::ConfigService>(std::move(*store),
                                                           config::SecretBox(std::string(32, 'k')));
        std::shared_ptr<auth::Verifier> verifier;
        if (!anonymous_) {
            security::KeySet keys;
            keys.add(signer_);
            verifier = std::make_shared<auth::Verifier>(
                auth::ProviderSettings{.issuer = kIssuer, .audience = kAudience}, std::move(keys), 1000,
                core::Clock::real());
        }
        api_ = std::make_unique<config::Api>(*service_, std::move(verifier), metrics_, 60s);
        api_->add_routes(router_);
        server_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_.handler(),
                                                router_.body_limit_fn());
        server_->start();
        ep_ = net::Endpoint{"127.0.0.1", server_->port()};
        runner_ = std::thread([this] { runtime_.run(); });
    }

    // Terminal stop: watches still pending are destroyed with the runtime's work.
    void TearDown() override {
        runtime_.stop();
        if (runner_.joinable()) runner_.join();
        server_.reset();
        api_.reset();
        service_.reset();
        std::filesystem::remove_all(dir_);
    }

    std::string token(std::string scope, std::string subject = "user-1", std::int64_t lifetime = 300) const {
        return signed_by(signer_, std::move(scope), std::move(subject), lifetime);
    }

    static std::string signed_by(const security::Key& key, std::string scope, std::string subject,
                                 std::int64_t lifetime = 300, std::string audience = kAudience) {
        auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        return security::sign_jwt(key, {{"iss", kIssuer},
                                        {"aud", std::move(audience)},
                                        {"sub", std::move(subject)},
                                        {"client_id", "cli"},
                                        {"scope", std::move(scope)},
                                        {"iat", now},
                                        {"exp", now + lifetime},
                                        {"jti", security::random_token(8)}});
    }

    // Sends a request from io_context `context` without waiting for the answer; `bearer` empty:
    // no Authorization header.
    std::future<Result<net::Response>> start(std::string method, std::string target, std::string body,
                                             const std::string& bearer, std::size_t context = 0) {
        std::string_view content_type = body.empty() ? "" : "application/json";
        auto req = net::make_request(std::move(method), std::move(target), std::move(body), content_type);
        if (!bearer.empty()) req.headers.set("Authorization", "Bearer " + bearer);
        auto promise = std::make_shared<std::promise<Result<net::Response>>>();
        auto future = promise->get_future();
        net::spawn(runtime_.executor(context), deliver(send_owned(ep_, std::move(req), kWait), promise),
                   "test request");
        return future;
    }

    // Sends a request and returns its response; a transport error fails the test.
    net::Response request(std::string method, std::string target, std::string body,
                          const std::string& bearer) {
        auto future = start(std::move(method), std::move(target), std::move(body), bearer);
        return answer(future);
    }

    static net::Response answer(std::future<Result<net::Response>>& future) {
        auto res = wait(future);
        if (!res) throw std::runtime_error("request failed: " + res.error().message());
        return std::move(*res);
    }

    net::Response get(std::string target, const std::string& bearer) {
        return request("GET", std::move(target), {}, bearer);
    }

    // Writes a document's content as the admin; the new version.
    std::int64_t put(const std::string& app, const std::string& profile, std::string_view content,
                     std::string_view message = "") {
        json::object body{{"content", json::parse(content)}, {"message", message}};
        auto res = request("PUT", doc_path(app, profile), json::serialize(body), admin_);
        EXPECT_EQ(res.status, 200) << res.body;
        return res.status == 200 ? version_of(res) : -1;
    }

    double watchers() {
        return metrics_.gauge("plexus_config_watchers", "Blocking config watches currently waiting")
            .labels()
            .value();
    }

    // Waits until `n` watches are blocked in the server.
    void await_watchers(double n) {
        ASSERT_TRUE(wait_until([&] { return watchers() == n; })) << "watchers: " << watchers();
    }

    std::int64_t revision() {
        return body_of(get("/v1/documents", admin_)).at("revision").to_number<std::int64_t>();
    }

    bool anonymous_;
    security::Key signer_ = security::Key::generate(security::Algorithm::es256, "k1");
    std::string admin_ = token("plexus:admin", "alice");
    std::string writer_ = token("config:write:catalog", "bob");          // catalog's documents
    std::string reader_ = token("config:read:catalog", "shop-catalog");  // catalog, secrets masked
    std::string service_token_ = token("config:read:catalog config:secrets:catalog", "shop-catalog");
    std::string stranger_ = token("config:read:inventory", "shop-inventory");

    std::filesystem::path dir_;
    std::unique_ptr<config::ConfigService> service_;
    telemetry::Registry metrics_;
    std::unique_ptr<config::Api> api_;
    net::Router router_;
    net::Runtime runtime_{2};
    std::unique_ptr<net::Server> server_;
    net::Endpoint ep_;
    std::thread runner_;
};

class AnonymousConfigApiTest : public ConfigApiTest {
  protected:
    AnonymousConfigApiTest() : ConfigApiTest(true) {}
};

}  // namespace

// ---------------------------------------------------------------- who may do what

TEST_F(ConfigApiTest, ARequestWithoutATokenIsRefusedWithABearerChallenge) {
    put("catalog", "", R"({"page":20})");
    const std::pair<const char*, std::string> requests[] = {
        {"GET", "/catalog/prod"},
        {"GET", "/catalog/prod/1"},
        {"GET", "/v1/config/catalog/prod"},
        {"GET", "/v1/documents"},
        {"GET", doc_path("catalog")},
        {"PUT", doc_path("catalog")},
        {"GET", "/v1/labels"},
        {"PUT", "/v1/labels/r1"},
        {"GET", "/v1/instances/catalog"},
        {"POST", "/v1/encrypt/catalog"},
        {"GET", doc_path("catalog") + "/history"},
    };
    for (const auto& [method, target] : requests) {
        auto res = request(method, target, method == std::string("GET") ? "" : R"({"content":{"a":1}})", "");
        auto detail = problem(res, 401);
        EXPECT_TRUE(contains(detail, "Bearer")) << method << " " << target << ": " << detail;
        EXPECT_EQ(header(res, "WWW-Authenticate"), R"(Bearer realm="plexus")") << method << " " << target;
    }
    // An API key is not a credential this server takes: still no Bearer token.
    auto req = net::make_request("GET", "/catalog/prod");
    req.headers.set("X-API-Key", "pxk_abc.def");
    auto future = net::start(runtime_.executor(0), send_owned(ep_, std::move(req), kWait));
    problem(answer(future), 401);
    EXPECT_EQ(version_of(get(doc_path("catalog"), admin_)), revision());  // nothing was written
}

TEST_F(ConfigApiTest, AnInvalidTokenIsRefused) {
    auto foreign = security::Key::generate(security::Algorithm::es256, "k1");  // the same kid, another key
    auto unknown = security::Key::generate(security::Algorithm::es256, "k2");
    const std::string bad[] = {
        "not.a.jwt",
        signed_by(foreign, "plexus:admin", "mallory"),
        signed_by(unknown, "plexus:admin", "mallory"),
        token("plexus:admin", "alice", -600),                                  // expired
        signed_by(signer_, "plexus:admin", "alice", 300, "another-audience"),  // not for this server
        "pxo_notanopaquetokenanyoneissued",                                    // nobody to introspect it
        "garbage",
    };
    for (const auto& t : bad) {
        auto res = get("/v1/config/catalog/prod", t);
        auto detail = problem(res, 401);
        EXPECT_TRUE(contains(detail, "invalid access token")) << detail;
        EXPECT_EQ(header(res, "WWW-Authenticate"), R"(Bearer realm="plexus", error="invalid_token")") << t;
        problem(request("PUT", doc_path("catalog"), R"({"content":{"a":1}})", t), 401);
    }
    EXPECT_EQ(revision(), 0);
    EXPECT_EQ(get("/v1/config/catalog/prod", admin_).status, 200);
}

TEST_F(ConfigApiTest, ATokenWithoutTheScopeIsForbidden) {
    put("catalog", "", R"({"page":20})");
    put("catalog", "prod", R"({"page":30})");
    put("inventory", "", R"({"stock":1})");
    const std::string reads[] = {
        "/catalog/prod",
        "/v1/config/catalog/prod",
        doc_path("catalog"),
        doc_path("catalog", "prod"),
        doc_path("catalog") + "/history",
        doc_path("catalog") + "/diff",
        "/v1/schemas/catalog",
        "/v1/instances/catalog",
    };
    for (const auto& target : reads) {
        auto detail = problem(get(target, stranger_), 403);
        EXPECT_TRUE(contains(detail, "config:read:catalog")) << target << ": " << detail;
    }
    auto before = revision();
    problem(request("PUT", doc_path("catalog"), R"({"content":{"a":1}})", stranger_), 403);
    problem(request("PATCH", doc_path("catalog"), R"({"set":{"a":1}})", stranger_), 403);
    problem(request("DELETE", doc_path("catalog"), "", stranger_), 403);
    problem(request("POST", doc_path("catalog") + "/rollback", R"({"version":1})", stranger_), 403);
    problem(
        request("POST", doc_path("catalog") + "/canary", R"({"set":{"a":1},"instances":["i1"]})", stranger_),
        403);
    problem(request("PUT", "/v1/schemas/catalog", R"({"type":"object"})", stranger_), 403);
    problem(request("PUT", "/v1/instances/catalog/i1", R"({"applied":true})", stranger_), 403);
    problem(request("POST", "/v1/encrypt/catalog", "s3cret", stranger_), 403);
    // Readers do not write, even their own application.
    problem(request("PUT", doc_path("inventory"), R"({"content":{"a":1}})", stranger_), 403);
    problem(request("PUT", "/v1/labels/r1", "", stranger_), 403);
    EXPECT_EQ(revision(), before);

    // The listing shows only what the caller may read.
    auto list = body_of(get("/v1/documents", stranger_));
    ASSERT_EQ(list.at("documents").as_array().size(), 1u) << json::serialize(list);
    EXPECT_EQ(str(list.at("documents").as_array()[0].as_object().at("application")), "inventory");
    EXPECT_EQ(get("/inventory/prod", stranger_).status, 200);
}

TEST_F(ConfigApiTest, AnAdminMayDoEverything) {
    auto shared = put("application", "", R"({"log":"info"})");
    auto v1 = put("catalog", "", R"({"page":20})");
    auto patched = request("PATCH", doc_path("catalog"), R"({"set":{"page":25}})", admin_);
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(str(body_of(patched).at("author")), "alice");
    EXPECT_EQ(request("POST", doc_path("catalog") + "/rollback",
                      json::serialize(json::object{{"version", v1}}), admin_)
                  .status,
              200);
    EXPECT_EQ(request("PUT", "/v1/labels/r1", R"({"message":"first"})", admin_).status, 204);
    EXPECT_EQ(request("PUT", "/v1/schemas/catalog", R"({"type":"object"})", admin_).status, 200);
    EXPECT_EQ(request("PUT", "/v1/instances/catalog/i1", R"({"applied":true})", admin_).status, 204);
    EXPECT_EQ(request("POST", "/v1/encrypt/catalog", "s3cret", admin_).status, 200);
    EXPECT_EQ(
        request("POST", doc_path("catalog") + "/canary", R"({"set":{"page":30},"instances":["i1"]})", admin_)
            .status,
        201);
    EXPECT_EQ(request("POST", doc_path("catalog") + "/promote", "", admin_).status, 200);
    EXPECT_EQ(request("DELETE", doc_path("catalog"), "", admin_).status, 200);
    EXPECT_EQ(request("DELETE", "/v1/labels/r1", "", admin_).status, 204);
    for (const auto& target :
         {std::string("/catalog/prod"), std::string("/v1/config/catalog/prod"), doc_path("application"),
          doc_path("catalog") + "/history", std::string("/v1/labels"), std::string("/v1/schemas/catalog"),
          std::string("/v1/instances/catalog")})
        EXPECT_EQ(get(target, admin_).status, 200) << target;
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", admin_)).at("config"),
              json::value(obj(R"({"log":"info"})")));
    EXPECT_GT(revision(), shared);
}

TEST_F(ConfigApiTest, AnApplicationsWriterWritesItButNotTheSharedLayerOtherApplicationsOrLabels) {
    auto res =
        request("PUT", doc_path("catalog", "prod"), R"({"content":{"page":30},"message":"more"})", writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    auto record = body_of(res);
    EXPECT_EQ(str(record.at("author")), "bob");
    EXPECT_EQ(str(record.at("message")), "more");
    EXPECT_EQ(str(record.at("kind")), "set");
    EXPECT_EQ(str(record.at("application")), "catalog");
    EXPECT_EQ(str(record.at("profile")), "prod");
    EXPECT_EQ(header_version(res), version_of(res));
    EXPECT_EQ(request("PUT", doc_path("catalog"), R"({"content":{"page":20}})", writer_).status, 200);
    EXPECT_EQ(get("/catalog/prod", writer_).status, 200);  // writing implies reading

    auto before = revision();
    auto detail = problem(request("PUT", doc_path("application"), R"({"content":{"a":1}})", writer_), 403);
    EXPECT_TRUE(contains(detail, "application")) << detail;
    problem(request("PATCH", doc_path("application", "prod"), R"({"set":{"a":1}})", writer_), 403);
    problem(request("PUT", doc_path("inventory"), R"({"content":{"a":1}})", writer_), 403);
    problem(request("PUT", "/v1/labels/r1", "", writer_), 403);
    EXPECT_EQ(revision(), before);
    EXPECT_TRUE(body_of(get("/v1/labels", admin_)).at("labels").as_array().empty());
    // Writing every application (config:write) includes the shared layer and labels.
    auto all = token("config:write", "carol");
    EXPECT_EQ(request("PUT", doc_path("application"), R"({"content":{"a":1}})", all).status, 200);
    EXPECT_EQ(request("PUT", "/v1/labels/r1", "", all).status, 204);
}

// ---------------------------------------------------------------- Spring Cloud Config's answer

TEST_F(ConfigApiTest, SpringClientsGetTheLayersHighestFirstWithFlattenedProperties) {
    put("application", "", R"({"log":{"level":"info"},"page":10})");
    put("application", "prod", R"({"log":{"level":"warn"}})");
    put("catalog", "", R"({"db":{"pool":{"size":4},"url":"jdbc:x"},"hosts":["a","b"],"empty":{},"none":[]})");
    auto prod = put("catalog", "prod", R"({"db":{"pool":{"size":16}}})");
    put("catalog", "eu", R"({"region":"eu"})");
    put("inventory", "prod", R"({"stock":1})");

    auto res = get("/catalog/prod", reader_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(header(res, "Content-Type"), "application/json");
    EXPECT_EQ(header(res, "Cache-Control"), "no-store");
    auto spring = body_of(res);
    EXPECT_EQ(spring.at("name"), json::value("catalog"));
    EXPECT_EQ(spring.at("profiles"), json::value(json::array{"prod"}));
    EXPECT_TRUE(spring.at("label").is_null());
    EXPECT_TRUE(spring.at("state").is_null());
    ASSERT_TRUE(spring.at("version").is_string()) << res.body;
    EXPECT_EQ(str(spring.at("version")), std::to_string(prod));
    EXPECT_EQ(source_names(spring),
              (std::vector<std::string>{"plexus:catalog-prod", "plexus:catalog", "plexus:application-prod",
                                        "plexus:application"}));
    EXPECT_EQ(source(spring, "plexus:catalog-prod"), obj(R"({"db.pool.size":16})"));
    EXPECT_EQ(source(spring, "plexus:catalog"),
              obj(R"({"db.pool.size":4,"db.url":"jdbc:x","hosts[0]":"a","hosts[1]":"b"})"));
    EXPECT_EQ(source(spring, "plexus:application"), obj(R"({"log.level":"info","page":10})"));

    // Only the documents that exist: no catalog-default, application-default.
    auto plain = body_of(get("/catalog/default", reader_));
    EXPECT_EQ(source_names(plain), (std::vector<std::string>{"plexus:catalog", "plexus:application"}));
    auto none = body_of(get("/orders/default", admin_));
    EXPECT_EQ(source_names(none), (std::vector<std::string>{"plexus:application"}));
    auto nothing = body_of(get("/orders/qa", admin_));
    EXPECT_EQ(source_names(nothing), (std::vector<std::string>{"plexus:application"}));
}

TEST_F(ConfigApiTest, SpringProfilesSeparatedByCommasLayerInOrder) {
    put("application", "", R"({"page":10})");
    put("catalog", "", R"({"page":20})");
    put("catalog", "prod", R"({"page":30,"region":"us"})");
    auto eu = put("catalog", "eu", R"({"region":"eu"})");
    auto spring = body_of(get("/catalog/prod,eu", reader_));
    EXPECT_EQ(spring.at("profiles"), json::value(json::array{"prod", "eu"}));
    EXPECT_EQ(str(spring.at("version")), std::to_string(eu));
    EXPECT_EQ(source_names(spring), (std::vector<std::string>{"plexus:catalog-eu", "plexus:catalog-prod",
                                                              "plexus:catalog", "plexus:application"}));
    // The later profile wins, in Spring's answer and in the merged one.
    auto merged = body_of(get("/v1/config/catalog/prod,eu", reader_));
    EXPECT_EQ(merged.at("config"), json::value(obj(R"({"page":30,"region":"eu"})")));
    EXPECT_EQ(merged.at("profiles"), json::value(json::array{"prod", "eu"}));
    auto reversed = body_of(get("/v1/config/catalog/eu,prod", reader_));
    EXPECT_EQ(reversed.at("config"), json::value(obj(R"({"page":30,"region":"us"})")));
    problem(get("/catalog/prod,,eu", reader_), 400);
    problem(get("/catalog/prod,", reader_), 400);
}

TEST_F(ConfigApiTest, SpringWithALabelAnswersThePastState) {
    put("application", "", R"({"log":"info"})");
    put("catalog", "", R"({"page":20})");
    auto pinned = put("catalog", "prod", R"({"page":30})");
    ASSERT_EQ(request("PUT", "/v1/labels/release-1", R"({"message":"first release"})", admin_).status, 204);
    put("catalog", "prod", R"({"page":99})");
    put("application", "", R"({"log":"debug"})");

    auto then = get("/catalog/prod/release-1", reader_);
    ASSERT_EQ(then.status, 200) << then.body;
    auto spring = body_of(then);
    EXPECT_EQ(spring.at("label"), json::value("release-1"));
    EXPECT_EQ(str(spring.at("version")), std::to_string(pinned));
    EXPECT_EQ(source(spring, "plexus:catalog-prod"), obj(R"({"page":30})"));
    EXPECT_EQ(source(spring, "plexus:application"), obj(R"({"log":"info"})"));
    // A revision number is a label too.
    auto by_number = body_of(get("/catalog/prod/" + std::to_string(pinned), reader_));
    EXPECT_EQ(by_number.at("propertySources"), spring.at("propertySources"));
    EXPECT_EQ(by_number.at("label"), json::value(std::to_string(pinned)));
    // The current state is unchanged by reading a past one.
    EXPECT_EQ(source(body_of(get("/catalog/prod", reader_)), "plexus:catalog-prod"), obj(R"({"page":99})"));
    // The merged view of a label.
    auto merged = body_of(get("/v1/config/catalog/prod?label=release-1", reader_));
    EXPECT_EQ(merged.at("config"), json::value(obj(R"({"log":"info","page":30})")));

    EXPECT_TRUE(contains(problem(get("/catalog/prod/nope", reader_), 404), "nope"));
    problem(get("/catalog/prod/0", reader_), 404);
    problem(get("/v1/config/catalog/prod?label=nope", reader_), 404);
    // A label names a past state, which does not change: there is nothing to watch.
    problem(get("/v1/config/catalog/prod?label=release-1&version=3", reader_), 400);
}

// ---------------------------------------------------------------- writing

TEST_F(ConfigApiTest, PutTakesContentOrYamlAndEachWriteIsANewVersion) {
    auto v1 = put("catalog", "", R"({"page":20,"db":{"url":"x"}})", "first");
    auto res = request(
        "PUT", doc_path("catalog"),
        json::serialize(json::object{{"yaml", "page: 50\ndb:\n  url: y\n  pool: 8\nhosts:\n  - a\n  - b\n"},
                                     {"message", "from yaml"}}),
        writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    auto v2 = version_of(res);
    EXPECT_GT(v2, v1);
    auto doc = get(doc_path("catalog"), writer_);
    ASSERT_EQ(doc.status, 200) << doc.body;
    auto record = body_of(doc);
    EXPECT_EQ(record.at("content"),
              json::value(obj(R"({"page":50,"db":{"url":"y","pool":8},"hosts":["a","b"]})")));
    EXPECT_EQ(str(record.at("message")), "from yaml");
    EXPECT_EQ(record.at("version").to_number<std::int64_t>(), v2);
    EXPECT_EQ(header_version(doc), v2);
    EXPECT_FALSE(str(record.at("time")).empty());
    // Any version by number.
    auto old = body_of(get(doc_path("catalog") + "?version=" + std::to_string(v1), writer_));
    EXPECT_EQ(old.at("content"), json::value(obj(R"({"page":20,"db":{"url":"x"}})")));
    problem(get(doc_path("catalog") + "?version=9999", writer_), 404);
    problem(get(doc_path("catalog", "prod"), writer_), 404);  // never written
    // An empty YAML document is an empty map.
    auto empty = request("PUT", doc_path("catalog", "qa"), R"({"yaml":""})", writer_);
    ASSERT_EQ(empty.status, 200) << empty.body;
    EXPECT_EQ(body_of(get(doc_path("catalog", "qa"), writer_)).at("content"), json::value(json::object()));
    problem(get(doc_path("catalog") + "?version=" + std::to_string(version_of(empty)), writer_),
            404);  // another document's version
    // The listing names every document and its version.
    auto list = body_of(get("/v1/documents", reader_));
    EXPECT_EQ(list.at("revision").to_number<std::int64_t>(), version_of(empty));
    ASSERT_EQ(list.at("documents").as_array().size(), 2u) << json::serialize(list);
    auto first = list.at("documents").as_array()[0].as_object();
    EXPECT_EQ(str(first.at("name")), "catalog");
    EXPECT_EQ(first.at("version").to_number<std::int64_t>(), v2);
    EXPECT_EQ(str(first.at("author")), "bob");
}

TEST_F(ConfigApiTest, AYamlSyntaxErrorIsRefusedNamingTheLine) {
    auto v1 = put("catalog", "", R"({"page":20})");
    auto detail = problem(
        request("PUT", doc_path("catalog"),
                json::serialize(json::object{{"yaml", "page: 50\ncache: 5s\nhosts: - a\n"}}), writer_),
        400);
    EXPECT_TRUE(detail.starts_with("yaml:3: ")) << detail;
    detail = problem(request("PUT", doc_path("catalog"),
                             json::serialize(json::object{{"yaml", "page: 50\n  cache: 5s\n"}}), writer_),
                     400);
    EXPECT_TRUE(detail.starts_with("yaml:2: ")) << detail;
    detail = problem(request("PUT", doc_path("catalog"), R"({"yaml":"page: 1\npage: 2\n"})", writer_), 400);
    EXPECT_TRUE(detail.starts_with("yaml:2: page: ")) << detail;  // a duplicate key
    detail = problem(request("PUT", doc_path("catalog"), R"({"yaml":"- a\n- b\n"})", writer_), 400);
    EXPECT_TRUE(contains(detail, "map")) << detail;
    detail = problem(request("PUT", doc_path("catalog"), R"({"yaml":"a: 1\n---\nb: 2\n"})", writer_), 400);
    EXPECT_TRUE(contains(detail, "yaml:")) << detail;
    EXPECT_EQ(revision(), v1);
}

TEST_F(ConfigApiTest, PatchSetsAndRemovesProperties) {
    put("catalog", "", R"({"db":{"pool":4,"url":"x"},"page":20})");
    auto res = request(
        "PATCH", doc_path("catalog"),
        R"({"set":{"db.pool":8,"db.url":null,"feature.new":true,"hosts":["a"]},"message":"tune"})", writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(str(body_of(res).at("message")), "tune");
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", reader_)).at("config"),
              json::value(obj(R"({"db":{"pool":8},"page":20,"feature":{"new":true},"hosts":["a"]})")));
    // Removing what is not there is no error; a part on the way that is a value is.
    EXPECT_EQ(request("PATCH", doc_path("catalog"), R"({"set":{"nothing.here":null}})", writer_).status, 200);
    auto before = revision();
    auto detail = problem(request("PATCH", doc_path("catalog"), R"({"set":{"page.size":5}})", writer_), 400);
    EXPECT_TRUE(contains(detail, "page")) << detail;
    problem(request("PATCH", doc_path("catalog"), R"({"set":{"a..b":5}})", writer_), 400);
    EXPECT_EQ(revision(), before);
    // A patch to a document never written starts from nothing.
    ASSERT_EQ(request("PATCH", doc_path("catalog", "prod"), R"({"set":{"page":30}})", writer_).status, 200);
    EXPECT_EQ(body_of(get(doc_path("catalog", "prod"), writer_)).at("content"),
              json::value(obj(R"({"page":30})")));
}

TEST_F(ConfigApiTest, AChangeBasedOnAStaleVersionIsAConflict) {
    auto v1 = put("catalog", "", R"({"page":20})");
    auto ok =
        request("PUT", doc_path("catalog"),
                json::serialize(json::object{{"content", obj(R"({"page":30})")}, {"expected", v1}}), writer_);
    ASSERT_EQ(ok.status, 200) << ok.body;
    auto v2 = version_of(ok);
    auto stale = json::serialize(json::object{{"content", obj(R"({"page":40})")}, {"expected", v1}});
    auto detail = problem(request("PUT", doc_path("catalog"), stale, writer_), 409);
    EXPECT_TRUE(contains(detail, std::to_string(v2))) << detail;
    problem(request("PATCH", doc_path("catalog"),
                    json::serialize(json::object{{"set", obj(R"({"page":40})")}, {"expected", v1}}), writer_),
            409);
    // expected 0: the document must not exist yet.
    problem(request("PUT", doc_path("catalog"), R"({"content":{"a":1},"expected":0})", writer_), 409);
    EXPECT_EQ(
        request("PUT", doc_path("catalog", "prod"), R"({"content":{"a":1},"expected":0})", writer_).status,
        200);
    problem(request("DELETE", doc_path("catalog") + "?expected=" + std::to_string(v1), "", writer_), 409);
    EXPECT_EQ(body_of(get(doc_path("catalog"), writer_)).at("content"), json::value(obj(R"({"page":30})")));
    auto removed = request("DELETE", doc_path("catalog") + "?expected=" + std::to_string(v2), "", writer_);
    EXPECT_EQ(removed.status, 200) << removed.body;
}

TEST_F(ConfigApiTest, DeleteRemovesTheDocumentFromWhatIsServed) {
    put("application", "", R"({"log":"info"})");
    auto v1 = put("catalog", "", R"({"page":20})");
    auto res = request("DELETE", doc_path("catalog") + "?message=retired", "", writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    auto record = body_of(res);
    EXPECT_EQ(str(record.at("kind")), "remove");
    EXPECT_EQ(str(record.at("message")), "retired");
    EXPECT_GT(version_of(res), v1);
    auto view = get("/v1/config/catalog/default", reader_);
    EXPECT_EQ(body_of(view).at("config"), json::value(obj(R"({"log":"info"})")));
    EXPECT_EQ(header_version(view), version_of(res));  // a watcher learns of the deletion
    EXPECT_EQ(source_names(body_of(get("/catalog/default", reader_))),
              std::vector<std::string>{"plexus:application"});
    problem(request("DELETE", doc_path("catalog"), "", writer_), 404);  // already gone
    problem(request("DELETE", doc_path("catalog", "never"), "", writer_), 404);
    // Its history stays.
    EXPECT_EQ(body_of(get(doc_path("catalog") + "/history", reader_)).at("versions").as_array().size(), 2u);
}

TEST_F(ConfigApiTest, HistoryListsVersionsNewestFirstInPages) {
    std::vector<std::int64_t> versions;
    for (int i = 1; i <= 5; ++i)
        versions.push_back(
            put("catalog", "", "{\"page\":" + std::to_string(i) + "}", "change " + std::to_string(i)));
    put("catalog", "prod", R"({"page":99})");  // another document's version is not in this history

    auto first = body_of(get(doc_path("catalog") + "/history?limit=2", reader_));
    EXPECT_EQ(str(first.at("application")), "catalog");
    EXPECT_EQ(str(first.at("profile")), "");
    auto page = first.at("versions").as_array();
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[0].as_object().at("version").to_number<std::int64_t>(), versions[4]);
    EXPECT_EQ(page[1].as_object().at("version").to_number<std::int64_t>(), versions[3]);
    EXPECT_EQ(str(page[0].as_object().at("message")), "change 5");
    EXPECT_EQ(str(page[0].as_object().at("author")), "alice");
    EXPECT_EQ(str(page[0].as_object().at("kind")), "set");
    EXPECT_FALSE(str(page[0].as_object().at("time")).empty());
    EXPECT_FALSE(page[0].as_object().contains("content"));
    ASSERT_TRUE(first.contains("next_before")) << json::serialize(first);
    EXPECT_EQ(first.at("next_before").to_number<std::int64_t>(), versions[3]);

    std::vector<std::int64_t> seen;
    std::string target = doc_path("catalog") + "/history?limit=2";
    for (int pages = 0; pages < 10; ++pages) {
        auto body = body_of(get(target, reader_));
        for (const auto& v : body.at("versions").as_array())
            seen.push_back(v.as_object().at("version").to_number<std::int64_t>());
        if (!body.contains("next_before")) break;
        target = doc_path("catalog") + "/history?limit=2&before=" +
                 std::to_string(body.at("next_before").to_number<std::int64_t>());
    }
    EXPECT_EQ(seen,
              (std::vector<std::int64_t>{versions[4], versions[3], versions[2], versions[1], versions[0]}));

    auto all = body_of(get(doc_path("catalog") + "/history", reader_));
    EXPECT_EQ(all.at("versions").as_array().size(), 5u);
    EXPECT_FALSE(all.contains("next_before"));
    auto prod = body_of(get(doc_path("catalog", "prod") + "/history", reader_));
    EXPECT_EQ(prod.at("versions").as_array().size(), 1u);
    EXPECT_TRUE(body_of(get(doc_path("orders") + "/history", admin_)).at("versions").as_array().empty());
}

TEST_F(ConfigApiTest, DiffSaysWhatChangedPropertyByProperty) {
    auto v1 = put("catalog", "", R"({"page":10,"cache":"5s","db":{"url":"x"}})");
    auto v2 = put("catalog", "", R"({"page":50,"retries":3,"db":{"url":"x"}})");
    auto latest = body_of(get(doc_path("catalog") + "/diff", reader_));
    EXPECT_EQ(str(latest.at("application")), "catalog");
    auto changes = latest.at("changes").as_array();
    ASSERT_EQ(changes.size(), 3u) << json::serialize(latest);
    EXPECT_EQ(changes[0].as_object(), obj(R"({"key":"cache","op":"removed","from":"5s"})"));
    EXPECT_EQ(changes[1].as_object(), obj(R"({"key":"page","op":"changed","from":10,"to":50})"));
    EXPECT_EQ(changes[2].as_object(), obj(R"({"key":"retries","op":"added","to":3})"));
    // Explicit versions, either way round.
    auto back = body_of(
        get(doc_path("catalog") + "/diff?from=" + std::to_string(v2) + "&to=" + std::to_string(v1), reader_));
    EXPECT_EQ(back.at("changes").as_array()[0].as_object(), obj(R"({"key":"cache","op":"added","to":"5s"})"));
    EXPECT_TRUE(
        body_of(get(doc_path("catalog") + "/diff?from=" + std::to_string(v2) + "&to=" + std::to_string(v2),
                    reader_))
            .at("changes")
            .as_array()
            .empty());
    // The first version against nothing.
    auto first = body_of(get(doc_path("catalog") + "/diff?to=" + std::to_string(v1), reader_));
    EXPECT_EQ(first.at("changes").as_array().size(), 3u);
    problem(get(doc_path("catalog") + "/diff?from=9999", reader_), 404);
    problem(get(doc_path("orders") + "/diff", admin_), 404);
}

TEST_F(ConfigApiTest, RollbackWritesAnEarlierVersionsContentAsANewVersion) {
    auto v1 = put("catalog", "", R"({"page":10})");
    auto v2 = put("catalog", "", R"({"page":50})");
    auto res = request("POST", doc_path("catalog") + "/rollback",
                       json::serialize(json::object{{"version", v1}, {"message", "too big"}}), writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    auto record = body_of(res);
    EXPECT_EQ(str(record.at("kind")), "rollback");
    EXPECT_EQ(record.at("source").to_number<std::int64_t>(), v1);
    EXPECT_EQ(str(record.at("message")), "too big");
    EXPECT_EQ(str(record.at("author")), "bob");
    EXPECT_GT(version_of(res), v2);
    auto view = get("/v1/config/catalog/default", reader_);
    EXPECT_EQ(body_of(view).at("config"), json::value(obj(R"({"page":10})")));
    EXPECT_EQ(header_version(view), version_of(res));
    EXPECT_EQ(body_of(get(doc_path("catalog") + "/history", reader_)).at("versions").as_array().size(), 3u);
    // Without a message it says what it did.
    auto again = request("POST", doc_path("catalog") + "/rollback",
                         json::serialize(json::object{{"version", v2}}), writer_);
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_TRUE(contains(str(body_of(again).at("message")), std::to_string(v2)));
    auto before = revision();
    problem(request("POST", doc_path("catalog") + "/rollback", R"({"version":9999})", writer_), 404);
    problem(request("POST", doc_path("catalog") + "/rollback", R"({"message":"where to?"})", writer_), 400);
    EXPECT_EQ(revision(), before);
}

TEST_F(ConfigApiTest, RollingBackToAnAbortRestoresTheContentItReturnedToAndToARemoveDeletes) {
    put("catalog", "", R"({"page":10})");
    auto stable = put("catalog", "", R"({"page":20})");
    auto canary = request("POST", doc_path("catalog") + "/canary",
                          R"({"set":{"page":30},"instances":["i1"]})", writer_);
    ASSERT_EQ(canary.status, 201) << canary.body;
    auto aborted = request("DELETE", doc_path("catalog") + "/canary", "", writer_);
    ASSERT_EQ(aborted.status, 200) << aborted.body;
    put("catalog", "", R"({"page":40})");

    auto res = request("POST", doc_path("catalog") + "/rollback",
                       json::serialize(json::object{{"version", version_of(aborted)}}), writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(str(body_of(res).at("kind")), "rollback");
    EXPECT_EQ(body_of(get("/v1/config/catalog/default?instance=i1", reader_)).at("config"),
              json::value(obj(R"({"page":20})")));
    EXPECT_EQ(body_of(get(doc_path("catalog"), writer_)).at("content"), json::value(obj(R"({"page":20})")));
    // To a canary's version: the content it offered, now for everyone.
    res = request("POST", doc_path("catalog") + "/rollback",
                  json::serialize(json::object{{"version", version_of(canary)}}), writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(body_of(get("/v1/config/catalog/default?instance=i2", reader_)).at("config"),
              json::value(obj(R"({"page":30})")));

    // To a remove's version: deleted again.
    auto removed = request("DELETE", doc_path("catalog"), "", writer_);
    ASSERT_EQ(removed.status, 200) << removed.body;
    ASSERT_EQ(request("POST", doc_path("catalog") + "/rollback",
                      json::serialize(json::object{{"version", stable}}), writer_)
                  .status,
              200);
    res = request("POST", doc_path("catalog") + "/rollback",
                  json::serialize(json::object{{"version", version_of(removed)}}), writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(str(body_of(res).at("kind")), "remove");
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", reader_)).at("config"), json::value(json::object()));
}

TEST_F(ConfigApiTest, LabelsArePutListedAndDeleted) {
    auto v1 = put("catalog", "", R"({"page":10})");
    put("catalog", "", R"({"page":20})");
    ASSERT_EQ(request("PUT", "/v1/labels/release-1",
                      json::serialize(json::object{{"revision", v1}, {"message", "r1"}}), admin_)
                  .status,
              204);
    ASSERT_EQ(request("PUT", "/v1/labels/latest", "", admin_).status, 204);  // the current revision
    auto labels = body_of(get("/v1/labels", reader_)).at("labels").as_array();
    ASSERT_EQ(labels.size(), 2u) << json::serialize(labels);
    auto latest = labels[0].as_object(), release = labels[1].as_object();  // by name
    EXPECT_EQ(str(latest.at("name")), "latest");
    EXPECT_EQ(latest.at("revision").to_number<std::int64_t>(), revision());
    EXPECT_EQ(str(release.at("name")), "release-1");
    EXPECT_EQ(release.at("revision").to_number<std::int64_t>(), v1);
    EXPECT_EQ(str(release.at("author")), "alice");
    EXPECT_EQ(str(release.at("message")), "r1");
    EXPECT_EQ(source(body_of(get("/catalog/default/release-1", reader_)), "plexus:catalog"),
              obj(R"({"page":10})"));
    // Moving a label.
    ASSERT_EQ(request("PUT", "/v1/labels/release-1", "", admin_).status, 204);
    EXPECT_EQ(source(body_of(get("/catalog/default/release-1", reader_)), "plexus:catalog"),
              obj(R"({"page":20})"));

    EXPECT_TRUE(contains(problem(request("PUT", "/v1/labels/42", "", admin_), 400), "number"));
    problem(request("PUT", "/v1/labels/future", R"({"revision":9999})", admin_), 400);
    problem(request("PUT", "/v1/labels/-bad", "", admin_), 400);
    ASSERT_EQ(request("DELETE", "/v1/labels/release-1", "", admin_).status, 204);
    problem(request("DELETE", "/v1/labels/release-1", "", admin_), 404);
    problem(get("/catalog/default/release-1", reader_), 404);
    EXPECT_EQ(body_of(get("/v1/labels", reader_)).at("labels").as_array().size(), 1u);
}

TEST_F(ConfigApiTest, SchemasArePublishedAndAWriteTheyRefuseChangesNothing) {
    auto good = put("catalog", "", R"({"page":20,"cache":"5s"})");
    auto schema = R"({"type":"object","additionalProperties":false,
        "properties":{"page":{"type":"integer","minimum":1,"maximum":500},
                      "cache":{"type":"string","format":"duration"},"log":{"type":"string"}}})";
    // An application's own instances publish its schema (reading is enough).
    auto res = request("PUT", "/v1/schemas/catalog", schema, reader_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(body_of(res), obj(R"({"application":"catalog","problems":[]})"));
    auto published = get("/v1/schemas/catalog", reader_);
    ASSERT_EQ(published.status, 200) << published.body;
    EXPECT_EQ(json::parse(published.body), json::parse(schema));
    problem(get("/v1/schemas/inventory", admin_), 404);

    auto detail = problem(request("PATCH", doc_path("catalog"), R"({"set":{"page":9000}})", writer_), 400);
    EXPECT_TRUE(contains(detail, "page")) << detail;
    detail =
        problem(request("PUT", doc_path("catalog", "prod"), R"({"content":{"cache":"soon"}})", writer_), 400);
    EXPECT_TRUE(contains(detail, "cache")) << detail;
    // The shared layer is checked for every application's sake.
    detail = problem(request("PUT", doc_path("application"), R"({"content":{"typo":1}})", admin_), 400);
    EXPECT_TRUE(contains(detail, "typo")) << detail;
    EXPECT_EQ(version_of(get(doc_path("catalog"), reader_)), good);
    EXPECT_EQ(revision(), good);
    EXPECT_EQ(body_of(get("/v1/config/catalog/prod", reader_)).at("config"),
              json::value(obj(R"({"page":20,"cache":"5s"})")));
    // What the schema allows goes through.
    EXPECT_EQ(request("PATCH", doc_path("catalog"), R"({"set":{"page":400}})", writer_).status, 200);

    // A schema the current settings fail is kept, and the publisher told why.
    res = request("PUT", "/v1/schemas/catalog", R"({"type":"object","required":["db"]})", reader_);
    ASSERT_EQ(res.status, 200) << res.body;
    auto problems = body_of(res).at("problems").as_array();
    ASSERT_EQ(problems.size(), 1u) << res.body;
    EXPECT_TRUE(contains(str(problems[0]), "db")) << res.body;
    // Every instance publishes the schema at start: the next one is told too.
    auto again =
        request("PUT", "/v1/schemas/catalog", R"({"type":"object","required":["db"]})", service_token_);
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(body_of(again).at("problems"), json::value(problems)) << again.body;
    // A malformed schema is refused and the published one stays.
    problem(request("PUT", "/v1/schemas/catalog", R"({"type":"thing"})", reader_), 400);
    problem(request("PUT", "/v1/schemas/catalog", "not json", reader_), 400);
    EXPECT_EQ(json::parse(get("/v1/schemas/catalog", reader_).body),
              json::parse(R"({"type":"object","required":["db"]})"));
}

// ---------------------------------------------------------------- secrets

TEST_F(ConfigApiTest, SecretsAreDecryptedOnlyForCallersWithTheSecretsScope) {
    put("application", "", R"({"shared":{"token":"{cipher}shared-token"}})");
    put("catalog", "", R"({"db":{"user":"app","password":"{cipher}hunter2"}})");

    auto service_view = get("/v1/config/catalog/default", service_token_);
    ASSERT_EQ(service_view.status, 200) << service_view.body;
    auto config = body_of(service_view).at("config").as_object();
    EXPECT_EQ(config.at("db").at("password"), json::value("hunter2"));
    EXPECT_EQ(config.at("shared").at("token"), json::value("shared-token"));
    auto spring = body_of(get("/catalog/default", service_token_));
    EXPECT_EQ(source(spring, "plexus:catalog").at("db.password"), json::value("hunter2"));

    for (const auto* who : {&reader_, &writer_}) {  // writing is not reading secrets
        auto masked = get("/v1/config/catalog/default", *who);
        ASSERT_EQ(masked.status, 200) << masked.body;
        EXPECT_FALSE(contains(masked.body, "hunter2")) << masked.body;
        EXPECT_FALSE(contains(masked.body, "a1:")) << masked.body;
        auto c = body_of(masked).at("config").as_object();
        EXPECT_EQ(c.at("db").at("password"), json::value(config::kMasked));
        EXPECT_EQ(c.at("db").at("user"), json::value("app"));
        auto s = get("/catalog/default", *who);
        EXPECT_FALSE(contains(s.body, "hunter2")) << s.body;
        EXPECT_EQ(source(body_of(s), "plexus:catalog").at("db.password"), json::value(config::kMasked));
        auto yaml = get("/v1/config/catalog/default?format=yaml", *who);
        EXPECT_FALSE(contains(yaml.body, "hunter2")) << yaml.body;
    }
    // Secrets of one application only.
    auto other = token("config:read config:secrets:inventory", "shop-inventory");
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", other)).at("config").at("db").at("password"),
              json::value(config::kMasked));
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", admin_)).at("config").at("db").at("password"),
              json::value("hunter2"));
}

TEST_F(ConfigApiTest, StoredDocumentsShowCiphertextOnlyToWriters) {
    put("catalog", "", R"({"db":{"password":"{cipher}hunter2"}})");
    auto stored = get(doc_path("catalog"), writer_);
    ASSERT_EQ(stored.status, 200) << stored.body;
    EXPECT_FALSE(contains(stored.body, "hunter2")) << stored.body;
    auto content = body_of(stored).at("content").as_object();
    auto ciphertext = str(content.at("db").at("password"));
    EXPECT_TRUE(ciphertext.starts_with("{cipher}a1:")) << ciphertext;
    for (const auto* who : {&reader_, &service_token_}) {
        auto masked = get(doc_path("catalog"), *who);
        ASSERT_EQ(masked.status, 200) << masked.body;
        EXPECT_FALSE(contains(masked.body, "hunter2")) << masked.body;
        EXPECT_FALSE(contains(masked.body, "a1:")) << masked.body;
        EXPECT_EQ(body_of(masked).at("content").at("db").at("password"), json::value(config::kMasked));
    }
    // The stored form written back as read keeps the secret.
    content["page"] = 20;
    auto back =
        request("PUT", doc_path("catalog"), json::serialize(json::object{{"content", content}}), writer_);
    ASSERT_EQ(back.status, 200) << back.body;
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", service_token_)).at("config"),
              json::value(obj(R"({"db":{"password":"hunter2"},"page":20})")));
    // A ciphertext bound to catalog does not decrypt in another application's document.
    auto detail = problem(
        request("PUT", doc_path("inventory"),
                json::serialize(json::object{{"content", json::object{{"password", ciphertext}}}}), admin_),
        400);
    EXPECT_TRUE(contains(detail, "password")) << detail;
    EXPECT_FALSE(contains(detail, ciphertext.substr(11))) << detail;
}

TEST_F(ConfigApiTest, ThePlaintextOfASecretNeverAppearsInHistoryDiffOrDocuments) {
    auto v1 = put("catalog", "", R"({"db":{"password":"{cipher}hunter2"},"page":1})");
    auto v2 = request("PATCH", doc_path("catalog"), R"({"set":{"db.password":"{cipher}swordfish","page":2}})",
                      writer_);
    ASSERT_EQ(v2.status, 200) << v2.body;
    auto v3 = request("PATCH", doc_path("catalog"),
                      R"({"set":{"db.password":null,"api.key":"{cipher}opensesame"}})", writer_);
    ASSERT_EQ(v3.status, 200) << v3.body;
    const std::string secrets[] = {"hunter2", "swordfish", "opensesame"};
    auto leaks = [&](const std::string& body) {
        for (const auto& s : secrets)
            if (contains(body, s)) return true;
        return false;
    };
    auto diff = get(
        doc_path("catalog") + "/diff?from=" + std::to_string(v1) + "&to=" + std::to_string(version_of(v2)),
        admin_);
    ASSERT_EQ(diff.status, 200) << diff.body;
    EXPECT_FALSE(leaks(diff.body)) << diff.body;
    EXPECT_FALSE(contains(diff.body, "a1:")) << diff.body;
    auto changes = body_of(diff).at("changes").as_array();
    ASSERT_EQ(changes.size(), 2u) << diff.body;
    EXPECT_EQ(changes[0].as_object(),
              obj(R"({"key":"db.password","op":"changed","from":"******","to":"******"})"));
    auto latest = get(doc_path("catalog") + "/diff", admin_);
    EXPECT_FALSE(leaks(latest.body)) << latest.body;
    EXPECT_FALSE(contains(latest.body, "a1:")) << latest.body;
    auto latest_changes = body_of(latest).at("changes").as_array();
    EXPECT_EQ(latest_changes.size(), 3u) << latest.body;  // api.key and db ({}) added, db.password removed
    for (const auto& c : latest_changes) {
        const auto& change = c.as_object();
        if (change.at("key") == "api.key") EXPECT_EQ(change.at("to"), json::value(config::kMasked));
        if (change.at("key") == "db.password") EXPECT_EQ(change.at("from"), json::value(config::kMasked));
    }
    for (const auto* who : {&admin_, &writer_, &reader_, &service_token_}) {
        auto history = get(doc_path("catalog") + "/history", *who);
        ASSERT_EQ(history.status, 200) << history.body;
        EXPECT_FALSE(leaks(history.body)) << history.body;
        for (auto v : {v1, version_of(v2), version_of(v3)}) {
            auto doc = get(doc_path("catalog") + "?version=" + std::to_string(v), *who);
            ASSERT_EQ(doc.status, 200) << doc.body;
            EXPECT_FALSE(leaks(doc.body)) << doc.body;
        }
        auto list = get("/v1/documents", *who);
        EXPECT_FALSE(leaks(list.body)) << list.body;
    }
    // The answers to the writes themselves.
    EXPECT_FALSE(leaks(v2.body)) << v2.body;
    EXPECT_FALSE(leaks(v3.body)) << v3.body;
}

TEST_F(ConfigApiTest, EncryptAnswersACiphertextForThatApplication) {
    auto res = request("POST", "/v1/encrypt/catalog", "s3cret value", writer_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_TRUE(header(res, "Content-Type").starts_with("text/plain")) << header(res, "Content-Type");
    EXPECT_TRUE(res.body.starts_with("{cipher}a1:")) << res.body;
    EXPECT_FALSE(contains(res.body, "s3cret")) << res.body;
    auto again = request("POST", "/v1/encrypt/catalog", "s3cret value", writer_);
    EXPECT_NE(again.body, res.body);  // a fresh nonce each time

    ASSERT_EQ(request("PUT", doc_path("catalog"),
                      json::serialize(
                          json::object{{"content", json::object{{"api", json::object{{"key", res.body}}}}}}),
                      writer_)
                  .status,
              200);
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", service_token_)).at("config").at("api").at("key"),
              json::value("s3cret value"));
    problem(request("PUT", doc_path("inventory"),
                    json::serialize(json::object{{"content", json::object{{"key", res.body}}}}), admin_),
            400);
    problem(request("POST", "/v1/encrypt/catalog", "x", reader_), 403);
    problem(request("POST", "/v1/encrypt/v1", "x", admin_), 400);
    // Text in the form of a ciphertext is taken for one, and this one does not decrypt.
    problem(request("POST", "/v1/encrypt/catalog", "a1:not-a-ciphertext", writer_), 400);
}

// ---------------------------------------------------------------- the watch

TEST_F(ConfigApiTest, AWatchAnswersWhenTheConfigurationChanges) {
    auto v1 = put("catalog", "prod", R"({"page":20})");
    auto watch = start("GET", "/v1/config/catalog/prod?instance=i1&version=" + std::to_string(v1) + kLongWait,
                       {}, reader_);
    await_watchers(1);
    EXPECT_EQ(watch.wait_for(0s), std::future_status::timeout);  // nothing changed yet
    auto v2 = put("catalog", "prod", R"({"page":30})");
    auto res = answer(watch);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(header_version(res), v2);
    EXPECT_EQ(version_of(res), v2);
    EXPECT_EQ(body_of(res).at("config"), json::value(obj(R"({"page":30})")));
    EXPECT_EQ(body_of(res).at("canary"), json::value(false));
    EXPECT_EQ(header(res, "Cache-Control"), "no-store");
    EXPECT_TRUE(wait_until([&] { return watchers() == 0; }));

    // A change to a layer below (the shared one) wakes it too; one to another application does not.
    auto watch2 = start(
        "GET", "/v1/config/catalog/prod?instance=i1&version=" + std::to_string(v2) + kLongWait, {}, reader_);
    await_watchers(1);
    put("inventory", "", R"({"stock":1})");
    put("catalog", "eu", R"({"region":"eu"})");
    auto v3 = put("application", "", R"({"log":"info"})");
    auto res2 = answer(watch2);
    EXPECT_EQ(header_version(res2), v3);
    EXPECT_EQ(body_of(res2).at("config"), json::value(obj(R"({"log":"info","page":30})")));
}

TEST_F(ConfigApiTest, AWatchWithAStaleVersionAnswersAtOnce) {
    auto v1 = put("catalog", "", R"({"page":20})");
    auto v2 = put("catalog", "", R"({"page":30})");
    for (auto known : {std::int64_t{0}, v1, v2 + 100}) {  // anything but the current version
        auto res = get("/v1/config/catalog/default?instance=i1&version=" + std::to_string(known) + kLongWait,
                       reader_);
        ASSERT_EQ(res.status, 200) << res.body;
        EXPECT_EQ(header_version(res), v2);
        EXPECT_EQ(version_of(res), v2);
    }
}

TEST_F(ConfigApiTest, AWatchAnswersUnchangedWhenItsWaitEnds) {
    auto v1 = put("catalog", "", R"({"page":20})");
    auto res =
        get("/v1/config/catalog/default?instance=i1&version=" + std::to_string(v1) + "&wait=200ms", reader_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(header_version(res), v1);
    EXPECT_EQ(body_of(res).at("config"), json::value(obj(R"({"page":20})")));
    EXPECT_EQ(watchers(), 0);
    // An application nobody wrote has version 0: a watch for it waits too.
    auto none = get("/v1/config/orders/default?version=0&wait=100ms", admin_);
    EXPECT_EQ(header_version(none), 0);
    EXPECT_EQ(body_of(none).at("config"), json::value(json::object()));
}

TEST_F(ConfigApiTest, StopWatchesAnswersEveryPendingWatchAtOnce) {
    auto v1 = put("catalog", "", R"({"page":20})");
    auto target = "/v1/config/catalog/default?version=" + std::to_string(v1) + kLongWait;
    auto first = start("GET", target + "&instance=i1", {}, reader_);
    auto second = start("GET", target + "&instance=i2", {}, reader_, 1);
    await_watchers(2);
    api_->stop_watches();
    for (auto* watch : {&first, &second}) {
        auto res = answer(*watch);
        ASSERT_EQ(res.status, 200) << res.body;
        EXPECT_EQ(header_version(res), v1);  // unchanged: answered because the server stops
    }
    // A watch that comes later does not wait either.
    EXPECT_EQ(header_version(get(target, reader_)), v1);
    EXPECT_TRUE(wait_until([&] { return watchers() == 0; }));
}

TEST_F(ConfigApiTest, ACanaryWakesOnlyItsInstancesWatchAndAnAbortWakesItAgain) {
    auto stable = put("catalog", "", R"({"page":20})");
    auto base = "/v1/config/catalog/default?version=" + std::to_string(stable);
    auto i1 = start("GET", base + "&instance=i1" + kLongWait, {}, service_token_);
    auto i2 = start("GET", base + "&instance=i2&wait=500ms", {}, service_token_, 1);
    await_watchers(2);
    auto canary = request("POST", doc_path("catalog") + "/canary",
                          R"({"set":{"page":30},"instances":["i1"],"message":"try 30"})", writer_);
    ASSERT_EQ(canary.status, 201) << canary.body;
    auto record = body_of(canary);
    EXPECT_EQ(str(record.at("kind")), "canary");
    EXPECT_EQ(record.at("instances"), json::value(json::array{"i1"}));
    EXPECT_EQ(record.at("percent").to_number<int>(), 0);
    auto canary_version = version_of(canary);

    auto woken = answer(i1);
    ASSERT_EQ(woken.status, 200) << woken.body;
    EXPECT_EQ(header_version(woken), canary_version);
    EXPECT_EQ(body_of(woken).at("canary"), json::value(true));
    EXPECT_EQ(body_of(woken).at("config"), json::value(obj(R"({"page":30})")));
    auto unchanged = answer(i2);  // after its own wait: the canary is not for i2
    ASSERT_EQ(unchanged.status, 200) << unchanged.body;
    EXPECT_EQ(header_version(unchanged), stable);
    EXPECT_EQ(body_of(unchanged).at("canary"), json::value(false));
    EXPECT_EQ(body_of(unchanged).at("config"), json::value(obj(R"({"page":20})")));
    // Readers without an instance id get the stable content; the listing shows the canary.
    EXPECT_EQ(header_version(get("/v1/config/catalog/default", reader_)), stable);
    auto listed = body_of(get("/v1/documents", reader_)).at("documents").as_array()[0].as_object();
    EXPECT_EQ(listed.at("canary").at("version").to_number<std::int64_t>(), canary_version);
    EXPECT_EQ(listed.at("version").to_number<std::int64_t>(), stable);
    // Nothing else changes the document while the canary is out.
    problem(request("PUT", doc_path("catalog"), R"({"content":{"page":1}})", writer_), 409);
    problem(
        request("POST", doc_path("catalog") + "/canary", R"({"set":{"page":1},"instances":["i2"]})", writer_),
        409);
    problem(request("DELETE", doc_path("catalog"), "", writer_), 409);

    auto back = start(
        "GET", "/v1/config/catalog/default?instance=i1&version=" + std::to_string(canary_version) + kLongWait,
        {}, service_token_);
    await_watchers(1);
    auto aborted = request("DELETE", doc_path("catalog") + "/canary?message=too+slow", "", writer_);
    ASSERT_EQ(aborted.status, 200) << aborted.body;
    EXPECT_EQ(str(body_of(aborted).at("kind")), "abort");
    EXPECT_EQ(body_of(aborted).at("source").to_number<std::int64_t>(), canary_version);
    auto returned = answer(back);
    ASSERT_EQ(returned.status, 200) << returned.body;
    EXPECT_EQ(header_version(returned), stable);
    EXPECT_EQ(body_of(returned).at("canary"), json::value(false));
    EXPECT_EQ(body_of(returned).at("config"), json::value(obj(R"({"page":20})")));
    problem(request("POST", doc_path("catalog") + "/promote", "", writer_), 404);
    problem(request("DELETE", doc_path("catalog") + "/canary", "", writer_), 404);
}

TEST_F(ConfigApiTest, APromotedCanaryReachesEveryInstance) {
    auto stable = put("catalog", "", R"({"page":20})");
    auto canary = request("POST", doc_path("catalog") + "/canary",
                          R"({"set":{"page":40},"instances":["i1"]})", writer_);
    ASSERT_EQ(canary.status, 201) << canary.body;
    auto watch =
        start("GET", "/v1/config/catalog/default?instance=i2&version=" + std::to_string(stable) + kLongWait,
              {}, reader_);
    await_watchers(1);
    auto promoted = request("POST", doc_path("catalog") + "/promote", R"({"message":"good"})", writer_);
    ASSERT_EQ(promoted.status, 200) << promoted.body;
    EXPECT_EQ(str(body_of(promoted).at("kind")), "promote");
    EXPECT_EQ(body_of(promoted).at("source").to_number<std::int64_t>(), version_of(canary));
    auto res = answer(watch);
    EXPECT_EQ(header_version(res), version_of(promoted));
    EXPECT_EQ(body_of(res).at("config"), json::value(obj(R"({"page":40})")));
    EXPECT_FALSE(
        body_of(get("/v1/documents", reader_)).at("documents").as_array()[0].as_object().contains("canary"));
    // A canary needs someone to reach.
    problem(request("POST", doc_path("catalog") + "/canary", R"({"set":{"page":1}})", writer_), 400);
    problem(
        request("POST", doc_path("catalog") + "/canary", R"({"set":{"page":1},"instances":"i1"})", writer_),
        400);
    problem(request("POST", doc_path("catalog") + "/canary", R"({"set":{"page":1},"percent":101})", writer_),
            400);
}

TEST_F(ConfigApiTest, FormatYamlAnswersTheMergedDocumentAsYaml) {
    put("application", "", R"({"log":{"level":"info"}})");
    auto v = put("catalog", "prod", R"({"page":20,"hosts":["a","b"],"name":"catalog: main"})");
    auto res = get("/v1/config/catalog/prod?format=yaml", reader_);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_TRUE(header(res, "Content-Type").starts_with("application/yaml")) << header(res, "Content-Type");
    EXPECT_EQ(header_version(res), v);
    EXPECT_EQ(
        core::yaml_to_json(res.body, "answer"),
        json::value(obj(R"({"log":{"level":"info"},"page":20,"hosts":["a","b"],"name":"catalog: main"})")));
    // A watch in YAML.
    auto watched =
        get("/v1/config/catalog/prod?format=yaml&version=" + std::to_string(v - 1) + kLongWait, reader_);
    EXPECT_EQ(header_version(watched), v);
    EXPECT_EQ(watched.body, res.body);
    problem(get("/v1/config/catalog/prod?format=xml", reader_), 400);
}

// ---------------------------------------------------------------- instances

TEST_F(ConfigApiTest, InstancesReportWhatTheyRunAndAreListed) {
    auto v = put("catalog", "prod", R"({"page":20})");
    auto report = json::serialize(json::object{{"profiles", "prod"},
                                               {"offered", v},
                                               {"running", v - 1},
                                               {"applied", false},
                                               {"error", "page: must be at most 10"}});
    auto res = request("PUT", "/v1/instances/catalog/i1", report, service_token_);
    ASSERT_EQ(res.status, 204) << res.body;
    ASSERT_EQ(request("PUT", "/v1/instances/catalog/i2",
                      json::serialize(json::object{
                          {"profiles", "prod"}, {"offered", v}, {"running", v}, {"applied", true}}),
                      service_token_)
                  .status,
              204);
    // An instance that only asks is listed too, with the version it was sent.
    ASSERT_EQ(get("/v1/config/catalog/prod?instance=i3", service_token_).status, 200);

    auto listed = get("/v1/instances/catalog", reader_);
    ASSERT_EQ(listed.status, 200) << listed.body;
    auto body = body_of(listed);
    EXPECT_EQ(str(body.at("application")), "catalog");
    auto instances = body.at("instances").as_array();
    ASSERT_EQ(instances.size(), 3u) << listed.body;
    auto i1 = instances[0].as_object(), i2 = instances[1].as_object(), i3 = instances[2].as_object();
    EXPECT_EQ(str(i1.at("instance")), "i1");
    EXPECT_EQ(str(i1.at("profiles")), "prod");
    EXPECT_EQ(i1.at("offered").to_number<std::int64_t>(), v);
    EXPECT_EQ(i1.at("running").to_number<std::int64_t>(), v - 1);
    EXPECT_EQ(i1.at("applied"), json::value(false));
    EXPECT_EQ(str(i1.at("error")), "page: must be at most 10");
    EXPECT_TRUE(i1.contains("reported"));
    EXPECT_EQ(str(i2.at("instance")), "i2");
    EXPECT_EQ(i2.at("applied"), json::value(true));
    EXPECT_FALSE(i2.contains("error"));
    EXPECT_EQ(str(i3.at("instance")), "i3");
    EXPECT_EQ(i3.at("offered").to_number<std::int64_t>(), v);
    EXPECT_TRUE(body_of(get("/v1/instances/inventory", admin_)).at("instances").as_array().empty());

    problem(request("PUT", "/v1/instances/catalog/i4", R"({"offered":1})", service_token_),
            400);  // no applied
    problem(request("PUT", "/v1/instances/catalog/i4", R"({"applied":"yes"})", service_token_), 400);
    problem(request("PUT", "/v1/instances/catalog/i4", R"({"applied":true,"offered":-1})", service_token_),
            400);
    EXPECT_EQ(body_of(get("/v1/instances/catalog", reader_)).at("instances").as_array().size(), 3u);
}

// ---------------------------------------------------------------- malformed input

TEST_F(ConfigApiTest, MalformedBodiesAreRefusedAndChangeNothing) {
    auto v = put("catalog", "", R"({"page":20})");
    const std::pair<const char*, const char*> puts[] = {
        {"{", "JSON object"},
        {"", "JSON object"},
        {"[1,2]", "JSON object"},
        {"42", "JSON object"},
        {R"({"content":[1]})", "content"},
        {R"({"content":"page: 1"})", "content"},
        {R"({"content":null})", "content"},
        {"{}", "content"},
        {R"({"message":"nothing"})", "content"},
        {R"({"yaml":5})", "yaml"},
        {R"({"content":{},"expected":"3"})", "expected"},
        {R"({"content":{},"expected":-1})", "expected"},
        {R"({"content":{},"expected":1.5})", "expected"},
        {R"({"content":{},"message":5})", "message"},
    };
    for (const auto& [body, names] : puts) {
        auto detail = problem(request("PUT", doc_path("catalog"), body, writer_), 400);
        EXPECT_TRUE(contains(detail, names)) << body << ": " << detail;
    }
    const std::pair<const char*, const char*> patches[] = {
        {"{}", "set"},
        {R"({"set":5})", "set"},
        {R"({"set":[["a",1]]})", "set"},
        {R"({"set":{"":1}})", "key"},
    };
    for (const auto& [body, names] : patches) {
        auto detail = problem(request("PATCH", doc_path("catalog"), body, writer_), 400);
        EXPECT_TRUE(contains(detail, names)) << body << ": " << detail;
    }
    problem(request("POST", doc_path("catalog") + "/rollback", "{", writer_), 400);
    problem(request("POST", doc_path("catalog") + "/rollback", R"({"version":"1"})", writer_), 400);
    problem(request("POST", doc_path("catalog") + "/rollback", R"({"version":0})", writer_), 400);
    problem(request("POST", doc_path("catalog") + "/canary", "[]", writer_), 400);
    problem(request("POST", doc_path("catalog") + "/promote", "{", writer_), 400);
    problem(request("PUT", "/v1/labels/r1", "{", admin_), 400);
    problem(request("PUT", "/v1/labels/r1", R"({"revision":"latest"})", admin_), 400);
    problem(request("PUT", "/v1/schemas/catalog", "", reader_), 400);
    problem(request("PUT", "/v1/instances/catalog/i1", "nope", reader_), 400);
    problem(request("PUT", "/v1/instances/catalog/i1", R"({"applied":true,"profiles":7})", reader_), 400);
    problem(request("POST", "/v1/encrypt/catalog", std::string(70 * 1024, 'x'), writer_), 413);
    EXPECT_EQ(revision(), v);
    EXPECT_TRUE(body_of(get("/v1/labels", reader_)).at("labels").as_array().empty());
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", reader_)).at("config"),
              json::value(obj(R"({"page":20})")));
}

TEST_F(ConfigApiTest, BadNamesAreRefused) {
    for (const auto& target :
         {std::string("/v1/documents/-catalog"), std::string("/v1/documents/ca%20talog"),
          std::string("/v1/documents/v1"), std::string("/v1/documents/health"),
          doc_path("catalog", "pr%21od"), doc_path("catalog", "-prod"), doc_path(std::string(101, 'a'))}) {
        problem(request("PUT", target, R"({"content":{"a":1}})", admin_), 400);
        problem(get(target, admin_), 400);
    }
    problem(get("/-catalog/prod", admin_), 400);
    problem(get("/catalog/pr%21od", admin_), 400);
    problem(get("/v1/config/cat%2Falog/prod", admin_), 400);
    problem(get("/v1/config/catalog/pro%25d", admin_), 400);
    problem(get("/v1/schemas/-x", admin_), 400);
    problem(get("/v1/instances/v1", admin_), 400);
    problem(request("PUT", "/v1/schemas/metrics", R"({"type":"object"})", admin_), 400);
    problem(get("/health/live", admin_), 400);  // not served by the Api: a reserved application name
    problem(get("/v1/documents/cat%zzalog", admin_), 400);  // a malformed escape
    EXPECT_EQ(revision(), 0);
}

TEST_F(ConfigApiTest, WrongMethodsAnswer405WithAllow) {
    put("catalog", "", R"({"page":20})");
    struct Case {
        const char* method;
        std::string target;
        std::vector<const char*> allowed;
    };
    const Case cases[] = {
        {"POST", doc_path("catalog"), {"GET", "PUT", "PATCH", "DELETE"}},
        {"POST", doc_path("catalog", "prod"), {"GET", "PUT", "PATCH", "DELETE"}},
        {"PUT", "/v1/config/catalog/prod", {"GET"}},
        {"DELETE", "/catalog/prod", {"GET"}},
        {"POST", "/v1/labels/r1", {"PUT", "DELETE"}},
        {"PUT", doc_path("catalog") + "/history", {"GET"}},
        {"GET", doc_path("catalog") + "/rollback", {"POST"}},
        {"PATCH", doc_path("catalog") + "/canary", {"POST", "DELETE"}},
        {"DELETE", "/v1/schemas/catalog", {"GET", "PUT"}},
        {"POST", "/v1/instances/catalog/i1", {"PUT"}},
        {"PUT", "/v1/encrypt/catalog", {"POST"}},
    };
    for (const auto& c : cases) {
        auto res = request(c.method, c.target, "{}", admin_);
        problem(res, 405);
        auto allow = header(res, "Allow");
        for (const auto* m : c.allowed)
            EXPECT_TRUE(contains(allow, m)) << c.method << " " << c.target << ": " << allow;
        EXPECT_FALSE(contains(allow, c.method)) << c.method << " " << c.target << ": " << allow;
    }
    problem(get("/v1/config/catalog/prod/extra", admin_), 404);
    EXPECT_EQ(version_of(get(doc_path("catalog"), admin_)), revision());
}

TEST_F(ConfigApiTest, BadQueryParametersAreRefused) {
    put("catalog", "", R"({"page":20})");
    const std::string targets[] = {
        "/v1/config/catalog/default?version=abc",
        "/v1/config/catalog/default?version=-1",
        "/v1/config/catalog/default?version=1x",
        "/v1/config/catalog/default?version=",
        "/v1/config/catalog/default?version=1&wait=soon",
        "/v1/config/catalog/default?version=1&wait=-5s",
        "/v1/config/catalog/default?version=1&wait=",
        doc_path("catalog") + "/history?limit=x",
        doc_path("catalog") + "/history?limit=-1",
        doc_path("catalog") + "/history?before=ten",
        doc_path("catalog") + "/diff?from=x",
        doc_path("catalog") + "/diff?to=-2",
        doc_path("catalog") + "?version=latest",
    };
    for (const auto& target : targets) {
        auto detail = problem(get(target, admin_), 400);
        EXPECT_FALSE(detail.empty()) << target;
    }
    problem(request("DELETE", doc_path("catalog") + "?expected=x", "", admin_), 400);
    EXPECT_EQ(body_of(get("/v1/config/catalog/default", admin_)).at("config"),
              json::value(obj(R"({"page":20})")));
    EXPECT_EQ(watchers(), 0);
}

// ---------------------------------------------------------------- anonymous

TEST_F(AnonymousConfigApiTest, WithoutAVerifierEveryCallerMayDoEverythingAsAnonymous) {
    auto res =
        request("PUT", doc_path("application"), R"({"content":{"db":{"password":"{cipher}hunter2"}}})", "");
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(str(body_of(res).at("author")), "anonymous");
    ASSERT_EQ(request("PUT", doc_path("catalog", "prod"), R"({"content":{"page":20}})", "").status, 200);
    EXPECT_EQ(request("PUT", "/v1/labels/r1", "", "").status, 204);
    EXPECT_EQ(str(body_of(get("/v1/labels", "")).at("labels").as_array()[0].as_object().at("author")),
              "anonymous");
    auto view = body_of(get("/v1/config/catalog/prod", ""));
    EXPECT_EQ(view.at("config"), json::value(obj(R"({"db":{"password":"hunter2"},"page":20})")));
    auto stored = get(doc_path("application"), "");
    EXPECT_TRUE(contains(stored.body, "{cipher}a1:")) << stored.body;
    EXPECT_EQ(get("/catalog/prod/r1", "").status, 200);
    EXPECT_EQ(request("POST", "/v1/encrypt/catalog", "x", "").status, 200);
    EXPECT_EQ(request("PUT", "/v1/instances/catalog/i1", R"({"applied":true})", "").status, 204);
    // A token, even an invalid one, is not looked at.
    EXPECT_EQ(get("/v1/config/catalog/prod", "not.a.jwt").status, 200);
    EXPECT_EQ(body_of(get("/v1/documents", "")).at("documents").as_array().size(), 2u);
}
