// The development CA: its server certificate passes the checks a TLS client makes (chain to the CA,
// purpose, names, validity), with OpenSSL's verifier; files are reused, renewed near expiry and
// replaced when broken; keys are private to the user.

#include "plexus/net/dev_ca.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "plexus/net/tls.hpp"

namespace net = plexus::net;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

X509* load_cert(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return nullptr;
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return cert;
}

// What `openssl verify -CAfile ca -purpose sslserver [-verify_hostname h | -verify_ip h]` checks:
// "" when `cert_file` verifies for `host` at `when`, else the reason.
std::string verify(const std::string& ca_file, const std::string& cert_file, const std::string& host,
                   std::chrono::system_clock::time_point when = std::chrono::system_clock::now()) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_load_file(store, ca_file.c_str());
    X509* cert = load_cert(cert_file);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, cert, nullptr);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(when));
    if (host.find_first_not_of("0123456789.:") == std::string::npos)
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    else
        X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    std::string why;
    if (!cert)
        why = "no certificate in " + cert_file;
    else if (X509_verify_cert(ctx) != 1)
        why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    X509_STORE_CTX_free(ctx);
    X509_free(cert);
    X509_STORE_free(store);
    return why;
}

class DevCaTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "plexus-devca-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        root_ = pattern;
        dir_ = root_ + "/tls";
    }
    void TearDown() override { std::filesystem::remove_all(root_); }

    std::string root_, dir_;
};

int mode_of(const std::string& path) {
    struct stat st{};
    ::stat(path.c_str(), &st);
    return st.st_mode & 0777;
}

}  // namespace

TEST_F(DevCaTest, ServerCertificateVerifiesAgainstTheCaForEveryLoopbackName) {
    auto ca = net::ensure_dev_ca(dir_);
    EXPECT_TRUE(ca.created_ca);
    EXPECT_TRUE(ca.created_cert);
    EXPECT_EQ(ca.ca_cert, dir_ + "/ca.pem");
    EXPECT_EQ(ca.ca_key, dir_ + "/ca-key.pem");
    for (const char* host : {"localhost", "127.0.0.1", "::1"})
        EXPECT_EQ(verify(ca.ca_cert, ca.cert, host), "") << host;
    EXPECT_NE(verify(ca.ca_cert, ca.cert, "example.com"), "");
    EXPECT_NE(verify(ca.ca_cert, ca.cert, "10.0.0.1"), "");
    // The CA is not a server certificate, and the server certificate cannot sign others.
    EXPECT_NE(verify(ca.ca_cert, ca.ca_cert, "localhost"), "");

    X509* cert = load_cert(ca.cert);
    ASSERT_NE(cert, nullptr);
    EXPECT_EQ(X509_check_ca(cert), 0);
    EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert)), EVP_PKEY_EC);
    char curve[32] = {};
    EVP_PKEY_get_group_name(X509_get0_pubkey(cert), curve, sizeof curve, nullptr);
    EXPECT_STREQ(curve, "prime256v1");
    auto days_left = [](X509* c) {
        int days = 0, secs = 0;
        ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(c));
        return days;
    };
    EXPECT_GE(days_left(cert), 396);
    EXPECT_LE(days_left(cert), 397);
    X509_free(cert);
    X509* ca_cert = load_cert(ca.ca_cert);
    ASSERT_NE(ca_cert, nullptr);
    EXPECT_EQ(X509_check_ca(ca_cert), 1);
    EXPECT_GE(days_left(ca_cert), 3649);
    X509_free(ca_cert);

    EXPECT_EQ(mode_of(ca.ca_key), 0600);
    EXPECT_EQ(mode_of(ca.key), 0600);
    EXPECT_EQ(mode_of(ca.ca_cert), 0644);
    // The pair loads as a server's.
    net::ServerTls tls(ca.cert, ca.key);
    EXPECT_EQ(tls.certificate().subject, "CN=localhost,O=Plexus development");
}

TEST_F(DevCaTest, ALaterRunReusesTheFiles) {
    auto first = net::ensure_dev_ca(dir_);
    auto ca_pem = read_file(first.ca_cert), cert_pem = read_file(first.cert);
    auto again = net::ensure_dev_ca(dir_);
    EXPECT_FALSE(again.created_ca);
    EXPECT_FALSE(again.created_cert);
    EXPECT_EQ(read_file(again.ca_cert), ca_pem);
    EXPECT_EQ(read_file(again.cert), cert_pem);
}

TEST_F(DevCaTest, TheServerCertificateIsRenewedNearItsExpiryUnderTheSameCa) {
    auto first = net::ensure_dev_ca(dir_);
    auto ca_pem = read_file(first.ca_cert), cert_pem = read_file(first.cert);
    net::DevCaOptions later;
    later.now = std::chrono::system_clock::now() + std::chrono::hours(24 * 380);  // 17 days left
    auto renewed = net::ensure_dev_ca(dir_, later);
    EXPECT_FALSE(renewed.created_ca);
    EXPECT_TRUE(renewed.created_cert);
    EXPECT_EQ(read_file(renewed.ca_cert), ca_pem);
    EXPECT_NE(read_file(renewed.cert), cert_pem);
    EXPECT_EQ(verify(renewed.ca_cert, renewed.cert, "localhost", later.now), "");
    EXPECT_NE(verify(renewed.ca_cert, renewed.cert, "localhost", later.now + std::chrono::hours(24 * 400)),
              "");
}

TEST_F(DevCaTest, NewHostsOrAnotherCaGiveANewServerCertificate) {
    net::ensure_dev_ca(dir_);
    net::DevCaOptions more;
    more.hosts = {"localhost", "127.0.0.1", "::1", "shop.test"};
    auto widened = net::ensure_dev_ca(dir_, more);
    EXPECT_FALSE(widened.created_ca);
    EXPECT_TRUE(widened.created_cert);
    EXPECT_EQ(verify(widened.ca_cert, widened.cert, "shop.test"), "");

    // A broken CA file: a new CA, and a server certificate it signed.
    std::ofstream(widened.ca_key, std::ios::trunc) << "garbage";
    auto replaced = net::ensure_dev_ca(dir_, more);
    EXPECT_TRUE(replaced.created_ca);
    EXPECT_TRUE(replaced.created_cert);
    EXPECT_EQ(verify(replaced.ca_cert, replaced.cert, "127.0.0.1"), "");
}

TEST_F(DevCaTest, BadHostsAndUnwritableDirectoriesAreErrors) {
    net::DevCaOptions bad;
    bad.hosts = {"localhost", "not a host!"};
    EXPECT_THROW(net::ensure_dev_ca(dir_, bad), net::TlsError);
    bad.hosts = {};
    EXPECT_THROW(net::ensure_dev_ca(dir_, bad), net::TlsError);
    std::ofstream(root_ + "/file") << "x";
    try {
        net::ensure_dev_ca(root_ + "/file/tls");
        ADD_FAILURE() << "no error";
    } catch (const net::TlsError& e) {
        EXPECT_NE(std::string(e.what()).find(root_ + "/file/tls"), std::string::npos) << e.what();
    }
}
