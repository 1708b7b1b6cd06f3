#include "plexus/supervisor/manifest.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "plexus/core/settings.hpp"
#include "test_util.hpp"

using namespace plexus;
using namespace plexus::supervisor;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

constexpr std::string_view kShop = R"(name: shop
data_dir: .plexus
daemons:
  registry:
    command: ["{plexus}", "registry", "--listen", "127.0.0.1:{port}", "--data-dir", "{data_dir}/registry"]
    port: 0
    health: /health/ready
  gateway:
    command: ["{plexus}", "gateway", "--listen", "127.0.0.1:{port}", "--registry", "http://127.0.0.1:{port:registry}", "--routes", "{manifest_dir}/routes.yaml"]
    port: 8080
    health: /health/ready
services:
  catalog:
    command: ["{bin_dir}/shop-catalog"]
    replicas: 2
    env: {CATALOG_DB: "{data_dir}/catalog/catalog.db"}
  inventory:
    command: ["{bin_dir}/shop-inventory"]
    replicas: 1
restart:
  initial_backoff: 200ms
  max_backoff: 10s
  reset_after: 30s
stop_timeout: 10s
)";

Manifest parse(std::string_view yaml) { return parse_manifest(yaml, "shop.yaml", "/srv/shop"); }

// The SettingsError message for `yaml`, or "" if it parses.
std::string error_of(std::string_view yaml) {
    try {
        parse(yaml);
    } catch (const core::SettingsError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Manifest, ParsesTheShopExample) {
    auto m = parse(kShop);
    EXPECT_EQ(m.name, "shop");
    EXPECT_EQ(m.data_dir, ".plexus");
    EXPECT_EQ(m.manifest_dir, "/srv/shop");
    ASSERT_EQ(m.daemons.size(), 2u);
    EXPECT_EQ(m.daemons[0].name, "registry");  // document order is start order
    EXPECT_EQ(m.daemons[0].port, 0);
    EXPECT_EQ(m.daemons[0].health, "/health/ready");
    EXPECT_EQ(m.daemons[1].name, "gateway");
    EXPECT_EQ(m.daemons[1].port, 8080);
    EXPECT_EQ(m.daemons[1].command.at(5), "http://127.0.0.1:{port:registry}");
    ASSERT_EQ(m.services.size(), 2u);
    EXPECT_EQ(m.services[0].name, "catalog");
    EXPECT_EQ(m.services[0].replicas, 2);
    EXPECT_EQ(m.services[0].env.at("CATALOG_DB"), "{data_dir}/catalog/catalog.db");
    EXPECT_EQ(m.services[1].replicas, 1);
    EXPECT_EQ(m.restart.initial_backoff, 200ms);
    EXPECT_EQ(m.restart.max_backoff, 10s);
    EXPECT_EQ(m.restart.reset_after, 30s);
    EXPECT_EQ(m.stop_timeout, 10s);
    EXPECT_EQ(m.daemon("gateway"), &m.daemons[1]);
    EXPECT_EQ(m.service("nope"), nullptr);
    EXPECT_EQ(validate_manifest(m), std::nullopt);
}

TEST(Manifest, OptionalKeysHaveDefaults) {
    auto m = parse("name: tiny\nservices:\n  echo:\n    command: [/bin/echo]\n");
    EXPECT_EQ(m.data_dir, ".plexus");
    EXPECT_TRUE(m.daemons.empty());
    EXPECT_EQ(m.services.at(0).replicas, 1);
    EXPECT_EQ(m.restart.initial_backoff, 200ms);
    EXPECT_EQ(m.stop_timeout, 10s);
    EXPECT_EQ(m.liveness.interval, 1s);
    EXPECT_EQ(m.liveness.failures, 3);
    EXPECT_EQ(m.liveness.grace, 10s);
}

TEST(Manifest, ReadsTheLivenessSection) {
    auto m = parse("name: tiny\nliveness: {interval: 2s, failures: 5, grace: 0s}\n");
    EXPECT_EQ(m.liveness.interval, 2s);
    EXPECT_EQ(m.liveness.failures, 5);
    EXPECT_EQ(m.liveness.grace, 0ms);
    m = parse("name: tiny\nliveness:\n  grace: 30s\n");
    EXPECT_EQ(m.liveness.interval, 1s);
    EXPECT_EQ(m.liveness.failures, 3);
    EXPECT_EQ(m.liveness.grace, 30s);

    EXPECT_THAT(error_of("name: shop\nliveness:\n  interval: 0\n"),
                HasSubstr("shop.yaml:3: liveness.interval: must be positive"));
    EXPECT_THAT(error_of("name: shop\nliveness:\n  interval: 1s\n  failures: 0\n"),
                HasSubstr("shop.yaml:4: liveness.failures: must be between 1 and 100, got 0"));
    EXPECT_THAT(error_of("name: shop\nliveness:\n  grace: soon\n"),
                HasSubstr("shop.yaml:3: liveness.grace: expected a duration"));
    EXPECT_THAT(error_of("name: shop\nliveness:\n  path: /health/live\n"),
                HasSubstr("shop.yaml:3: liveness.path: unknown key"));
}

TEST(Manifest, LoadsAFileAndRecordsItsDirectory) {
    test_support::TempDir dir;
    std::ofstream(dir.file("plexus.yaml")) << kShop;
    auto m = load_manifest(dir.file("plexus.yaml"));
    EXPECT_EQ(m.manifest_dir, dir.path());
    EXPECT_THROW(load_manifest(dir.file("absent.yaml")), core::SettingsError);
}

TEST(Manifest, UnknownKeysNameFileLineAndKey) {
    EXPECT_THAT(error_of("name: shop\ndeamons: {}\n"), HasSubstr("shop.yaml:2: deamons: unknown key"));
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  registry:\n    command: [x]\n    prot: 1\n"),
                HasSubstr("shop.yaml:5: daemons.registry.prot: unknown key"));
    EXPECT_THAT(error_of("name: shop\nrestart:\n  backoff: 1s\n"),
                HasSubstr("shop.yaml:3: restart.backoff: unknown key"));
}

