// The config server's settings as a `--config` file gives them: every key, and the values refused.

#include "plexus/core/settings.hpp"

#include <gtest/gtest.h>

#include <string>

#include "plexus/config/config.hpp"

using namespace plexus;
using namespace std::chrono_literals;

namespace {

config::Settings read(std::string_view text, config::Settings s = {}) {
    auto r = core::SettingsReader::from_text(text, "config.yaml");
    config::read_settings(r, s);
    r.done();
    return s;
}

// The message read_settings (or done()) refuses `text` with; empty when it loads.
std::string refusal(std::string_view text) {
    try {
        read(text);
    } catch (const core::SettingsError& e) {
        return e.what();
    }
    return {};
}

}  // namespace

TEST(ConfigSettings, ReadsEveryKey) {
    auto s = read(R"(listen: 127.0.0.1:9000
store: etcd
etcd: http://127.0.0.1:2379,http://127.0.0.1:2380
etcd_prefix: /team/config/
data_dir: /var/lib/config
registry: http://127.0.0.1:8500
key_file: /etc/plexus/config.key
generate_key: true
seed: /etc/plexus/seed
issuer: http://127.0.0.1:8080/auth
jwks_uri: http://127.0.0.1:8080/auth/jwks
audience: internal
revocations_uri: http://127.0.0.1:8080/auth/revocations
introspection_uri: http://127.0.0.1:8080/auth/introspect
client_credentials: /etc/plexus/config-client.json
anonymous: true
max_wait: 45s
threads: 4
)");
    EXPECT_EQ(s.listen, "127.0.0.1:9000");
    EXPECT_EQ(s.store, "etcd");
    EXPECT_EQ(s.etcd, "http://127.0.0.1:2379,http://127.0.0.1:2380");
    EXPECT_EQ(s.etcd_prefix, "/team/config/");
    EXPECT_EQ(s.data_dir, "/var/lib/config");
    EXPECT_EQ(s.registry, "http://127.0.0.1:8500");
    EXPECT_EQ(s.key_file, "/etc/plexus/config.key");
    EXPECT_TRUE(s.generate_key);
    EXPECT_EQ(s.seed_dir, "/etc/plexus/seed");
    EXPECT_EQ(s.issuer, "http://127.0.0.1:8080/auth");
    EXPECT_EQ(s.jwks_uri, "http://127.0.0.1:8080/auth/jwks");
    EXPECT_EQ(s.audience, "internal");
    EXPECT_EQ(s.revocations_uri, "http://127.0.0.1:8080/auth/revocations");
    EXPECT_EQ(s.introspection_uri, "http://127.0.0.1:8080/auth/introspect");
    EXPECT_EQ(s.credentials_file, "/etc/plexus/config-client.json");
    EXPECT_TRUE(s.anonymous);
    EXPECT_EQ(s.max_wait, 45s);
    EXPECT_EQ(s.threads, 4u);
}

TEST(ConfigSettings, AbsentKeysKeepWhatWasThere) {
    config::Settings before;
    before.data_dir = "/from/before";
    before.threads = 3;
    auto s = read("listen: 127.0.0.1:9001\n", before);
    EXPECT_EQ(s.listen, "127.0.0.1:9001");
    EXPECT_EQ(s.data_dir, "/from/before");
    EXPECT_EQ(s.threads, 3u);
    EXPECT_EQ(s.store, "sqlite");
    EXPECT_EQ(s.audience, "plexus");
    EXPECT_EQ(s.max_wait, 60s);
    EXPECT_FALSE(s.anonymous);
}

TEST(ConfigSettings, RefusesBadValuesAndUnknownKeysNamingLineAndKey) {
    EXPECT_EQ(refusal("store: sqlite\n"), "");
    auto bad_store = refusal("listen: 127.0.0.1:0\nstore: postgres\n");
    EXPECT_NE(bad_store.find("config.yaml:2: store: must be sqlite or etcd"), std::string::npos) << bad_store;
    EXPECT_NE(refusal("threads: 0\n").find("config.yaml:1: threads"), std::string::npos);
    EXPECT_NE(refusal("threads: 65\n").find("config.yaml:1: threads"), std::string::npos);
    EXPECT_EQ(refusal("threads: 64\n"), "");
    EXPECT_NE(refusal("anonymous: sometimes\n").find("config.yaml:1: anonymous"), std::string::npos);
    EXPECT_NE(refusal("max_wait: forever\n").find("config.yaml:1: max_wait"), std::string::npos);
    // The flag's name is --seed and --client-credentials; the struct's names are not keys.
    EXPECT_NE(refusal("listen: 127.0.0.1:0\nseed_dir: /x\n").find("config.yaml:2: seed_dir: unknown key"),
              std::string::npos);
    EXPECT_NE(refusal("credentials_file: /x\n").find("config.yaml:1: credentials_file: unknown key"),
              std::string::npos);
}

TEST(ConfigSettings, DescribesEveryKeyAsASchema) {
    auto d = core::SettingsReader::describer();
    config::Settings ignored;
    config::read_settings(d, ignored);
    auto schema = d.schema();
    const auto& properties = schema.at("properties").as_object();
    for (const char* key : {"listen", "store", "etcd", "etcd_prefix", "data_dir", "registry", "key_file",
                            "generate_key", "seed", "issuer", "jwks_uri", "audience", "revocations_uri",
                            "introspection_uri", "client_credentials", "anonymous", "max_wait", "threads"})
        EXPECT_TRUE(properties.contains(key)) << key;
    EXPECT_EQ(properties.size(), 18u);
    EXPECT_EQ(properties.at("threads").at("minimum").as_int64(), 1);
    EXPECT_EQ(properties.at("threads").at("maximum").as_int64(), 64);
}
