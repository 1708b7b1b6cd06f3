#include "plexus/net/router.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <stdexcept>
#include <string>

using namespace plexus::net;

namespace {

// Runs a task to completion on a private io_context; rethrows what it throws.
void run(Task<void> task) {
    boost::asio::io_context io;
    std::exception_ptr error;
    bool finished = false;
    boost::asio::co_spawn(io.get_executor(), std::move(task), [&](std::exception_ptr e) {
        error = e;
        finished = true;
    });
    io.run();
    ASSERT_TRUE(finished);
    if (error) std::rethrow_exception(error);
}

// A handler that answers with its own name, so a test can tell which route ran.
Handler named(std::string name) {
    return [name](Request&, Response& res) -> Task<void> {
        res.text(200, name);
        co_return;
    };
}

Response dispatch(const Router& router, Request& req) {
    Response res;
    run(router.dispatch(req, res));
    return res;
}

Response dispatch(const Router& router, std::string method, std::string target) {
    auto req = make_request(std::move(method), std::move(target));
    return dispatch(router, req);
}

}  // namespace

// ---------------------------------------------------------------- patterns

TEST(PathPattern, MatchesLiteralPaths) {
    PathPattern p("/health/live");
    EXPECT_TRUE(p.match("/health/live", nullptr));
    EXPECT_FALSE(p.match("/health", nullptr));
    EXPECT_FALSE(p.match("/health/", nullptr));
    EXPECT_FALSE(p.match("/health/lives", nullptr));
    EXPECT_FALSE(p.match("/health/live/", nullptr));
    EXPECT_FALSE(p.match("/health/live/x", nullptr));
    EXPECT_FALSE(p.match("health/live", nullptr));
    EXPECT_FALSE(p.match("", nullptr));
    EXPECT_EQ(p.literal_count(), 2u);
    EXPECT_EQ(p.text(), "/health/live");

    PathPattern root("/");
    EXPECT_TRUE(root.match("/", nullptr));
    EXPECT_FALSE(root.match("/a", nullptr));
}

TEST(PathPattern, CapturesParameters) {
    PathPattern p("/shops/{shop}/products/{id}");
    PathParams params;
    ASSERT_TRUE(p.match("/shops/north/products/42", &params));
    ASSERT_EQ(params.size(), 2u);
    EXPECT_EQ(params[0], (std::pair<std::string, std::string>{"shop", "north"}));
    EXPECT_EQ(params[1], (std::pair<std::string, std::string>{"id", "42"}));
    EXPECT_EQ(p.literal_count(), 2u);

    EXPECT_FALSE(p.match("/shops/north/products", nullptr));
    EXPECT_FALSE(p.match("/shops/north/products/", nullptr));  // a parameter is never empty
    EXPECT_FALSE(p.match("/shops//products/42", nullptr));
    EXPECT_FALSE(p.match("/shops/north/products/42/x", nullptr));
    EXPECT_FALSE(p.match("/shops/north/items/42", nullptr));
}

TEST(PathPattern, PercentDecodesParameters) {
    PathPattern p("/files/{name}");
    PathParams params;
    ASSERT_TRUE(p.match("/files/a%20b%2Fc", &params));
    ASSERT_EQ(params.size(), 1u);
    EXPECT_EQ(params[0].second, "a b/c");
    // The literal part is compared as sent.
    EXPECT_FALSE(PathPattern("/files/a b").match("/files/a%20b", nullptr));
}

TEST(PathPattern, FailedMatchLeavesEarlierCapturesAlone) {
    PathPattern p("/a/{x}/c");
    PathParams params{{"earlier", "kept"}};
    EXPECT_FALSE(p.match("/a/1/d", &params));
    EXPECT_FALSE(p.match("/a/%zz/c", &params));  // malformed escape
    ASSERT_EQ(params.size(), 1u);
    EXPECT_EQ(params[0].first, "earlier");
    ASSERT_TRUE(p.match("/a/1/c", &params));
    ASSERT_EQ(params.size(), 2u);
    EXPECT_EQ(params[1].second, "1");
}