TEST(Manifest, WrongTypesAreErrors) {
    EXPECT_THAT(error_of("name: shop\nstop_timeout: soon\n"),
                HasSubstr("shop.yaml:2: stop_timeout: expected a duration"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: /bin/true\n"),
                HasSubstr("shop.yaml:4: services.a.command: expected a list of strings"));
    EXPECT_THAT(error_of("data_dir: x\n"), HasSubstr("name: is required"));
}

TEST(Manifest, UnknownPlaceholdersAreErrorsAtLoadTime) {
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  registry:\n    command: [\"{plexus}\", \"--x={nope}\"]\n"),
                HasSubstr("shop.yaml:4: daemons.registry.command: unknown placeholder '{nope}'"));
    EXPECT_THAT(
        error_of("name: shop\nservices:\n  a:\n    command: [x]\n    env: {DB: \"{datadir}/a.db\"}\n"),
        HasSubstr("shop.yaml:5: services.a.env: DB: unknown placeholder '{datadir}'"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [\"sh\", \"-c\", \"echo ${HOME}\"]\n"),
                HasSubstr("unknown placeholder '{HOME}'"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [\"x{instance\"]\n"),
                HasSubstr("services.a.command: unclosed placeholder"));
}

TEST(Manifest, PortPlaceholdersMustReferToDaemons) {
    // {port} belongs to daemons; services listen on PLEXUS_LISTEN.
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [\"x\", \"{port}\"]\n"),
                HasSubstr("services.a.command: {port} is only available to daemons"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [\"x\", \"{port:registry}\"]\n"),
                HasSubstr("services.a.command: '{port:registry}' names no daemon"));
    // A daemon may refer to one defined after it: ports are assigned before anything starts.
    auto m = parse(
        "name: shop\ndaemons:\n  a:\n    command: [\"x\", \"{port:b}\"]\n  b:\n    command: [\"y\", "
        "\"{port:a}\"]\n");
    EXPECT_EQ(m.daemons.size(), 2u);
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  a:\n    command: [\"x\", \"{port:c}\"]\n"),
                HasSubstr("shop.yaml:4: daemons.a.command: '{port:c}' names no daemon"));
}

TEST(Manifest, ReplicasMustBeWithinRange) {
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [x]\n    replicas: 65\n"),
                HasSubstr("shop.yaml:5: services.a.replicas: must be between 0 and 64, got 65"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [x]\n    replicas: -1\n"),
                HasSubstr("services.a.replicas: must be between 0 and 64"));
    EXPECT_EQ(parse("name: shop\nservices:\n  a:\n    command: [x]\n    replicas: 0\n").services[0].replicas,
              0);
    EXPECT_EQ(parse("name: shop\nservices:\n  a:\n    command: [x]\n    replicas: 64\n").services[0].replicas,
              64);
}

TEST(Manifest, RejectsOtherMistakes) {
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: []\n"),
                HasSubstr("services.a.command: must not be empty"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    replicas: 1\n"),
                HasSubstr("services.a.command: is required"));
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  a:\n    command: [x]\n    port: 80\n  b:\n    command: "
                         "[x]\n    port: 80\n"),
                HasSubstr("daemons.b.port: port 80 is also used by daemon 'a'"));
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  a:\n    command: [x]\n    port: 70000\n"),
                HasSubstr("daemons.a.port: must be between 0 and 65535"));
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  a:\n    command: [x]\n    health: ready\n"),
                HasSubstr("daemons.a.health: must be a path starting with '/'"));
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  a:\n    command: [x]\nservices:\n  a:\n    command: [x]\n"),
                HasSubstr("'a' is already the name of a daemon"));
    EXPECT_THAT(
        error_of("name: shop\ndaemons:\n  a-0:\n    command: [x]\nservices:\n  a:\n    command: [x]\n"),
        HasSubstr("daemon 'a-0' would clash with a replica of service 'a'"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  ../etc:\n    command: [x]\n"),
                HasSubstr("is not a valid name"));
    EXPECT_THAT(error_of("name: shop\nrestart:\n  initial_backoff: 0\n"),
                HasSubstr("restart.initial_backoff: must be positive"));
    EXPECT_THAT(error_of("name: shop\nrestart:\n  initial_backoff: 2s\n  max_backoff: 1s\n"),
                HasSubstr("restart.max_backoff: must not be shorter than initial_backoff"));
}

