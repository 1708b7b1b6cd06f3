// `plexus up --tls` on a temporary data dir: the gateway answers over HTTPS with a certificate of
// the development CA made in <data_dir>/tls, clients that trust ca.pem verify it, the identity
// server's issuer is the https URL, and a second run reuses the CA.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <fstream>

#include "plexus/net/tls_testing.hpp"
#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
namespace json = boost::json;
namespace tls = plexus::net::testing;

namespace {

// One request over a new TLS connection that trusts `ca_file` and checks the name `host`.
std::string https(int port, const std::string& ca_file, const std::string& request,
                  const std::string& host = "127.0.0.1") {
    tls::TlsClientOptions options;
    options.ca_file = ca_file;
    options.host = host;
    tls::TlsClient client(static_cast<std::uint16_t>(port), options);
    if (!client.handshake()) return "handshake failed: " + client.error();
    if (!client.send(request)) return "send failed";
    return client.read_response();
}

std::string body_of(const std::string& response) {
    auto end = response.find("\r\n\r\n");
    return end == std::string::npos ? std::string() : response.substr(end + 4);
}

}  // namespace

TEST(PlexusUpTls, TheGatewayAnswersOverHttpsWithTheDevelopmentCa) {
    Deployment d;
    ASSERT_TRUE(d.up("--tls")) << d.up_output() << d.supervisor_log();
    const int port = d.gateway_port();
    const auto ca = d.data_dir() + "/tls/ca.pem";
    const auto url = "https://127.0.0.1:" + std::to_string(port);
    const auto out = d.up_output();
    EXPECT_NE(out.find("made a development CA, " + ca), std::string::npos) << out;
    EXPECT_NE(out.find("Gateway: " + url + "\n"), std::string::npos) << out;
    EXPECT_NE(out.find("curl --cacert " + ca + " " + url + "/api/products/1"), std::string::npos) << out;
    struct stat st{};
    ASSERT_EQ(::stat((d.data_dir() + "/tls/ca-key.pem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);

    for (const char* host : {"127.0.0.1", "localhost"}) {
        auto product = https(port, ca, "GET /api/products/1 HTTP/1.1\r\nHost: x\r\n\r\n", host);
        ASSERT_EQ(tls::status_of(product), 200) << host << ": " << product;
        EXPECT_EQ(json::parse(body_of(product)).at("availability").at("quantity").as_int64(), 25);
    }
    // Plain HTTP is not served on the gateway's port.
    EXPECT_EQ(http_get(port, "/api/products/1").status, 0);

    // The identity server's issuer and endpoints are the https ones, and a token can be had there.
    auto discovery =
        https(port, ca, "GET /auth/.well-known/openid-configuration HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(tls::status_of(discovery), 200) << discovery;
    auto doc = json::parse(body_of(discovery)).as_object();
    EXPECT_EQ(doc.at("issuer").as_string(), url + "/auth");
    EXPECT_EQ(doc.at("token_endpoint").as_string(), url + "/auth/token");
    auto creds = json::parse(read_file(d.data_dir() + "/identity/admin-credentials.json")).as_object();
    std::string form = "grant_type=client_credentials&client_id=plexus-admin&client_secret=" +
                       std::string(creds.at("client_secret").as_string());
    auto token =
        https(port, ca,
              "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              "Content-Length: " +
                  std::to_string(form.size()) + "\r\n\r\n" + form);
    ASSERT_EQ(tls::status_of(token), 200) << token;
    EXPECT_EQ(json::parse(body_of(token)).at("token_type").as_string(), "Bearer");

    // The CLI reaches the https issuer, trusting the deployment's CA by itself.
    std::string users;
    ASSERT_EQ(d.plexus("identity users list", &users), 0) << users;
    EXPECT_NE(users.find("admin"), std::string::npos) << users;

    std::string status;
    ASSERT_EQ(d.plexus("status", &status), 0) << status;
    EXPECT_NE(status.find("gateway: " + url), std::string::npos) << status;
    EXPECT_NE(status.find("gateway CA (curl --cacert): " + ca), std::string::npos) << status;

    // A second run reuses the CA and the certificate.
    auto ca_pem = read_file(ca), cert_pem = read_file(d.data_dir() + "/tls/server.pem");
    ASSERT_EQ(d.down(), 0);
    ASSERT_TRUE(d.up("--tls")) << d.up_output() << d.supervisor_log();
    EXPECT_EQ(d.up_output().find("development CA,"), std::string::npos) << d.up_output();
    EXPECT_EQ(read_file(ca), ca_pem);
    EXPECT_EQ(read_file(d.data_dir() + "/tls/server.pem"), cert_pem);
    auto again = https(d.gateway_port(), ca, "GET /api/products/2 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(tls::status_of(again), 200) << again;
}

TEST(PlexusUpTls, AManifestWithoutTlsArgsRefusesTls) {
    TempDir dir;
    auto manifest = dir.path() + "/plain.yaml";
    std::ofstream(manifest)
        << "name: shop\ndaemons:\n  registry:\n    command: [\"{plexus}\", \"registry\"]\n";
    std::string out;
    int rc = run_command(
        std::string(PLEXUS_BIN) + " up --tls -f " + manifest + " --data-dir " + dir.path() + "/data", &out);
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find(manifest + ": --tls given but no daemon declares tls_args"), std::string::npos) << out;
}
