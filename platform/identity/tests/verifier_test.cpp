// libs/auth's Verifier (what the gateway's auth filter and services use) against the real identity
// server: JWTs, opaque tokens and API keys, the caches, and revocations pushed by the watch. Also
// the provisioning of workload clients whose credentials the verifier introspects with.

#include "plexus/auth/verifier.hpp"

#include <poll.h>
#include <sys/stat.h>

#include <future>

#include "identity_fixture.hpp"
#include "plexus/net/blocking.hpp"

namespace {

using namespace std::chrono_literals;

std::string text(const json::object& o, std::string_view key) { return std::string(o.at(key).as_string()); }

class VerifierTest : public IdentityTest {
  protected:
    void SetUp() override {
        IdentityTest::SetUp();
        provision_ = {{"edge", {}, (dir_ / "edge.json").string()}};
        restart();
    }

    auth::ProviderSettings provider() const {
        auto base = "http://127.0.0.1:" + std::to_string(http_->port());
        return {.issuer = "http://127.0.0.1:8080/auth",
                .jwks_uri = base + "/jwks",
                .audience = "shop",
                .revocations_uri = base + "/revocations",
                .introspection_uri = base + "/introspect",
                .credentials_file = (dir_ / "edge.json").string()};
    }

    auth::Check check(auth::Verifier& v, const std::string& credential, auth::TokenKinds kinds) {
        auto c = net::run_blocking(runtime_.executor(0), v.check_async(credential, kinds), kWait);
        if (!c) throw std::runtime_error("no answer");
        return std::move(*c);
    }