TEST(Manifest, ValidatesManifestsBuiltInCode) {
    Manifest m;
    m.name = "coded";
    m.services.push_back({"a", {"x"}, 65, {}});
    EXPECT_THAT(validate_manifest(m).value_or(""), HasSubstr("replicas must be between 0 and 64"));
    m.services[0].replicas = 1;
    m.services[0].command = {"x", "{port}"};
    EXPECT_THAT(validate_manifest(m).value_or(""), HasSubstr("{port} is only available to daemons"));
    m.services[0].command = {"x"};
    EXPECT_EQ(validate_manifest(m), std::nullopt);
    m.liveness.failures = 0;
    EXPECT_THAT(validate_manifest(m).value_or(""), HasSubstr("liveness: failures must be between 1 and 100"));
    m.liveness.failures = 3;
    m.liveness.interval = 0ms;
    EXPECT_THAT(validate_manifest(m).value_or(""), HasSubstr("liveness: interval must be positive"));
    m.liveness.interval = 1s;
    m.liveness.grace = -1s;
    EXPECT_THAT(validate_manifest(m).value_or(""), HasSubstr("liveness: grace must not be negative"));
}

TEST(Placeholders, ExpandEveryKnownName) {
    PlaceholderValues v;
    v.plexus = "/usr/bin/plexus";
    v.bin_dir = "/opt/bin";
    v.data_dir = "/var/plexus";
    v.manifest_dir = "/srv/shop";
    v.instance = "catalog-1";
    v.replica = 1;
    v.port = 4000;
    v.daemon_ports = {{"registry", 4001}};
    auto out = expand_placeholders(
        "{plexus} {bin_dir} {data_dir} {manifest_dir} {instance} {replica} {port} {port:registry} ${{HOME} }",
        v);
    ASSERT_TRUE(out);
    EXPECT_EQ(*out, "/usr/bin/plexus /opt/bin /var/plexus /srv/shop catalog-1 1 4000 4001 ${HOME} }");

    std::string why;
    EXPECT_FALSE(expand_placeholders("{nope}", v, &why));
    EXPECT_THAT(why, HasSubstr("unknown placeholder '{nope}'"));
    EXPECT_FALSE(expand_placeholders("{port:gateway}", v, &why));
    v.port.reset();
    EXPECT_FALSE(expand_placeholders("{port}", v, &why));
    v.bin_dir.clear();
    EXPECT_FALSE(expand_placeholders("{bin_dir}/x", v, &why));
    EXPECT_THAT(why, HasSubstr("{bin_dir} is used but no value was given"));
}

