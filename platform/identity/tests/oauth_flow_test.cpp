// The user-facing grants of the identity server, driven as a browser and a native app would:
// the authorization code grant with PKCE through the login page, refresh token rotation and
// reuse detection, ID tokens and userinfo, login backoff, users and API keys in the admin API,
// and the audit log.

#include "identity_fixture.hpp"
#include "plexus/security/secrets.hpp"

namespace {

constexpr std::string_view kRedirect = "http://127.0.0.1:53123/callback";

class OAuthFlowTest : public IdentityTest {
  protected:
    void SetUp() override {
        IdentityTest::SetUp();
        identity::UserInfo alice;
        alice.username = "alice";
        alice.roles = {"editor"};
        alice.scopes = {"catalog:write"};
        alice_ = server_->create_user(alice, "alice password 1").first;
    }

    struct Pkce {
        std::string verifier = security::random_token(40);  // 54 characters
        std::string challenge() const { return security::base64url_encode(security::sha256(verifier)); }
    };

    std::string authorize_query(const Pkce& pkce, std::string scope = "openid profile catalog:write",
                                std::string client = "plexus-cli", std::string_view redirect = kRedirect) {
        return "response_type=code&client_id=" + client + "&redirect_uri=" + net::percent_encode(redirect) +
               "&scope=" + net::percent_encode(scope) +
               "&state=st4te&nonce=n0nce&code_challenge=" + pkce.challenge() + "&code_challenge_method=S256";
    }
    // The login form posted as a browser would: the page's hidden fields plus the credentials.
    net::Response login(const Pkce& pkce, std::string username = "alice",
                        std::string password = "alice password 1",
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
        return form(
            "/authorize",
            authorize_query(pkce) + "&username=" + username + "&password=" + net::percent_encode(password),
            std::move(headers));
    }
    // The query parameter `name` of a redirect's Location.
    static std::string location_param(const net::Response& r, std::string_view name) {
        auto location = std::string(r.headers.get("Location").value_or(""));
        auto q = location.find('?');
        if (q == std::string::npos) return {};
        auto fields = net::parse_form(location.substr(q + 1));
        for (auto& [k, v] : fields.value()) {
            if (k == name) return v;
        }
        return {};
    }
    std::string code_for(const Pkce& pkce) {
        auto r = login(pkce);
        EXPECT_EQ(r.status, 303) << r.body;
        return location_param(r, "code");
    }
    net::Response redeem(const std::string& code, const Pkce& pkce, std::string_view redirect = kRedirect) {
        return form("/token", "grant_type=authorization_code&client_id=plexus-cli&code=" + code +
                                  "&redirect_uri=" + net::percent_encode(redirect) +
                                  "&code_verifier=" + pkce.verifier);
    }
    json::object tokens() {
        Pkce pkce;
        auto r = redeem(code_for(pkce), pkce);
        EXPECT_EQ(r.status, 200) << r.body;
        return json::parse(r.body).as_object();
    }
    net::Response refresh(std::string_view token, std::string extra = {}) {
        return form("/token", "grant_type=refresh_token&client_id=plexus-cli&refresh_token=" +
                                  std::string(token) + extra);
    }
    std::string admin_bearer() { return "Bearer " + token_for("plexus-admin", admin_secret()); }
    static std::string text(const json::object& o, std::string_view k) {
        return std::string(o.at(k).as_string());
    }

