// Interoperability with a JOSE library nobody here wrote: the npm package `jose` (installed into
// the build tree on first use) verifies the identity server's tokens through its discovery
// document and JWKS, and the gateway accepts a token `jose` signed with a key it publishes.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/http.hpp"
#include "support/process.hpp"
#include "support/stub_server.hpp"

using namespace plexus::test;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// The folder of the build tree that holds `jose` and copies of the scripts; installs `jose` the
// first time. An install that fails fails the test (nothing is skipped).
std::string interop_dir() {
    auto dir = fs::path(PLEXUS_BIN).parent_path().parent_path() / "interop";
    fs::create_directories(dir);
    for (auto script : {"jose_verify.mjs", "jose_issuer.mjs"})
        fs::copy_file(fs::path(PLEXUS_SOURCE_DIR) / "tests/interop" / script, dir / script,
                      fs::copy_options::overwrite_existing);
    // Tests run in parallel: one installs while the others wait on the lock, then find it there.
    std::string out;
    int rc = run_command("cd '" + dir.string() +
                             "' && flock install.lock sh -c 'test -f node_modules/jose/package.json || "
                             "timeout 300 npm install --no-audit --no-fund --loglevel=error jose@5' 2>&1",
                         &out);
    if (rc != 0) throw std::runtime_error("npm install jose@5 failed (" + std::to_string(rc) + "): " + out);
    return dir.string();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(JoseInterop, JoseVerifiesTheIdentityServersTokensFromItsDiscoveryDocument) {
    auto dir = interop_dir();
    TempDir data;
    int port = free_port();
    Process identity({PLEXUS_BIN, "identity", "--listen", "127.0.0.1:" + std::to_string(port), "--data-dir",
                      data.path() + "/identity", "--audience", "shop"},
                     {}, data.path() + "/identity.log");
    ASSERT_TRUE(eventually([&] { return http_get(port, "/health/ready").status == 200; })) << identity.log();
    auto issued = client_credentials(
        port, "/token", credentials_of(read_file(data.path() + "/identity/admin-credentials.json")));
    ASSERT_EQ(issued.status, 200) << issued.body;
    auto token = access_token_of(issued);
    const std::string issuer = "http://127.0.0.1:" + std::to_string(port);

    std::string out;
    EXPECT_EQ(
        run_command("cd '" + dir + "' && timeout 60 node jose_verify.mjs " + issuer + " " + token + " shop",
                    &out),
        0)
        << out;
    EXPECT_NE(out.find(R"("typ":"at+jwt")"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("sub":"plexus-admin")"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("scope":"plexus:admin")"), std::string::npos) << out;

    // jose refuses what it should: another audience, and a token whose claims were changed.
    EXPECT_NE(
        run_command(
            "cd '" + dir + "' && timeout 60 node jose_verify.mjs " + issuer + " " + token + " billing", &out),
        0);
    auto dot = token.find('.');
    auto tampered =
        token.substr(0, dot + 1) + "eyJzdWIiOiJhZG1pbiJ9" + token.substr(token.find('.', dot + 1));
    EXPECT_NE(
        run_command(
            "cd '" + dir + "' && timeout 60 node jose_verify.mjs " + issuer + " " + tampered + " shop", &out),
        0);
    EXPECT_NE(out.find("verification failed"), std::string::npos) << out;
    identity.signal(SIGTERM);
    EXPECT_EQ(identity.wait(), 0);
}

TEST(JoseInterop, TheGatewayAcceptsATokenJoseSignedWithAKeyItPublishes) {
    auto dir = interop_dir();
    TempDir data;
    StubServer upstream;
    int issuer_port = free_port();
    Process issuer({"/usr/bin/env", "node", dir + "/jose_issuer.mjs", std::to_string(issuer_port),
                    "https://jose.test", "shop"},
                   {}, data.path() + "/issuer.log");
    ASSERT_TRUE(eventually([&] { return issuer.log().find("token=") != std::string::npos; })) << issuer.log();
    auto log = issuer.log();
    auto at = log.find("token=") + 6;
    std::string token = log.substr(at, log.find('\n', at) - at);

    auto routes = data.path() + "/routes.yaml";
    std::ofstream(routes) << "routes:\n  - name: api\n    match: {prefix: /api}\n    upstreams: [\"127.0.0.1:"
                          << upstream.port()
                          << "\"]\n    filters:\n      - name: auth\n        scopes: [catalog:write]\n";
    int port = free_port();
    Process gateway(
        {PLEXUS_BIN, "gateway", "--listen", "127.0.0.1:" + std::to_string(port), "--admin-listen",
         "127.0.0.1:" + std::to_string(free_port()), "--routes", routes, "--issuer", "https://jose.test",
         "--jwks-uri", "http://127.0.0.1:" + std::to_string(issuer_port) + "/jwks", "--audience", "shop"},
        {}, data.path() + "/gateway.log");
    ASSERT_TRUE(eventually([&] { return http_get(port, "/health/ready").status == 200; })) << gateway.log();

    EXPECT_EQ(http_get(port, "/api/x").status, 401);
    auto ok = http("GET", port, "/api/x", {}, {{"Authorization", "Bearer " + token}});
    EXPECT_EQ(ok.status, 200) << ok.body << gateway.log();
    EXPECT_EQ(upstream.requests("/api/x"), 1);
    gateway.signal(SIGTERM);
    EXPECT_EQ(gateway.wait(), 0);
    issuer.signal(SIGTERM);
    issuer.wait();
}

}  // namespace