TEST(Manifest, TlsArgsAndSchemePlaceholders) {
    auto m = parse_manifest(
        "name: shop\ndaemons:\n  gateway:\n    command: [\"x\", \"{scheme}://h:{port}\"]\n"
        "    tls_args: [\"--tls-cert\", \"{tls_cert}\", \"--tls-key\", \"{tls_key}\"]\n"
        "  identity:\n    command: [\"y\", \"--issuer\", \"{scheme:gateway}://h:{port:gateway}/auth\"]\n",
        "shop.yaml", "/srv/shop");
    ASSERT_EQ(m.daemons.size(), 2u);
    EXPECT_EQ(m.daemons[0].tls_args,
              (std::vector<std::string>{"--tls-cert", "{tls_cert}", "--tls-key", "{tls_key}"}));
    EXPECT_TRUE(m.daemons[1].tls_args.empty());
    EXPECT_EQ(validate_manifest(m), std::nullopt);

    EXPECT_THAT(error_of("name: shop\ndaemons:\n  g:\n    command: [\"x\"]\n    tls_args: [\"{nope}\"]\n"),
                HasSubstr("shop.yaml:5: daemons.g.tls_args: unknown placeholder '{nope}'"));
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  g:\n    command: [\"x\"]\n    tls_args: []\n"),
                HasSubstr("daemons.g.tls_args: must not be empty"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [\"x\", \"{scheme}\"]\n"),
                HasSubstr("{scheme} is only available to daemons"));
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [\"x\", \"{scheme:nope}\"]\n"),
                HasSubstr("'{scheme:nope}' names no daemon"));

    PlaceholderValues v;
    EXPECT_EQ(*expand_placeholders("{scheme} {scheme:gateway}", v), "http http");
    v.tls = true;
    v.tls_daemons = {"gateway"};
    v.tls_cert = "/d/tls/server.pem";
    v.tls_key = "/d/tls/server-key.pem";
    EXPECT_EQ(*expand_placeholders("{scheme} {scheme:gateway} {scheme:registry} {tls_cert} {tls_key}", v),
              "https https http /d/tls/server.pem /d/tls/server-key.pem");
    std::string why;
    v.tls_cert.clear();
    EXPECT_FALSE(expand_placeholders("{tls_cert}", v, &why));
    EXPECT_THAT(why, HasSubstr("{tls_cert} is used but no value was given"));
}

TEST(Manifest, AdminPortsAreDeclaredPerDaemonAndReachableByPlaceholder) {
    auto m = parse(
        "name: shop\ndaemons:\n  gateway:\n    command: [\"x\", \"{admin_port}\"]\n    admin_port: 0\n"
        "  registry:\n    command: [\"y\", \"{admin_port:gateway}\"]\n    admin_port: 9902\n  other:\n"
        "    command: [z]\n");
    ASSERT_EQ(m.daemons.size(), 3u);
    EXPECT_EQ(m.daemons[0].admin_port, 0);     // picked at startup
    EXPECT_EQ(m.daemons[1].admin_port, 9902);  // fixed
    EXPECT_EQ(m.daemons[2].admin_port, -1);    // none
    EXPECT_THAT(error_of("name: shop\nservices:\n  a:\n    command: [\"x\", \"{admin_port}\"]\n"),
                HasSubstr("services.a.command: {admin_port} is only available to daemons"));
    EXPECT_THAT(error_of("name: shop\ndaemons:\n  a:\n    command: [\"x\", \"{admin_port:c}\"]\n"),
                HasSubstr("shop.yaml:4: daemons.a.command: '{admin_port:c}' names no daemon"));
    EXPECT_THAT(
        error_of("name: shop\ndaemons:\n  a:\n    command: [x]\n    port: 9000\n    admin_port: 9000\n"),
        HasSubstr("shop.yaml:6: daemons.a.admin_port: port 9000 is also used by daemon 'a'"));

    PlaceholderValues v;
    v.port = 4000;
    v.admin_port = 4100;
    v.daemon_admin_ports = {{"gateway", 4100}};
    EXPECT_EQ(*expand_placeholders("{port} {admin_port} {admin_port:gateway}", v), "4000 4100 4100");
    std::string why;
    v.admin_port.reset();
    EXPECT_FALSE(expand_placeholders("{admin_port}", v, &why));
    EXPECT_THAT(why, HasSubstr("{admin_port} is used by a daemon without admin_port"));
    EXPECT_FALSE(expand_placeholders("{admin_port:registry}", v, &why));
    EXPECT_THAT(why, HasSubstr("names no daemon with an admin_port"));
}
