// The identity server in process, behind a real HTTP server on loopback: the client credentials
// grant, introspection, revocation, the admin API, key rotation, and what survives a restart.
// Every wait is bounded by kWait.

#include <sys/stat.h>

#include "identity_fixture.hpp"
#include "plexus/store/database.hpp"

namespace {

TEST_F(IdentityTest, TheFirstAdminsCredentialsAreInAPrivateFileAndNeverLogged) {
    auto file = server_->admin_credentials_file();
    ASSERT_EQ(file, (dir_ / "admin-credentials.json").string());
    struct stat st{};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir_ / "identity.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);  // it holds the private keys
    auto creds = admin_credentials();
    EXPECT_EQ(creds.at("client_id").as_string(), "plexus-admin");
    EXPECT_EQ(creds.at("token_endpoint").as_string(), "http://127.0.0.1:8080/auth/token");
    EXPECT_EQ(logs().find(admin_secret()), std::string::npos);
    EXPECT_EQ(logs().find(std::string(creds.at("password").as_string())), std::string::npos);
    EXPECT_NE(logs().find("first admin client and user created"), std::string::npos);
    // Private keys are sealed with the master key, which is private too.
    ASSERT_EQ(::stat((dir_ / "master.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    {
        auto db = store::Database::open((dir_ / "identity.db").string());
        ASSERT_TRUE(db);
        auto rows = db->query("SELECT private_pem FROM signing_keys");
        ASSERT_TRUE(rows && !rows->empty());
        for (const auto& r : *rows) EXPECT_TRUE(r.get<std::string>(0).starts_with("sbox1:"));
    }
    restart();  // an existing data dir: no new admin, no new file
    EXPECT_EQ(server_->admin_credentials_file(), "");
}

TEST_F(IdentityTest, DiscoveryAndJwksDescribeTheTokensItIssues) {
    auto d = json::parse(call("GET", "/.well-known/openid-configuration").body).as_object();
    EXPECT_EQ(d.at("issuer").as_string(), "http://127.0.0.1:8080/auth");
    EXPECT_EQ(d.at("jwks_uri").as_string(), "http://127.0.0.1:8080/auth/jwks");
    EXPECT_EQ(d.at("token_endpoint").as_string(), "http://127.0.0.1:8080/auth/token");
    auto jwks = call("GET", "/jwks");
    EXPECT_EQ(jwks.status, 200);
    EXPECT_EQ(jwks.body.find("\"d\""), std::string::npos);
    auto keys = security::KeySet::from_json(jwks.body);
    ASSERT_TRUE(keys);

    auto token = token_for("plexus-admin", admin_secret());
    security::JwtVerifier verifier({.issuer = "http://127.0.0.1:8080/auth", .audiences = {"shop"}});
    auto v = verifier.verify(token, *keys);
    ASSERT_TRUE(v) << v.detail;
    EXPECT_EQ(v.header.at("typ").as_string(), "at+jwt");
    for (auto claim : {"iss", "aud", "exp", "iat", "nbf", "jti", "sub", "client_id", "scope"})
        EXPECT_TRUE(v.claims.contains(claim)) << claim;
    EXPECT_EQ(v.claims.at("scope").as_string(), "plexus:admin");
    EXPECT_EQ(v.claims.at("client_id").as_string(), "plexus-admin");
}

TEST_F(IdentityTest, ClientCredentialsFollowsRfc6749) {
    auto secret = admin_secret();
    // client_secret_post works as well as Basic.
    auto post =
        form("/token", "grant_type=client_credentials&client_id=plexus-admin&client_secret=" + secret);
    EXPECT_EQ(post.status, 200) << post.body;
    EXPECT_EQ(post.headers.get("Cache-Control").value_or(""), "no-store");
    auto body = json::parse(post.body).as_object();
    EXPECT_EQ(body.at("token_type").as_string(), "Bearer");
    EXPECT_EQ(body.at("expires_in").as_int64(), 600);

    auto error_of = [](const net::Response& r) {
        return std::string(json::parse(r.body).at("error").as_string());
    };
    auto wrong =
        form("/token", "grant_type=client_credentials", {{"Authorization", basic("plexus-admin", "nope")}});
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(error_of(wrong), "invalid_client");
    EXPECT_EQ(wrong.headers.get("WWW-Authenticate").value_or(""), R"(Basic realm="plexus")");
    auto unknown =
        form("/token", "grant_type=client_credentials", {{"Authorization", basic("nobody", secret)}});
    EXPECT_EQ(error_of(unknown), "invalid_client");
    auto none = form("/token", "grant_type=client_credentials");
    EXPECT_EQ(none.status, 401);
    auto both = form("/token", "grant_type=client_credentials&client_id=plexus-admin&client_secret=" + secret,
                     {{"Authorization", basic("plexus-admin", secret)}});
    EXPECT_EQ(error_of(both), "invalid_request");
    auto auth =
        std::vector<std::pair<std::string, std::string>>{{"Authorization", basic("plexus-admin", secret)}};
    EXPECT_EQ(error_of(form("/token", "grant_type=password&username=a&password=b", auth)),
              "unsupported_grant_type");
    EXPECT_EQ(error_of(form("/token", "scope=plexus:admin", auth)), "invalid_request");
    EXPECT_EQ(error_of(form("/token", "grant_type=client_credentials&scope=catalog:write", auth)),
              "invalid_scope");
    EXPECT_EQ(error_of(form("/token", "grant_type=client_credentials&grant_type=client_credentials", auth)),
              "invalid_request");
    EXPECT_EQ(error_of(form("/token", "grant_type=client_credentials&scope=%zz", auth)), "invalid_request");
    auto json_body =
        call("POST", "/token", R"({"grant_type":"client_credentials"})",
             {{"Content-Type", "application/json"}, {"Authorization", basic("plexus-admin", secret)}});
    EXPECT_EQ(error_of(json_body), "invalid_request");
    EXPECT_EQ(form("/token", "grant_type=client_credentials&scope=plexus%3Aadmin", auth).status, 200);
}

TEST_F(IdentityTest, TheAdminApiNeedsAnAdminTokenAndCreatesClients) {
    auto no_token = call("GET", "/admin/clients");
    EXPECT_EQ(no_token.status, 401);
    EXPECT_EQ(no_token.headers.get("WWW-Authenticate").value_or(""), R"(Bearer realm="plexus")");
    auto bad = call("GET", "/admin/clients", {}, {{"Authorization", "Bearer nonsense"}});
    EXPECT_EQ(bad.status, 401);
    EXPECT_NE(bad.headers.get("WWW-Authenticate").value_or("").find(R"(error="invalid_token")"),
              std::string::npos);

    auto admin = "Bearer " + token_for("plexus-admin", admin_secret());
    auto created =
        call("POST", "/admin/clients",
             R"({"name":"orders","scopes":["catalog:read","catalog:write"],"token_kind":"opaque"})",
             {{"Authorization", admin}, {"Content-Type", "application/json"}});
    ASSERT_EQ(created.status, 201) << created.body;
    auto c = json::parse(created.body).as_object();
    std::string id(c.at("client_id").as_string()), secret(c.at("client_secret").as_string());
    EXPECT_EQ(secret.size(), 43u);
    EXPECT_EQ(logs().find(secret), std::string::npos);
    auto listed = call("GET", "/admin/clients", {}, {{"Authorization", admin}});
    EXPECT_NE(listed.body.find(id), std::string::npos);
    EXPECT_EQ(listed.body.find(secret), std::string::npos);
    auto audit = read_file(dir_ / "audit.log");
    EXPECT_NE(
        audit.find(
            R"("actor":"plexus-admin","client":"plexus-admin","action":"POST /admin/clients","target":")" +
            id),
        std::string::npos)
        << audit;
    EXPECT_EQ(audit.find(secret), std::string::npos);

    // The new client's opaque token: introspected, not an admin.
    auto opaque = token_for(id, secret, "&scope=catalog:read");
    EXPECT_EQ(opaque.rfind("pxo_", 0), 0u);
    auto facts = introspect(opaque);
    EXPECT_TRUE(facts.at("active").as_bool());
    EXPECT_EQ(facts.at("scope").as_string(), "catalog:read");
    EXPECT_EQ(facts.at("client_id").as_string(), id);
    auto forbidden = call("GET", "/admin/clients", {}, {{"Authorization", "Bearer " + opaque}});
    EXPECT_EQ(forbidden.status, 403);
    EXPECT_NE(forbidden.headers.get("WWW-Authenticate").value_or("").find("insufficient_scope"),
              std::string::npos);

    for (auto bad_body :
         {R"({"name":"x","scopes":["bad scope"]})", R"({"name":"x","token_kind":"paper"})",
          R"({"scopes":["a"]})", R"({"name":"x","colour":"red"})", R"({"name":5})", "not json"}) {
        auto r = call("POST", "/admin/clients", bad_body, {{"Authorization", admin}});
        EXPECT_EQ(r.status, 400) << bad_body << " " << r.body;
    }
    EXPECT_EQ(call("DELETE", "/admin/clients/" + id, {}, {{"Authorization", admin}}).status, 204);
    EXPECT_FALSE(introspect(opaque).at("active").as_bool());  // its tokens went with it
    EXPECT_EQ(call("DELETE", "/admin/clients/" + id, {}, {{"Authorization", admin}}).status, 404);
    EXPECT_EQ(call("DELETE", "/admin/clients/plexus-admin", {}, {{"Authorization", admin}}).status, 409);
}

TEST_F(IdentityTest, RevocationIsForTheOwnerAndSurvivesARestart) {
    auto [other, other_secret] =
        server_->create_client({.client_id = "other", .name = "other", .scopes = {"x"}});
    auto jwt = token_for("plexus-admin", admin_secret());
    // Someone else's revocation is ignored (and still answered 200, RFC 7009).
    auto foreign = form("/revoke", "token=" + jwt, {{"Authorization", basic("other", other_secret)}});
    EXPECT_EQ(foreign.status, 200);
    EXPECT_TRUE(introspect(jwt).at("active").as_bool());
    EXPECT_EQ(
        form("/revoke", "token=" + jwt, {{"Authorization", basic("plexus-admin", admin_secret())}}).status,
        200);
    EXPECT_FALSE(introspect(jwt).at("active").as_bool());
    EXPECT_EQ(
        form("/revoke", "token=unknown", {{"Authorization", basic("plexus-admin", admin_secret())}}).status,
        200);
    restart();
    EXPECT_FALSE(introspect(jwt).at("active").as_bool());
    auto fresh = token_for("plexus-admin", admin_secret());
    EXPECT_TRUE(introspect(fresh).at("active").as_bool());
}

TEST_F(IdentityTest, RotatedKeysStayPublishedWhileTheirTokensLive) {
    auto before = token_for("plexus-admin", admin_secret());
    auto old_kid = security::peek_kid(before);
    // The next key is published before it signs: a verifier that fetched the JWKS now knows it.
    auto early = security::KeySet::from_json(call("GET", "/jwks").body);
    ASSERT_TRUE(early);
    ASSERT_EQ(early->keys().size(), 2u);
    auto admin = "Bearer " + before;
    auto rotated = call("POST", "/admin/keys/rotate", {}, {{"Authorization", admin}});
    ASSERT_EQ(rotated.status, 200) << rotated.body;
    std::string new_kid(json::parse(rotated.body).at("kid").as_string());
    EXPECT_NE(new_kid, old_kid);
    EXPECT_NE(early->find(new_kid), nullptr) << "the new signing key was not published ahead";
    auto after = token_for("plexus-admin", admin_secret());
    EXPECT_EQ(security::peek_kid(after), new_kid);
    restart();
    auto keys = security::KeySet::from_json(call("GET", "/jwks").body);
    ASSERT_TRUE(keys);
    EXPECT_NE(keys->find(old_kid), nullptr);
    EXPECT_NE(keys->find(new_kid), nullptr);
    security::JwtVerifier verifier({.issuer = server_->issuer(), .audiences = {"shop"}});
    EXPECT_TRUE(verifier.verify(before, *keys));
    EXPECT_TRUE(verifier.verify(after, *keys));
    EXPECT_EQ(security::peek_kid(token_for("plexus-admin", admin_secret())), new_kid);
}

TEST_F(IdentityTest, TheRevocationWatchAnswersAsSoonAsATokenIsRevoked) {
    auto idle = json::parse(call("GET", "/revocations?since=0").body).as_object();
    EXPECT_EQ(idle.at("index").as_int64(), 0);
    EXPECT_TRUE(idle.at("revoked").as_array().empty());
    EXPECT_EQ(call("GET", "/revocations?since=-1").status, 400);
    EXPECT_EQ(call("GET", "/revocations?since=0&wait=forever").status, 400);

    auto jwt = token_for("plexus-admin", admin_secret());
    // A watch that would wait a minute, longer than any wait here: only the revocation answers it.
    auto watch = std::async(std::launch::async, [&] { return call("GET", "/revocations?since=0&wait=60s"); });
    ASSERT_TRUE(wait_until(
        [&] { return watch.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready; }));
    EXPECT_EQ(
        form("/revoke", "token=" + jwt, {{"Authorization", basic("plexus-admin", admin_secret())}}).status,
        200);
    auto answer = watch.get();
    ASSERT_EQ(answer.status, 200);
    auto doc = json::parse(answer.body).as_object();
    ASSERT_EQ(doc.at("revoked").as_array().size(), 1u);
    auto jti = std::string(doc.at("revoked").as_array()[0].at("jti").as_string());
    auto claims = security::JwtVerifier({.issuer = server_->issuer(), .audiences = {"shop"}})
                      .verify(jwt, server_->public_keys())
                      .claims;
    EXPECT_EQ(jti, claims.at("jti").as_string());
    auto index = doc.at("index").as_int64();
    EXPECT_GE(index, 1);
    // Nothing new after that index; the log survives a restart.
    EXPECT_TRUE(json::parse(call("GET", "/revocations?since=" + std::to_string(index)).body)
                    .at("revoked")
                    .as_array()
                    .empty());
    restart();
    EXPECT_EQ(json::parse(call("GET", "/revocations?since=0").body).at("revoked").as_array().size(), 1u);
}

}  // namespace