    identity::UserInfo alice_;
};

TEST_F(OAuthFlowTest, TheLoginPageCarriesTheRequestAndIsLockedDown) {
    Pkce pkce;
    auto page = call("GET", "/authorize?" + authorize_query(pkce));
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(page.headers.get("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(page.headers.get("Cache-Control"), "no-store");
    EXPECT_EQ(page.headers.get("X-Frame-Options"), "DENY");
    EXPECT_NE(page.headers.get("Content-Security-Policy").value_or("").find("frame-ancestors 'none'"),
              std::string::npos);
    EXPECT_NE(page.body.find(R"(<form method="post" action="authorize">)"), std::string::npos);
    EXPECT_NE(page.body.find(R"(name="code_challenge" value=")" + pkce.challenge()), std::string::npos);
    EXPECT_NE(page.body.find("plexus command line"), std::string::npos);

    // A client's name is shown escaped.
    identity::ClientInfo evil;
    evil.client_id = "evil";
    evil.name = "<script>alert(1)</script>";
    evil.redirect_uris = {"https://evil.example/cb"};
    server_->create_client(evil);
    auto escaped =
        call("GET", "/authorize?" + authorize_query(pkce, "openid", "evil", "https://evil.example/cb"));
    EXPECT_EQ(escaped.status, 200);
    EXPECT_EQ(escaped.body.find("<script>"), std::string::npos);
    EXPECT_NE(escaped.body.find("&lt;script&gt;"), std::string::npos);
}

TEST_F(OAuthFlowTest, ErrorsAboutTheClientStayOnThePageAndTheRestGoBack) {
    Pkce pkce;
    // Unknown client, unregistered redirect: shown, never redirected (RFC 6749 §4.1.2.1).
    auto unknown = call("GET", "/authorize?" + authorize_query(pkce, "openid", "nobody"));
    EXPECT_EQ(unknown.status, 400);
    EXPECT_FALSE(unknown.headers.get("Location"));
    auto elsewhere =
        call("GET", "/authorize?" + authorize_query(pkce, "openid", "plexus-cli", "http://evil.example/cb"));
    EXPECT_EQ(elsewhere.status, 400);
    EXPECT_FALSE(elsewhere.headers.get("Location"));
    auto other_path = call("GET", "/authorize?" + authorize_query(pkce, "openid", "plexus-cli",
                                                                  "http://127.0.0.1:53123/callback/../x"));
    EXPECT_EQ(other_path.status, 400);
    // The loopback registration matches any port (RFC 8252 §7.3), and [::1] is not 127.0.0.1.
    EXPECT_EQ(call("GET",
                   "/authorize?" + authorize_query(pkce, "openid", "plexus-cli", "http://127.0.0.1/callback"))
                  .status,
              200);
    EXPECT_EQ(
        call("GET", "/authorize?" + authorize_query(pkce, "openid", "plexus-cli", "http://[::1]:9/callback"))
            .status,
        400);

    // PKCE is required, and only S256.
    auto no_pkce = call("GET", "/authorize?response_type=code&client_id=plexus-cli&state=s&redirect_uri=" +
                                   net::percent_encode(kRedirect));
    ASSERT_EQ(no_pkce.status, 303);
    EXPECT_EQ(location_param(no_pkce, "error"), "invalid_request");
    EXPECT_EQ(location_param(no_pkce, "state"), "s");
    EXPECT_EQ(location_param(no_pkce, "iss"), "http://127.0.0.1:8080/auth");
    auto plain = call("GET", "/authorize?" + authorize_query(pkce) + "x");  // method S256x
    EXPECT_EQ(location_param(plain, "error"), "invalid_request");
    auto token = call("GET", "/authorize?response_type=token&client_id=plexus-cli&redirect_uri=" +
                                 net::percent_encode(kRedirect));
    EXPECT_EQ(location_param(token, "error"), "unsupported_response_type");
    // A scope the user does not hold: refused after the login.
    auto r = form("/authorize",
                  authorize_query(pkce, "openid plexus:admin") + "&username=alice&password=alice+password+1");
    EXPECT_EQ(location_param(r, "error"), "invalid_scope");
    auto twice = call("GET", "/authorize?" + authorize_query(pkce) + "&state=again");
    EXPECT_EQ(twice.status, 400);
}

TEST_F(OAuthFlowTest, AuthorizationCodeWithPkceGivesAccessRefreshAndIdTokens) {
    Pkce pkce;
    auto r = login(pkce);
    ASSERT_EQ(r.status, 303) << r.body;
    auto location = std::string(*r.headers.get("Location"));
    EXPECT_TRUE(location.starts_with(std::string(kRedirect) + "?code=")) << location;
    EXPECT_EQ(location_param(r, "state"), "st4te");
    EXPECT_EQ(location_param(r, "iss"), "http://127.0.0.1:8080/auth");
    auto code = location_param(r, "code");

    // The wrong verifier is refused (and the code is spent).
    Pkce other;
    auto wrong = redeem(code_for(pkce), other);
    EXPECT_EQ(wrong.status, 400);
    EXPECT_EQ(json::parse(wrong.body).at("error").as_string(), "invalid_grant");

    auto t = redeem(code, pkce);
    ASSERT_EQ(t.status, 200) << t.body;
    EXPECT_EQ(t.headers.get("Cache-Control"), "no-store");
    auto body = json::parse(t.body).as_object();
    EXPECT_EQ(text(body, "scope"), "openid profile catalog:write");
    EXPECT_TRUE(text(body, "refresh_token").starts_with("pxr_"));

    security::JwtVerifier access_verifier({.issuer = "http://127.0.0.1:8080/auth", .audiences = {"shop"}});
    auto access = access_verifier.verify(text(body, "access_token"), server_->public_keys());
    ASSERT_TRUE(access) << access.detail;
    EXPECT_EQ(access.claims.at("sub").as_string(), alice_.user_id);
    EXPECT_EQ(access.claims.at("client_id").as_string(), "plexus-cli");
    EXPECT_EQ(access.claims.at("roles").as_array().at(0).as_string(), "editor");

    // The ID token: for the client, typ JWT, with the nonce and the access token's hash.
    security::JwtVerifier id_verifier(
        {.issuer = "http://127.0.0.1:8080/auth", .audiences = {"plexus-cli"}, .typ = "JWT"});
    auto id = id_verifier.verify(text(body, "id_token"), server_->public_keys());
    ASSERT_TRUE(id) << id.detail;
    EXPECT_EQ(id.claims.at("nonce").as_string(), "n0nce");
    EXPECT_EQ(id.claims.at("sub").as_string(), alice_.user_id);
    auto digest = security::sha256(text(body, "access_token"));
    EXPECT_EQ(id.claims.at("at_hash").as_string(), security::base64url_encode(digest.substr(0, 16)));
    // An ID token is not an access token.
    EXPECT_FALSE(access_verifier.verify(text(body, "id_token"), server_->public_keys()));

    // userinfo
    auto info = call("GET", "/userinfo", {}, {{"Authorization", "Bearer " + text(body, "access_token")}});
    ASSERT_EQ(info.status, 200) << info.body;
    auto u = json::parse(info.body).as_object();
    EXPECT_EQ(text(u, "sub"), alice_.user_id);
    EXPECT_EQ(text(u, "preferred_username"), "alice");

    // A code is good once: a second redemption revokes what the first one got.
    auto again = redeem(code, pkce);
    EXPECT_EQ(again.status, 400);
    EXPECT_FALSE(introspect(text(body, "access_token")).at("active").as_bool());
    EXPECT_EQ(refresh(text(body, "refresh_token")).status, 400);
}

TEST_F(OAuthFlowTest, RefreshTokensRotateAndAReusedOneRevokesItsFamily) {
    auto first = tokens();
    auto r1 = refresh(text(first, "refresh_token"));
    ASSERT_EQ(r1.status, 200) << r1.body;
    auto second = json::parse(r1.body).as_object();
    EXPECT_NE(text(second, "refresh_token"), text(first, "refresh_token"));
    EXPECT_TRUE(introspect(text(second, "access_token")).at("active").as_bool());

    // Narrowing is allowed, widening is not.
    auto narrow = refresh(text(second, "refresh_token"), "&scope=catalog:write");
    ASSERT_EQ(narrow.status, 200) << narrow.body;
    auto third = json::parse(narrow.body).as_object();
    EXPECT_EQ(text(third, "scope"), "catalog:write");
    EXPECT_FALSE(third.contains("id_token"));
    auto wide = refresh(text(third, "refresh_token"), "&scope=catalog:write+plexus:admin");
    EXPECT_EQ(json::parse(wide.body).at("error").as_string(), "invalid_scope");

    // Another client cannot use it.
    auto [other, secret] = server_->create_client({.client_id = "other", .name = "other", .scopes = {"x"}});
    auto stolen = form("/token", "grant_type=refresh_token&refresh_token=" + text(third, "refresh_token"),
                       {{"Authorization", basic("other", secret)}});
    EXPECT_EQ(json::parse(stolen.body).at("error").as_string(), "invalid_grant");

    // The first refresh token again: reuse. Every token of the login dies, the newest included.
    auto reuse = refresh(text(first, "refresh_token"));
    EXPECT_EQ(reuse.status, 400);
    EXPECT_NE(reuse.body.find("used before"), std::string::npos);
    EXPECT_EQ(refresh(text(third, "refresh_token")).status, 400);
    EXPECT_FALSE(introspect(text(third, "access_token")).at("active").as_bool());
    EXPECT_FALSE(introspect(text(second, "access_token")).at("active").as_bool());
    // ... and gateways hear of the access tokens through the revocation watch.
    auto watch = json::parse(call("GET", "/revocations?since=0").body).as_object();
    EXPECT_GE(watch.at("revoked").as_array().size(), 3u);
}

TEST_F(OAuthFlowTest, RevokingARefreshTokenEndsTheLogin) {
    auto t = tokens();
    auto r = form("/revoke", "client_id=plexus-cli&token=" + text(t, "refresh_token"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(refresh(text(t, "refresh_token")).status, 400);
    EXPECT_FALSE(introspect(text(t, "access_token")).at("active").as_bool());
    // A public client cannot introspect, nor use client credentials.
    EXPECT_EQ(form("/introspect", "client_id=plexus-cli&token=x").status, 401);
    EXPECT_EQ(json::parse(form("/token", "grant_type=client_credentials&client_id=plexus-cli").body)
                  .at("error")
                  .as_string(),
              "unauthorized_client");
}

TEST_F(OAuthFlowTest, UserinfoAnswersRfc6750Errors) {
    auto none = call("GET", "/userinfo");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.headers.get("WWW-Authenticate"), R"(Bearer realm="plexus")");
    auto bad = call("GET", "/userinfo", {}, {{"Authorization", "Bearer nonsense"}});
    EXPECT_EQ(bad.status, 401);
    EXPECT_NE(bad.headers.get("WWW-Authenticate").value_or("").find(R"(error="invalid_token")"),
              std::string::npos);
    auto client_token = token_for("plexus-admin", admin_secret());
    auto no_openid = call("GET", "/userinfo", {}, {{"Authorization", "Bearer " + client_token}});
    EXPECT_EQ(no_openid.status, 403);
    EXPECT_EQ(no_openid.headers.get("Content-Type"), "application/problem+json");
}

TEST_F(OAuthFlowTest, LoginFailuresBackOffPerUserAndPerAddress) {
    core::ManualClock clock;
    clock_ = &clock;
    restart();
    Pkce pkce;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(login(pkce, "alice", "wrong password!").status, 401);
    // The fifth attempt waits, even with the right password, which is not even checked.
    auto waiting = login(pkce);
    EXPECT_EQ(waiting.status, 429);
    EXPECT_EQ(waiting.headers.get("Retry-After"), "1");
    EXPECT_NE(waiting.body.find("Too many failed attempts"), std::string::npos);
    clock.advance(std::chrono::seconds(1));
    EXPECT_EQ(login(pkce).status, 303);

    // Many users from one address: the address backs off (alice's success did not clear its
    // four failures; a fifth, for another user, makes the next attempt wait 2 s).
    EXPECT_EQ(login(pkce, "bob", "some password").status, 401);
    auto spraying = login(pkce, "carol", "some password");
    EXPECT_EQ(spraying.status, 429);
    EXPECT_EQ(spraying.headers.get("Retry-After"), "2");
    // ... but the same user from another address (as the gateway says) only waits for the user.
    clock.advance(std::chrono::seconds(60));
    EXPECT_EQ(login(pkce, "dave", "some password", {{"X-Forwarded-For", "203.0.113.7"}}).status, 401);
    EXPECT_EQ(login(pkce, "alice", "alice password 1", {{"X-Forwarded-For", "203.0.113.8"}}).status, 303);
    // An unknown user costs a password check too, and is told the same as a wrong password.
    auto unknown = login(pkce, "nobody", "some password", {{"X-Forwarded-For", "203.0.113.9"}});
    EXPECT_EQ(unknown.status, 401);
    EXPECT_NE(unknown.body.find("Wrong username or password"), std::string::npos);
}

TEST_F(OAuthFlowTest, TheAdminApiManagesUsersAndAuditsEveryCall) {
    auto admin = admin_bearer();
    auto created =
        call("POST", "/admin/users", R"({"username":"bob","roles":["ops"],"scopes":["inventory:write"]})",
             {{"Authorization", admin}, {"Content-Type", "application/json"}});
    ASSERT_EQ(created.status, 201) << created.body;
    auto bob = json::parse(created.body).as_object();
    auto password = text(bob, "password");  // generated, shown once
    EXPECT_GE(password.size(), 20u);
    auto listed = call("GET", "/admin/users", {}, {{"Authorization", admin}});
    EXPECT_NE(listed.body.find("\"bob\""), std::string::npos);
    EXPECT_EQ(listed.body.find(password), std::string::npos);
    EXPECT_EQ(listed.body.find("argon2"), std::string::npos);

    for (auto [body, why] : std::vector<std::pair<std::string, std::string>>{
             {R"({"username":"bob"})", "exists already"},
             {R"({"username":"eve","password":"short"})", "at least 10"},
             {R"({"username":"a b"})", "username"},
             {R"({"username":"eve","roles":"ops"})", "roles: must be an array"},
             {R"({"username":"eve","admin":true})", "admin: unknown field"},
             {"[", "JSON object"}}) {
        auto r = call("POST", "/admin/users", body, {{"Authorization", admin}});
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_NE(r.body.find(why), std::string::npos) << r.body;
    }

    // Bob logs in; a new password ends his session.
    Pkce pkce;
    auto login_bob = form("/authorize", authorize_query(pkce, "openid inventory:write") +
                                            "&username=bob&password=" + net::percent_encode(password));
    ASSERT_EQ(login_bob.status, 303) << login_bob.body;
    auto t = json::parse(redeem(location_param(login_bob, "code"), pkce).body).as_object();
    auto id = text(bob, "user_id");
    auto changed = call("POST", "/admin/users/" + id + "/password", R"({"password":"a brand new one"})",
                        {{"Authorization", admin}});
    EXPECT_EQ(changed.status, 200) << changed.body;
    EXPECT_EQ(refresh(text(t, "refresh_token")).status, 400);
    EXPECT_FALSE(introspect(text(t, "access_token")).at("active").as_bool());
    EXPECT_EQ(call("DELETE", "/admin/users/" + id, {}, {{"Authorization", admin}}).status, 204);
    EXPECT_EQ(call("DELETE", "/admin/users/" + id, {}, {{"Authorization", admin}}).status, 404);

    // An admin user's own token (scope plexus:admin through plexus-cli) is an admin token.
    auto creds = admin_credentials();
    auto login_admin =
        form("/authorize", authorize_query(pkce, "openid plexus:admin") +
                               "&username=admin&password=" + net::percent_encode(text(creds, "password")));
    ASSERT_EQ(login_admin.status, 303) << login_admin.body;
    auto admin_user = json::parse(redeem(location_param(login_admin, "code"), pkce).body).as_object();
    EXPECT_EQ(
        call("GET", "/admin/users", {}, {{"Authorization", "Bearer " + text(admin_user, "access_token")}})
            .status,
        200);
    // Its refresh token is not an access token, whatever its scope.
    auto by_refresh =
        call("GET", "/admin/users", {}, {{"Authorization", "Bearer " + text(admin_user, "refresh_token")}});
    EXPECT_EQ(by_refresh.status, 401);
    // Alice's is not.
    auto alice = tokens();
    auto denied =
        call("GET", "/admin/users", {}, {{"Authorization", "Bearer " + text(alice, "access_token")}});
    EXPECT_EQ(denied.status, 403);

    auto audit = read_file(dir_ / "audit.log");
    EXPECT_NE(audit.find(R"("action":"POST /admin/users","target":")" + id + R"(","status":201)"),
              std::string::npos)
        << audit;
    EXPECT_NE(audit.find(R"("action":"DELETE /admin/users/{id}","target":")" + id + R"(","status":204)"),
              std::string::npos);
    EXPECT_NE(audit.find(R"("actor":")" + alice_.user_id +
                         R"(","client":"plexus-cli","action":"GET /admin/users")"),
              std::string::npos);
    EXPECT_NE(audit.find(R"("status":403)"), std::string::npos);
    EXPECT_EQ(audit.find(password), std::string::npos);
    EXPECT_EQ(audit.find("a brand new one"), std::string::npos);
}

TEST_F(OAuthFlowTest, ApiKeysAreShownOnceIntrospectedRotatedAndRevoked) {
    auto admin = admin_bearer();
    auto created = call("POST", "/admin/api-keys",
                        R"({"name":"stock importer","subject":"importer","scopes":["inventory:write"]})",
                        {{"Authorization", admin}});
    ASSERT_EQ(created.status, 201) << created.body;
    auto key = json::parse(created.body).as_object();
    auto secret = text(key, "api_key");
    auto key_id = text(key, "key_id");
    EXPECT_TRUE(secret.starts_with(key_id + "."));
    auto facts = introspect(secret);
    ASSERT_TRUE(facts.at("active").as_bool());
    EXPECT_EQ(text(facts, "token_type"), "api_key");
    EXPECT_EQ(text(facts, "sub"), "importer");
    EXPECT_EQ(text(facts, "scope"), "inventory:write");
    EXPECT_FALSE(introspect(key_id + ".wrong").at("active").as_bool());
    EXPECT_FALSE(introspect(key_id).at("active").as_bool());
    EXPECT_EQ(call("GET", "/admin/api-keys", {}, {{"Authorization", admin}}).body.find(secret),
              std::string::npos);

    // Rotation: a new key; the old one lives for the grace period (0 here: it ends now).
    auto rotated =
        call("POST", "/admin/api-keys/" + key_id + "/rotate", R"({"grace_s":0})", {{"Authorization", admin}});
    ASSERT_EQ(rotated.status, 201) << rotated.body;
    auto next = text(json::parse(rotated.body).as_object(), "api_key");
    EXPECT_TRUE(introspect(next).at("active").as_bool());
    EXPECT_FALSE(introspect(secret).at("active").as_bool());

    // Deletion: gone, and published on the revocation watch for gateways that cache keys.
    auto next_id = next.substr(0, next.find('.'));
    EXPECT_EQ(call("DELETE", "/admin/api-keys/" + next_id, {}, {{"Authorization", admin}}).status, 204);
    EXPECT_FALSE(introspect(next).at("active").as_bool());
    EXPECT_NE(call("GET", "/revocations?since=0").body.find(next_id), std::string::npos);
    EXPECT_EQ(call("POST", "/admin/api-keys", R"({"name":"x","expires_in_s":-1})", {{"Authorization", admin}})
                  .status,
              400);
    EXPECT_EQ(call("POST", "/admin/api-keys", R"({"name":"x","expires_in_s":18446744073709551615})",
                   {{"Authorization", admin}})
                  .status,
              400);
}

TEST_F(OAuthFlowTest, DiscoveryDescribesTheCodeFlow) {
    auto d = json::parse(call("GET", "/.well-known/openid-configuration").body).as_object();
    EXPECT_EQ(text(d, "authorization_endpoint"), "http://127.0.0.1:8080/auth/authorize");
    EXPECT_EQ(text(d, "userinfo_endpoint"), "http://127.0.0.1:8080/auth/userinfo");
    EXPECT_EQ(d.at("code_challenge_methods_supported").as_array(), json::array{"S256"});
    EXPECT_TRUE(d.at("authorization_response_iss_parameter_supported").as_bool());
}

}  // namespace
