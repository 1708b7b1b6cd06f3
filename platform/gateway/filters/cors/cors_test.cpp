// CORS preflights and the headers on actual requests, without a network.

#include "cors/cors.hpp"

#include <gtest/gtest.h>

#include "filter_testing.hpp"
#include "plexus/core/settings.hpp"

using namespace plexus;
using gateway::testing::FilterHarness;

namespace {

const std::string kShop =
    "      - name: cors\n"
    "        allow_origins: [\"https://shop.example\"]\n"
    "        allow_methods: [GET, POST]\n"
    "        allow_headers: [Content-Type, Authorization]\n"
    "        expose_headers: [X-Request-Id]\n"
    "        allow_credentials: true\n"
    "        max_age: 10m\n";

std::string header(const net::Response& r, std::string_view name) {
    return std::string(r.headers.get(name).value_or("(none)"));
}

TEST(CorsFilter, AnswersAnAllowedPreflightItself) {
    FilterHarness h(kShop);
    auto res = h.request("OPTIONS", "/api/products", "127.0.0.1",
                         {{"Origin", "https://shop.example"},
                          {"Access-Control-Request-Method", "POST"},
                          {"Access-Control-Request-Headers", "content-type, authorization"}});
    EXPECT_EQ(res.status, 204);
    EXPECT_EQ(res.body, "");  // not the upstream's
    EXPECT_EQ(header(res, "Access-Control-Allow-Origin"), "https://shop.example");
    EXPECT_EQ(header(res, "Access-Control-Allow-Methods"), "GET, POST");
    EXPECT_EQ(header(res, "Access-Control-Allow-Headers"), "Content-Type, Authorization");
    EXPECT_EQ(header(res, "Access-Control-Allow-Credentials"), "true");
    EXPECT_EQ(header(res, "Access-Control-Max-Age"), "600");
    EXPECT_EQ(header(res, "Vary"), "Origin");
}

TEST(CorsFilter, RefusesPreflightsForOtherOriginsMethodsOrHeaders) {
    FilterHarness h(kShop);
    auto other_origin =
        h.request("OPTIONS", "/x", "127.0.0.1",
                  {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}});
    EXPECT_EQ(other_origin.status, 403);
    EXPECT_EQ(header(other_origin, "Access-Control-Allow-Origin"), "(none)");
    auto other_method =
        h.request("OPTIONS", "/x", "127.0.0.1",
                  {{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "DELETE"}});
    EXPECT_EQ(other_method.status, 403);
    auto other_header = h.request("OPTIONS", "/x", "127.0.0.1",
                                  {{"Origin", "https://shop.example"},
                                   {"Access-Control-Request-Method", "GET"},
                                   {"Access-Control-Request-Headers", "X-Secret"}});
    EXPECT_EQ(other_header.status, 403);
}

TEST(CorsFilter, MarksAnswersToAllowedOriginsAndLeavesOthersUnmarked) {
    FilterHarness h(kShop);
    auto allowed = h.request("GET", "/x", "127.0.0.1", {{"Origin", "https://shop.example"}});
    EXPECT_EQ(allowed.status, 200);
    EXPECT_EQ(allowed.body, "ok");
    EXPECT_EQ(header(allowed, "Access-Control-Allow-Origin"), "https://shop.example");
    EXPECT_EQ(header(allowed, "Access-Control-Expose-Headers"), "X-Request-Id");
    EXPECT_EQ(header(allowed, "Vary"), "Origin");

    auto other = h.request("GET", "/x", "127.0.0.1", {{"Origin", "https://evil.example"}});
    EXPECT_EQ(other.status, 200);  // served; the browser keeps it from the page
    EXPECT_EQ(header(other, "Access-Control-Allow-Origin"), "(none)");
    EXPECT_EQ(header(other, "Vary"), "Origin");

    auto same_origin = h.request("GET", "/x");  // no Origin: not a CORS request
    EXPECT_EQ(header(same_origin, "Access-Control-Allow-Origin"), "(none)");
    EXPECT_EQ(header(same_origin, "Vary"), "(none)");

    // An OPTIONS without Access-Control-Request-Method is an ordinary request for the upstream.
    auto options = h.request("OPTIONS", "/x", "127.0.0.1", {{"Origin", "https://shop.example"}});
    EXPECT_EQ(options.body, "ok");
}

TEST(CorsFilter, AnyOriginIsAStar) {
    FilterHarness h("      - name: cors\n        allow_origins: [\"*\"]\n");
    auto res = h.request("GET", "/x", "127.0.0.1", {{"Origin", "https://anyone.example"}});
    EXPECT_EQ(header(res, "Access-Control-Allow-Origin"), "*");
    EXPECT_EQ(header(res, "Vary"), "(none)");
}

TEST(CorsFilter, RefusesSettingsBrowsersWouldReject) {
    auto error_of = [](const std::string& s) -> std::string {
        try {
            FilterHarness h("      - name: cors\n" + s);
        } catch (const core::SettingsError& e) {
            return e.what();
        }
        return "accepted";
    };
    EXPECT_EQ(error_of("        allow_origins: [\"*\"]\n        allow_credentials: true\n"),
              "r.yaml:8: routes[0].filters[0].allow_credentials: cannot be true with allow_origins \"*\"");
    EXPECT_EQ(error_of("        allow_origins: [\"https://shop.example/path\"]\n"),
              "r.yaml:7: routes[0].filters[0].allow_origins: 'https://shop.example/path' is not an origin "
              "(scheme://host[:port])");
    EXPECT_EQ(error_of("        allow_origins: [\"*\", \"https://a.example\"]\n"),
              "r.yaml:7: routes[0].filters[0].allow_origins: \"*\" stands alone");
}

}  // namespace
