// A person's login on `plexus up`, end to end: the admin creates a user with the CLI, the user
// runs `plexus login` (authorization code + PKCE with a loopback redirect) while this test plays
// the browser, calls a protected shop route with `plexus token`, the token is refreshed
// (rotated), and `plexus logout` revokes the login: the gateway refuses its access tokens
// within about a second.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <map>

#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
namespace json = boost::json;

namespace {

// The query parameters of a URL or a target, decoded.
std::map<std::string, std::string> query_of(const std::string& url) {
    std::map<std::string, std::string> out;
    auto q = url.find('?');
    if (q == std::string::npos) return out;
    std::string rest = url.substr(q + 1);
    auto decode = [](std::string s) {
        std::string o;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '%' && i + 2 < s.size()) {
                o.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
                i += 2;
            } else {
                o.push_back(s[i] == '+' ? ' ' : s[i]);
            }
        }
        return o;
    };
    while (!rest.empty()) {
        auto amp = rest.find('&');
        auto pair = rest.substr(0, amp);
        auto eq = pair.find('=');
        out[decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : decode(pair.substr(eq + 1));
        if (amp == std::string::npos) break;
        rest = rest.substr(amp + 1);
    }
    return out;
}

std::string encode(const std::string& s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

class PlexusLogin : public ::testing::Test {
  protected:
    void SetUp() override {
        // The token cache goes under the data dir, never into the real user's config.
        config_dir_ = d.data_dir() + "/config";
        ::setenv("XDG_CONFIG_HOME", config_dir_.c_str(), 1);
        ASSERT_TRUE(d.up()) << d.up_output() << d.supervisor_log();
    }
    void TearDown() override { ::unsetenv("XDG_CONFIG_HOME"); }

    Deployment d;
    std::string config_dir_;
};

TEST_F(PlexusLogin, LogInWithPkceCallRefreshAndLogOut) {
    const int port = d.gateway_port();
    const auto issuer = "http://127.0.0.1:" + std::to_string(port) + "/auth";
    std::string out;
    ASSERT_EQ(d.plexus("identity users create editor --role editor --scope catalog:write --json", &out), 0)
        << out;
    auto editor = json::parse(out).as_object();
    const std::string password(editor.at("password").as_string());
    ASSERT_EQ(d.plexus("identity users list", &out), 0) << out;
    EXPECT_NE(out.find("editor"), std::string::npos) << out;
    EXPECT_EQ(out.find(password), std::string::npos);

    // plexus login waits for the browser; this test is the browser.
    Process login({PLEXUS_BIN, "login", "--no-browser", "--timeout", "60s", "--data-dir", d.data_dir()},
                  {{"XDG_CONFIG_HOME", config_dir_}}, d.data_dir() + "/login.out");
    std::string url;
    ASSERT_TRUE(eventually([&] {
        auto log = login.log();
        auto at = log.find("/auth/authorize?");
        auto end = log.find('\n', at);
        if (at == std::string::npos || end == std::string::npos) return false;
        url = log.substr(at, end - at);
        return true;
    })) << login.log();
    auto page = http_get(port, url);
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_NE(page.body.find("Sign in"), std::string::npos);
    auto params = query_of(url);
    EXPECT_EQ(params["code_challenge_method"], "S256");
    std::string form;
    for (const auto& [k, v] : params) form += k + "=" + encode(v) + "&";
    // A wrong password first: the page again, no redirect.
    auto wrong = http("POST", port, "/auth/authorize", form + "username=editor&password=wrong+password",
                      {{"Content-Type", "application/x-www-form-urlencoded"}});
    EXPECT_EQ(wrong.status, 401);
    auto signed_in =
        http("POST", port, "/auth/authorize", form + "username=editor&password=" + encode(password),
             {{"Content-Type", "application/x-www-form-urlencoded"}});
    ASSERT_EQ(signed_in.status, 303) << signed_in.body;
    auto location = signed_in.headers["location"];
    ASSERT_TRUE(location.starts_with("http://127.0.0.1:")) << location;
    EXPECT_EQ(query_of(location)["iss"], issuer);
    // The browser follows the redirect to the CLI's loopback listener.
    auto colon = location.find(':', 7);
    auto slash = location.find('/', colon);
    int callback_port = std::stoi(location.substr(colon + 1, slash - colon - 1));
    auto back = http_get(callback_port, location.substr(slash));
    EXPECT_EQ(back.status, 200) << back.body;
    ASSERT_EQ(login.wait(), 0) << login.log();
    EXPECT_NE(login.log().find("Logged in to " + issuer + " as editor"), std::string::npos) << login.log();
    auto cache_file = config_dir_ + "/plexus/credentials.json";
    struct stat st{};
    ASSERT_EQ(::stat(cache_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    // The user's token opens the protected route.
    ASSERT_EQ(d.plexus("token", &out), 0) << out;
    auto first = out.substr(0, out.find('\n'));
    const std::string product = R"({"name":"Kettle","price_cents":3900})";
    auto as = [&](const std::string& token) {
        return http("POST", port, "/api/products", product,
                    {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}})
            .status;
    };
    EXPECT_EQ(as(first) / 100, 2);
    EXPECT_EQ(http("POST", port, "/api/products", product, {{"Content-Type", "application/json"}}).status,
              401);

    // Refresh: made due by ageing the cached token; `plexus token` rotates it.
    auto cache = json::parse(read_file(cache_file)).as_object();
    auto& entry = cache["issuers"].as_object()[issuer].as_object();
    const std::string first_refresh(entry.at("refresh_token").as_string());
    entry["expires_at"] = 0;
    {
        std::ofstream rewrite(cache_file, std::ios::trunc);
        rewrite << json::serialize(cache);
    }
    ASSERT_EQ(d.plexus("token", &out), 0) << out;
    auto second = out.substr(0, out.find('\n'));
    EXPECT_NE(second, first);
    EXPECT_EQ(as(second) / 100, 2);
    auto refreshed = json::parse(read_file(cache_file)).as_object();
    EXPECT_NE(refreshed.at("issuers").at(issuer).at("refresh_token").as_string(), first_refresh);

    // Logout revokes the login: the gateway refuses both access tokens within about a second.
    ASSERT_EQ(d.plexus("logout", &out), 0) << out;
    const auto revoked_at = std::chrono::steady_clock::now();
    EXPECT_TRUE(eventually([&] { return as(first) == 401 && as(second) == 401; }));
    std::printf("the gateway refused the logged-out tokens %lld ms after the logout\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - revoked_at)
                                           .count()));
    EXPECT_EQ(d.plexus("token", &out), 1);
    EXPECT_NE(out.find("not logged in"), std::string::npos) << out;

    // With no login cached, admin commands use the deployment's first admin client; every call is audited.
    auto creds = json::parse(read_file(d.data_dir() + "/identity/admin-credentials.json")).as_object();
    EXPECT_EQ(creds.at("username").as_string(), "admin");
    ASSERT_EQ(
        d.plexus("identity api-keys create 'stock importer' --scope inventory:write --expires-in 90d", &out),
        0)
        << out;
    EXPECT_NE(out.find("api_key: pxk_"), std::string::npos) << out;
    auto audit = read_file(d.data_dir() + "/identity/audit.log");
    EXPECT_NE(audit.find(R"("action":"POST /admin/api-keys")"), std::string::npos) << audit;
    EXPECT_NE(audit.find(R"("action":"POST /admin/users")"), std::string::npos) << audit;
}

}  // namespace