TEST(PathPattern, CatchAllTakesTheRest) {
    PathPattern p("/static/{path...}");
    EXPECT_EQ(p.literal_count(), 1u);
    PathParams params;
    ASSERT_TRUE(p.match("/static/css/site/main.css", &params));
    ASSERT_EQ(params.size(), 1u);
    EXPECT_EQ(params[0], (std::pair<std::string, std::string>{"path", "css/site/main.css"}));

    params.clear();
    ASSERT_TRUE(p.match("/static/", &params));
    EXPECT_EQ(params[0].second, "");
    params.clear();
    ASSERT_TRUE(p.match("/static", &params));
    EXPECT_EQ(params[0].second, "");
    EXPECT_FALSE(p.match("/stat", nullptr));
    EXPECT_FALSE(p.match("/other/x", nullptr));

    PathPattern with_param("/u/{user}/{rest...}");
    params.clear();
    ASSERT_TRUE(with_param.match("/u/ann/a/b", &params));
    ASSERT_EQ(params.size(), 2u);
    EXPECT_EQ(params[0].second, "ann");
    EXPECT_EQ(params[1].second, "a/b");
}

TEST(PathPattern, RejectsInvalidPatterns) {
    for (const char* bad : {"", "health", "/{}", "/{...}", "/{a}/{a}", "/{a}/{a...}", "/{rest...}/x", "/a{b}",
                            "/{a", "/a}", "/{a}b"}) {
        EXPECT_THROW(PathPattern{bad}, std::invalid_argument) << bad;
    }
}

// ---------------------------------------------------------------- router

TEST(Router, DispatchesByMethodAndPath) {
    Router router;
    router.add("GET", "/products", named("list"));
    router.add("POST", "/products", named("create"));
    router.add("GET", "/products/{id}", [](Request& req, Response& res) -> Task<void> {
        res.text(200, "get " + std::string(req.param("id")));
        co_return;
    });
    router.add("*", "/any", named("any"));

    EXPECT_EQ(dispatch(router, "GET", "/products").body, "list");
    EXPECT_EQ(dispatch(router, "POST", "/products?x=1").body, "create");
    EXPECT_EQ(dispatch(router, "GET", "/products/7?verbose=1").body, "get 7");
    EXPECT_EQ(dispatch(router, "DELETE", "/any").body, "any");
    EXPECT_EQ(dispatch(router, "PATCH", "/any").body, "any");
    // HEAD is answered by the GET route (the server drops the body).
    EXPECT_EQ(dispatch(router, "HEAD", "/products").body, "list");
}

TEST(Router, FillsRequestParams) {
    Router router;
    PathParams seen;
    router.add("GET", "/a/{x}/b/{y}", [&seen](Request& req, Response& res) -> Task<void> {
        seen = req.params;
        res.status = 204;
        co_return;
    });
    auto req = make_request("GET", "/a/1%2B1/b/two");
    auto res = dispatch(router, req);
    EXPECT_EQ(res.status, 204);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(req.param("x"), "1+1");
    EXPECT_EQ(req.param("y"), "two");
    EXPECT_EQ(req.param("z"), "");
}

TEST(Router, UnknownPathIsA404Problem) {
    Router router;
    router.add("GET", "/products", named("list"));
    auto res = dispatch(router, "GET", "/nothing/here");
    EXPECT_EQ(res.status, 404);
    EXPECT_EQ(res.headers.get("content-type"), "application/problem+json");
    EXPECT_NE(res.body.find(R"("status":404)"), std::string::npos) << res.body;
    EXPECT_NE(res.body.find(R"("instance":"/nothing/here")"), std::string::npos) << res.body;
}

TEST(Router, WrongMethodIsA405ProblemWithAllow) {
    Router router;
    router.add("GET", "/products/{id}", named("get"));
    router.add("DELETE", "/products/{id}", named("delete"));
    router.add("POST", "/products", named("create"));
    auto res = dispatch(router, "PUT", "/products/1");
    EXPECT_EQ(res.status, 405);
    EXPECT_EQ(res.headers.get("content-type"), "application/problem+json");
    EXPECT_EQ(res.headers.get("allow"), "GET, DELETE");
    EXPECT_NE(res.body.find(R"("status":405)"), std::string::npos) << res.body;
}