    // Waits (bounded) until the cached check of `credential` is refused as revoked.
    bool refused_soon(auth::Verifier& v, const std::string& credential, auth::TokenKinds kinds) {
        for (auto waited = 0ms; waited < kWait; waited += 10ms) {
            auto c = v.check(credential, kinds);
            if (c.status == auth::Check::invalid) return c.detail == "the token was revoked";
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    std::string admin_bearer() { return "Bearer " + token_for("plexus-admin", admin_secret()); }
};

TEST_F(VerifierTest, WorkloadClientsAreProvisionedOnceAndMadeAnewWhenTheirFileIsLost) {
    const auto file = dir_ / "edge.json";
    struct stat st{};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto creds = json::parse(read_file(file)).as_object();
    EXPECT_EQ(text(creds, "client_id"), "edge");
    auto secret = text(creds, "client_secret");
    EXPECT_FALSE(token_for("edge", secret).empty());

    restart();  // the file still matches: nothing changes
    EXPECT_EQ(text(json::parse(read_file(file)).as_object(), "client_secret"), secret);

    provision_ = {{"edge", {"inventory:write"}, file.string()}};
    restart();  // new scopes: the client is made anew, with a new secret
    auto renewed = text(json::parse(read_file(file)).as_object(), "client_secret");
    EXPECT_NE(renewed, secret);
    EXPECT_EQ(
        form("/token", "grant_type=client_credentials", {{"Authorization", basic("edge", secret)}}).status,
        401);
    EXPECT_EQ(json::parse(form("/token", "grant_type=client_credentials&scope=inventory:write",
                               {{"Authorization", basic("edge", renewed)}})
                              .body)
                  .at("scope")
                  .as_string(),
              "inventory:write");

    std::filesystem::remove(file);
    restart();
    EXPECT_NE(text(json::parse(read_file(file)).as_object(), "client_secret"), renewed);

    std::string why;
    EXPECT_FALSE(identity::parse_provisioned("edge", why));
    EXPECT_FALSE(identity::parse_provisioned("bad name=x.json", why));
    EXPECT_FALSE(identity::parse_provisioned("edge:a b=x.json", why));
    auto p = identity::parse_provisioned("shop-catalog:inventory:write,openid=/tmp/a=b.json", why);
    ASSERT_TRUE(p) << why;
    EXPECT_EQ(p->name, "shop-catalog");
    EXPECT_EQ(p->scopes, (std::vector<std::string>{"inventory:write", "openid"}));
    EXPECT_EQ(p->file, "/tmp/a=b.json");
}

TEST_F(VerifierTest, JwtsVerifyLocallyAndAreCached) {
    auto v = std::make_shared<auth::Verifier>(provider(), 100, core::Clock::real());
    auto jwt = token_for("plexus-admin", admin_secret());
    EXPECT_EQ(v->check(jwt, auth::kJwt).status, auth::Check::pending);  // no keys yet
    auto c = check(*v, jwt, auth::kJwt);
    ASSERT_EQ(c.status, auth::Check::ok) << c.detail;
    EXPECT_EQ(c.token->principal->kind, "jwt");
    EXPECT_EQ(c.token->principal->client_id, "plexus-admin");
    EXPECT_EQ(v->check(jwt, auth::kJwt).status, auth::Check::ok);  // cached: no I/O
    auto wrong = v->check(jwt, auth::kApiKey);
    EXPECT_EQ(wrong.status, auth::Check::invalid);
    EXPECT_EQ(wrong.detail, "this route does not accept a jwt credential");
    EXPECT_EQ(v->check("not-a-token", auth::kJwt | auth::kOpaque | auth::kApiKey).status,
              auth::Check::invalid);
}

TEST_F(VerifierTest, OpaqueTokensAreIntrospectedCachedAndRefusedOnceRevoked) {
    identity::ClientInfo info;
    info.name = "opaque app";
    info.scopes = {"catalog:write"};
    info.token_kind = "opaque";
    auto [client, client_secret] = server_->create_client(info);
    auto token = token_for(client.client_id, client_secret, "&scope=catalog:write");
    ASSERT_TRUE(token.starts_with("pxo_"));

    auto v = std::make_shared<auth::Verifier>(provider(), 100, core::Clock::real());
    v->watch(runtime_.executor(0));
    EXPECT_EQ(v->check(token, auth::kOpaque).status, auth::Check::pending);
    auto c = check(*v, token, auth::kOpaque);
    ASSERT_EQ(c.status, auth::Check::ok) << c.detail;
    EXPECT_EQ(c.token->principal->kind, "opaque");
    EXPECT_EQ(c.token->principal->client_id, client.client_id);
    EXPECT_TRUE(c.token->principal->has_scope("catalog:write"));
    EXPECT_FALSE(c.token->jti.empty());
    EXPECT_EQ(v->check(token, auth::kOpaque).status, auth::Check::ok);  // cached

    // Revoked (RFC 7009): the watch brings the token's id, so the cached entry is refused.
    auto revoked =
        form("/revoke", "token=" + token, {{"Authorization", basic(client.client_id, client_secret)}});
    ASSERT_EQ(revoked.status, 200);
    EXPECT_TRUE(refused_soon(*v, token, auth::kOpaque));

    // An unknown token: inactive, and remembered as such for a while (no second introspection).
    auto bogus = std::string("pxo_") + std::string(43, 'A');
    EXPECT_EQ(check(*v, bogus, auth::kOpaque).detail, "the token is not active");
    auto again = v->check(bogus, auth::kOpaque);
    EXPECT_EQ(again.status, auth::Check::invalid);
    EXPECT_EQ(again.detail, "the token is not active");
}

TEST_F(VerifierTest, JwtsOfADeletedClientAreRefusedAlthoughCached) {
    auto [client, secret] = server_->create_client({.name = "batch job", .scopes = {"catalog:write"}});
    auto jwt = token_for(client.client_id, secret, "&scope=catalog:write");
    ASSERT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2);  // a JWT: nothing recorded per token
    auto other = token_for("plexus-admin", admin_secret());

    auto v = std::make_shared<auth::Verifier>(provider(), 100, core::Clock::real());
    v->watch(runtime_.executor(0));
    ASSERT_EQ(check(*v, jwt, auth::kJwt).status, auth::Check::ok);
    ASSERT_EQ(check(*v, other, auth::kJwt).status, auth::Check::ok);
    EXPECT_TRUE(introspect(jwt).at("active").as_bool());

    ASSERT_EQ(
        call("DELETE", "/admin/clients/" + client.client_id, {}, {{"Authorization", admin_bearer()}}).status,
        204);
    EXPECT_TRUE(refused_soon(*v, jwt, auth::kJwt));                  // pushed by the watch
    EXPECT_FALSE(introspect(jwt).at("active").as_bool());            // and at the identity server
    EXPECT_EQ(v->check(other, auth::kJwt).status, auth::Check::ok);  // other clients' tokens stand

    // A restarted identity server still publishes the deletion to a new watcher.
    restart();
    auto fresh = std::make_shared<auth::Verifier>(provider(), 100, core::Clock::real());
    fresh->watch(runtime_.executor(0));
    bool seen = false;
    for (auto waited = 0ms; waited < kWait && !seen; waited += 10ms) {
        seen = fresh->revoked().contains("", client.client_id, 1);
        if (!seen) std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(seen);
    EXPECT_FALSE(introspect(jwt).at("active").as_bool());
}

TEST(RevokedTokens, AClientsDeletionRevokesWhatItWasIssuedUntilThen) {
    auth::RevokedTokens r;
    const std::int64_t now = 1'000'000;
    r.add({{.jti = "j1", .expires_at = now + 60},
           {.jti = "client:c@900", .expires_at = now + 600, .client_id = "c", .issued_before = 900}},
          7, now);
    EXPECT_EQ(r.index(), 7);
    EXPECT_TRUE(r.contains("j1"));
    EXPECT_FALSE(r.contains(""));
    EXPECT_TRUE(r.contains("any", "c", 900));   // issued at the deletion
    EXPECT_TRUE(r.contains("any", "c", 0));     // no iat: taken as older
    EXPECT_FALSE(r.contains("any", "c", 901));  // a later client of the same id
    EXPECT_FALSE(r.contains("any", "d", 10));
    EXPECT_FALSE(r.contains("client:c@900"));  // the marker is no token id
    // A later deletion of the same id moves the bound; entries go once their tokens expired.
    r.add({{.jti = "client:c@950", .expires_at = now + 600, .client_id = "c", .issued_before = 950}}, 8, now);
    EXPECT_TRUE(r.contains("any", "c", 920));
    r.add({}, 9, now + 601);
    EXPECT_FALSE(r.contains("any", "c", 920));
    EXPECT_FALSE(r.contains("j1"));
    EXPECT_EQ(r.size(), 0u);
}

TEST_F(VerifierTest, ApiKeysAreIntrospectedAndRefusedOnceDeleted) {
    auto admin = admin_bearer();
    auto created = call("POST", "/admin/api-keys",
                        R"({"name":"importer","subject":"importer","scopes":["inventory:write"]})",
                        {{"Authorization", admin}});
    ASSERT_EQ(created.status, 201) << created.body;
    auto key = text(json::parse(created.body).as_object(), "api_key");
    auto key_id = key.substr(0, key.find('.'));

    auto v = std::make_shared<auth::Verifier>(provider(), 100, core::Clock::real());
    v->watch(runtime_.executor(0));
    auto c = check(*v, key, auth::kApiKey);
    ASSERT_EQ(c.status, auth::Check::ok) << c.detail;
    EXPECT_EQ(c.token->principal->kind, "api_key");
    EXPECT_EQ(c.token->principal->subject, "importer");
    EXPECT_TRUE(c.token->principal->has_scope("inventory:write"));
    EXPECT_EQ(check(*v, key_id + ".wrong", auth::kApiKey).detail, "the token is not active");
    // An API key is not an access token, whatever the route accepts.
    EXPECT_EQ(v->check(key, auth::kJwt | auth::kOpaque).status, auth::Check::invalid);

    ASSERT_EQ(call("DELETE", "/admin/api-keys/" + key_id, {}, {{"Authorization", admin}}).status, 204);
    EXPECT_TRUE(refused_soon(*v, key, auth::kApiKey));
}

TEST_F(VerifierTest, IntrospectionsInFlightAreBoundedAndTheRestAnsweredUnavailable) {
    // An introspection endpoint that accepts connections and never answers.
    int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto addr = net::testing::loopback(0);
    ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(silent, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
    auto settings = provider();
    settings.introspection_uri = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/introspect";
    settings.max_introspections = 2;
    auto v = std::make_shared<auth::Verifier>(settings, 100, core::Clock::real());

    // Two made-up tokens take both slots: their requests reach the endpoint and wait there. The
    // first is presented twice at once: one introspection, which both wait for.
    auto ask = [&](char c) {
        return std::async(std::launch::async,
                          [&, c] { return check(*v, "pxo_" + std::string(43, c), auth::kOpaque); });
    };
    auto first = ask('C'), again = ask('C'), second = ask('D');
    std::vector<int> held;
    for (auto waited = 0ms; held.size() < 2 && waited < kWait; waited += 5ms) {
        pollfd p{silent, POLLIN, 0};
        if (::poll(&p, 1, 5) == 1) held.push_back(::accept(silent, nullptr, nullptr));
    }
    ASSERT_EQ(held.size(), 2u);
    std::string request;
    for (auto waited = 0ms; request.find("\r\n\r\n") == std::string::npos && waited < kWait; waited += 5ms) {
        char buf[4096];
        pollfd p{held[1], POLLIN, 0};
        if (::poll(&p, 1, 5) == 1)
            request.append(buf, std::max<ssize_t>(0, ::recv(held[1], buf, sizeof buf, 0)));
    }
    ASSERT_NE(request.find("POST /introspect"), std::string::npos) << request;

    // A third is not sent: answered at once, a 503 to retry, and not remembered.
    auto third = "pxo_" + std::string(43, 'E');
    auto c = check(*v, third, auth::kOpaque);
    EXPECT_EQ(c.status, auth::Check::unavailable);
    EXPECT_EQ(c.detail, "too many credentials are being checked with the identity provider");
    EXPECT_EQ(v->check(third, auth::kOpaque).status, auth::Check::pending);

    // The held ones end (the endpoint hangs up), and their slots come back.
    for (int fd : held) ::close(fd);
    for (auto* f : {&first, &again, &second}) {
        auto c = f->get();
        EXPECT_EQ(c.status, auth::Check::unavailable);
        EXPECT_EQ(c.detail, "the identity provider did not answer");  // not refused for the cap
    }
    ::close(silent);
    auto after = check(*v, third, auth::kOpaque);  // refused connection now, but sent: a slot was free
    EXPECT_EQ(after.status, auth::Check::unavailable);
    EXPECT_EQ(after.detail, "the identity provider did not answer");
}

TEST_F(VerifierTest, WithoutIntrospectionOrWithTheProviderDownOpaqueTokensAreNotAdmitted) {
    auto settings = provider();
    settings.introspection_uri.clear();
    auto plain = std::make_shared<auth::Verifier>(settings, 100, core::Clock::real());
    auto token = std::string("pxo_") + std::string(43, 'B');
    EXPECT_EQ(check(*plain, token, auth::kOpaque).status, auth::Check::invalid);

    settings = provider();
    settings.credentials_file = (dir_ / "missing.json").string();
    auto no_creds = std::make_shared<auth::Verifier>(settings, 100, core::Clock::real());
    EXPECT_EQ(check(*no_creds, token, auth::kOpaque).status, auth::Check::unavailable);
    EXPECT_NE(logs().find("token introspection failing"), std::string::npos);

    settings = provider();
    settings.introspection_uri = "http://127.0.0.1:1/introspect";
    auto down = std::make_shared<auth::Verifier>(settings, 100, core::Clock::real());
    auto c = check(*down, token, auth::kOpaque);
    EXPECT_EQ(c.status, auth::Check::unavailable);
    EXPECT_EQ(down->check(token, auth::kOpaque).status, auth::Check::pending);  // nothing cached

    settings.introspection_uri = "ftp://x";
    EXPECT_THROW(auth::Verifier(settings, 100, core::Clock::real()), std::invalid_argument);
}

}  // namespace