TEST(Router, AllowNamesEachMethodOnceWhenSeveralPatternsMatch) {
    Router router;
    router.add("GET", "/{app}/{profile}", named("catch-all"));
    router.add("GET", "/v1/labels", named("list"));
    router.add("PUT", "/v1/{name}", named("put"));
    auto res = dispatch(router, "DELETE", "/v1/labels");
    EXPECT_EQ(res.status, 405);
    EXPECT_EQ(res.headers.get("allow"), "GET, PUT");
}

TEST(Router, UnmatchedHandlerSeesTheRoutersAnswer) {
    Router router;
    router.add("GET", "/products", named("list"));
    std::vector<int> seen;
    router.set_unmatched([&seen](Request&, Response& res) -> Task<void> {
        seen.push_back(res.status);
        res.headers.set("X-Seen", "yes");
        co_return;
    });
    EXPECT_EQ(dispatch(router, "GET", "/products").status, 200);  // a route: not called
    auto missing = dispatch(router, "GET", "/nothing");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.headers.get("x-seen"), "yes");
    auto wrong = dispatch(router, "POST", "/products");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(wrong.headers.get("allow"), "GET");
    EXPECT_EQ(seen, (std::vector<int>{404, 405}));
}

TEST(Router, MostLiteralRouteWins) {
    Router router;
    router.add("GET", "/users/{id}", named("by id"));
    router.add("GET", "/{section}/{item}", named("generic"));
    router.add("GET", "/users/me", named("me"));
    router.add("GET", "/{all...}", named("fallback"));
    EXPECT_EQ(dispatch(router, "GET", "/users/me").body, "me");
    EXPECT_EQ(dispatch(router, "GET", "/users/42").body, "by id");
    EXPECT_EQ(dispatch(router, "GET", "/shops/3").body, "generic");
    EXPECT_EQ(dispatch(router, "GET", "/a/b/c").body, "fallback");
}

TEST(Router, TiesGoToTheFirstRouteAdded) {
    Router router;
    router.add("GET", "/a/{x}", named("first"));
    router.add("GET", "/{y}/b", named("second"));
    EXPECT_EQ(dispatch(router, "GET", "/a/b").body, "first");
}

TEST(Router, MalformedEscapeInAParameterDoesNotReachTheHandler) {
    Router router;
    bool called = false;
    router.add("GET", "/files/{name}", [&called](Request&, Response& res) -> Task<void> {
        called = true;
        res.status = 200;
        co_return;
    });
    router.add("PUT", "/files/{name}", named("put"));
    auto res = dispatch(router, "GET", "/files/%zz");
    EXPECT_FALSE(called);
    EXPECT_EQ(res.status, 400);  // not 404, nor a 405 listing PUT
    EXPECT_NE(res.body.find("malformed percent-escape"), std::string::npos) << res.body;
    EXPECT_FALSE(res.headers.get("Allow"));
    EXPECT_EQ(dispatch(router, "DELETE", "/files/%zz").status, 405);  // no route for the method
}

TEST(Router, BodyLimitPerRoute) {
    Router router;
    router.add("POST", "/upload", named("upload"), 10 * 1024 * 1024);
    router.add("POST", "/small", named("small"), 16);
    router.add("POST", "/default", named("default"));
    auto limit = router.body_limit_fn();
    EXPECT_EQ(router.body_limit(make_request("POST", "/upload")), 10u * 1024 * 1024);
    EXPECT_EQ(limit(make_request("POST", "/small?x=1")), 16u);
    EXPECT_EQ(limit(make_request("POST", "/default")), 0u);
    EXPECT_EQ(limit(make_request("POST", "/unknown")), 0u);
    EXPECT_EQ(limit(make_request("GET", "/small")), 0u);  // a 405 takes the server default
}

TEST(Router, HandlerRunsTheRouteAndPropagatesErrors) {
    Router router;
    router.add("GET", "/teapot", [](Request&, Response&) -> Task<void> {
        throw HttpError(418, "I'm a teapot", "short and stout");
        co_return;
    });
    auto handler = router.handler();
    Request req = make_request("GET", "/teapot");
    Response res;
    try {
        run(handler(req, res));
        FAIL() << "expected HttpError";
    } catch (const HttpError& e) {
        EXPECT_EQ(e.status(), 418);
        EXPECT_EQ(e.title(), "I'm a teapot");
        EXPECT_STREQ(e.what(), "short and stout");
    }
}
