// plexus::Service run in process on its own thread, as a service's main() runs it: flags, routes,
// problem answers, health, metrics, correlation ids, deadlines, registration and the SIGTERM stop,
// checked with real HTTP requests on loopback. The service listens on port 0 and the tests read
// the port from its "listening" log line (captured by a log sink). Every wait is bounded by kWait.

#include "plexus/service.hpp"

#include "sdk_fixture.hpp"

namespace {

Task<Response> hello(Request& req) {
    if (req.param("name").size() > 8) throw plexus::HttpError(400, "Bad Request", "name too long");
    co_return plexus::json_response(200, json::serialize(json::object{{"hello", req.param("name")}}));
}

}  // namespace

TEST_F(SdkService, RouteWithParamAnswersAndSigtermStopsWithZero) {
    svc_.get("/hello/{name}", hello);
    ASSERT_NO_FATAL_FAILURE(start());

    auto res = call("GET", "/hello/ada");
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(header(res, "Content-Type"), "application/json");
    EXPECT_EQ(member(parse_object(res.body), "hello"), R"("ada")");
    EXPECT_EQ(call("GET", "/hello/grace").body, R"({"hello":"grace"})");

    EXPECT_EQ(stop(), 0);
    EXPECT_EQ(logs_.with_msg("shutting down").size(), 1u);
    EXPECT_EQ(logs_.with_msg("stopped").size(), 1u);
}

TEST_F(SdkService, UnknownPathIsProblem404AndWrongMethod405) {
    svc_.get("/hello/{name}", hello);
    ASSERT_NO_FATAL_FAILURE(start());

    auto res = call("GET", "/no/such/path");
    EXPECT_EQ(res.status, 404);
    EXPECT_EQ(header(res, "Content-Type"), "application/problem+json");
    auto problem = parse_object(res.body);
    EXPECT_EQ(member(problem, "status"), "404");
    EXPECT_EQ(member(problem, "title"), R"("Not Found")");

    auto wrong = call("DELETE", "/hello/ada");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(header(wrong, "Content-Type"), "application/problem+json");
    EXPECT_NE(header(wrong, "Allow").find("GET"), std::string::npos) << header(wrong, "Allow");

    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, UnmatchedRequestsAreServedRequestsToo) {
    svc_.get("/hello/{name}", hello);
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string missing = R"(plexus_http_requests_total{route="-",method="GET",code_class="4xx"})";
    const std::string wrong = R"(plexus_http_requests_total{route="-",method="DELETE",code_class="4xx"})";
    auto before = call("GET", "/metrics").body;  // process-wide registry: compare, do not assume zero

    auto res = call("GET", "/no/such/path", {{"X-Request-Id", "lost-1"}});
    EXPECT_EQ(res.status, 404);
    EXPECT_EQ(header(res, "X-Request-Id"), "lost-1");
    EXPECT_EQ(call("DELETE", "/hello/ada").status, 405);

    auto after = call("GET", "/metrics").body;
    EXPECT_EQ(sample(after, missing).value_or(-1), sample(before, missing).value_or(0) + 1) << after;
    EXPECT_EQ(sample(after, wrong).value_or(-1), sample(before, wrong).value_or(0) + 1) << after;
    bool logged = false;
    for (const auto& line : logs_.with_msg("access")) {
        if (member(line, "path") == R"("/no/such/path")") {
            logged = true;
            EXPECT_EQ(member(line, "status"), "404");
            EXPECT_EQ(member(line, "route"), R"("-")");
            EXPECT_EQ(member(line, "request_id"), R"("lost-1")");
        }
    }
    EXPECT_TRUE(logged);
    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, HttpErrorBecomesProblemWithItsStatusAndOtherExceptionsA500) {
    svc_.get("/hello/{name}", hello);
    svc_.get("/broken", [](Request&) -> Task<Response> {
        throw std::runtime_error("secret internals");
        co_return Response{};
    });
    ASSERT_NO_FATAL_FAILURE(start());

    auto res = call("GET", "/hello/far-too-long-a-name");
    EXPECT_EQ(res.status, 400);
    EXPECT_EQ(header(res, "Content-Type"), "application/problem+json");
    auto problem = parse_object(res.body);
    EXPECT_EQ(member(problem, "status"), "400");
    EXPECT_EQ(member(problem, "title"), R"("Bad Request")");
    EXPECT_EQ(member(problem, "detail"), R"("name too long")");
    EXPECT_EQ(member(problem, "instance"), R"("/hello/far-too-long-a-name")");

    auto broken = call("GET", "/broken");
    EXPECT_EQ(broken.status, 500);
    EXPECT_EQ(header(broken, "Content-Type"), "application/problem+json");
    EXPECT_EQ(broken.body.find("secret internals"), std::string::npos) << broken.body;
    auto failures = logs_.with_msg("handler failed");
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(member(failures[0], "error"), R"("secret internals")");

    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, HealthLiveAnswers200) {
    ASSERT_NO_FATAL_FAILURE(start());
    auto res = call("GET", "/health/live");
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(member(parse_object(res.body), "status"), R"("pass")");
    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, HealthReadyFollowsReadinessChecks) {
    auto database_up = std::make_shared<std::atomic<bool>>(false);
    svc_.add_readiness_check("database", [database_up] { return database_up->load(); });
    svc_.add_readiness_check("cache", [] { return true; });
    ASSERT_NO_FATAL_FAILURE(start());

    auto down = call("GET", "/health/ready");
    EXPECT_EQ(down.status, 503);
    auto body = parse_object(down.body);
    EXPECT_EQ(member(body, "status"), R"("fail")");
    EXPECT_EQ(member(body, "checks"), R"({"database":"fail","cache":"pass"})");

    database_up->store(true);
    auto up = call("GET", "/health/ready");
    EXPECT_EQ(up.status, 200);
    body = parse_object(up.body);
    EXPECT_EQ(member(body, "status"), R"("pass")");
    EXPECT_EQ(member(body, "checks"), R"({"database":"pass","cache":"pass"})");

    database_up->store(false);  // and back: checks run at every probe
    EXPECT_EQ(call("GET", "/health/ready").status, 503);

    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, MetricsCountRequestsByRouteAndStatusClass) {
    svc_.get("/metered/{id}", [](Request& req) -> Task<Response> {
        if (req.param("id") == "bad") throw plexus::HttpError(400, "Bad Request", "bad id");
        co_return plexus::json_response(200, "{}");
    });
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string ok =
        R"(plexus_http_requests_total{route="/metered/{id}",method="GET",code_class="2xx"})";
    const std::string bad =
        R"(plexus_http_requests_total{route="/metered/{id}",method="GET",code_class="4xx"})";
    const std::string timed = R"(plexus_http_request_duration_seconds_count{route="/metered/{id}"})";
    // The metrics registry is process-wide: earlier runs in this process (--gtest_repeat) have
    // counted too, so compare with what it says now. The route's series exist from the start.
    auto before = call("GET", "/metrics").body;
    ASSERT_TRUE(sample(before, ok) && sample(before, bad) && sample(before, timed)) << before;

    for (auto id : {"1", "2", "3"}) EXPECT_EQ(call("GET", std::string("/metered/") + id).status, 200);
    EXPECT_EQ(call("GET", "/metered/bad").status, 400);

    auto res = call("GET", "/metrics");
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(header(res, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(res.body.find("# TYPE plexus_http_requests_total counter\n"), std::string::npos);
    EXPECT_EQ(sample(res.body, ok).value_or(-1), *sample(before, ok) + 3) << res.body;
    EXPECT_EQ(sample(res.body, bad).value_or(-1), *sample(before, bad) + 1) << res.body;
    EXPECT_EQ(sample(res.body, timed).value_or(-1), *sample(before, timed) + 4) << res.body;

    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, ClientRequestIdIsEchoedAndLoggedOtherwiseOneIsMade) {
    auto seen = std::make_shared<std::string>();
    svc_.get("/whoami", [seen](Request& req) -> Task<Response> {
        *seen = std::string(req.headers.get("X-Request-Id").value_or(""));  // one request at a time
        co_return plexus::json_response(200, "{}");
    });
    ASSERT_NO_FATAL_FAILURE(start());

    auto res = call("GET", "/whoami", {{"X-Request-Id", "corr-42-abc"}});
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(header(res, "X-Request-Id"), "corr-42-abc");
    EXPECT_EQ(*seen, "corr-42-abc");  // the handler (and its downstream calls) see it too

    auto made = call("GET", "/whoami");
    auto made_id = header(made, "X-Request-Id");
    EXPECT_FALSE(made_id.empty());
    EXPECT_EQ(*seen, made_id);

    std::string oversized(200, 'x');
    auto replaced = call("GET", "/whoami", {{"X-Request-Id", oversized}});
    EXPECT_NE(header(replaced, "X-Request-Id"), oversized);
    EXPECT_FALSE(header(replaced, "X-Request-Id").empty());
    auto spaced = call("GET", "/whoami", {{"X-Request-Id", "two words"}});  // not a sane id either
    EXPECT_EQ(header(spaced, "X-Request-Id").size(), 32u) << header(spaced, "X-Request-Id");

    // The access-log line of the first request carries the id.
    bool logged = false;
    for (const auto& line : logs_.with_msg("access")) {
        if (member(line, "request_id") == R"("corr-42-abc")") {
            logged = true;
            EXPECT_EQ(member(line, "route"), R"("/whoami")");
            EXPECT_EQ(member(line, "status"), "200");
        }
    }
    EXPECT_TRUE(logged);

    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, IncomingTraceparentIsContinued) {
    auto seen = std::make_shared<std::string>();
    svc_.get("/traced", [seen](Request& req) -> Task<Response> {
        *seen = std::string(req.headers.get("traceparent").value_or(""));
        co_return plexus::json_response(200, "{}");
    });
    ASSERT_NO_FATAL_FAILURE(start());

    const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    const std::string parent_span = "00f067aa0ba902b7";
    EXPECT_EQ(call("GET", "/traced", {{"traceparent", "00-" + trace_id + "-" + parent_span + "-01"}}).status,
              200);
    // 00-<trace id>-<the server span's own id>-<flags>
    ASSERT_EQ(seen->size(), 55u) << *seen;
    EXPECT_EQ(seen->substr(3, 32), trace_id);
    EXPECT_NE(seen->substr(36, 16), parent_span);

    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, SpentDeadlineAnswers504WithoutRunningTheHandler) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto budget_ms = std::make_shared<std::atomic<long long>>(-1);
    svc_.get("/work", [calls, budget_ms](Request& req) -> Task<Response> {
        ++*calls;
        budget_ms->store(std::chrono::duration_cast<std::chrono::milliseconds>(
                             req.deadline - std::chrono::steady_clock::now())
                             .count());
        co_return plexus::json_response(200, "{}");
    });
    ASSERT_NO_FATAL_FAILURE(start());

    auto spent = call("GET", "/work", {{"X-Plexus-Deadline-Ms", "0"}});
    EXPECT_EQ(spent.status, 504);
    EXPECT_EQ(header(spent, "Content-Type"), "application/problem+json");
    EXPECT_EQ(member(parse_object(spent.body), "status"), "504");
    EXPECT_EQ(calls->load(), 0);

    // A budget left: the handler runs, with the deadline it implies.
    EXPECT_EQ(call("GET", "/work", {{"X-Plexus-Deadline-Ms", "5000"}}).status, 200);
    EXPECT_EQ(calls->load(), 1);
    EXPECT_GT(budget_ms->load(), 0);
    EXPECT_LE(budget_ms->load(), 5000);

    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, SigtermLetsAnInFlightRequestFinish) {
    auto entered = std::make_shared<std::atomic<bool>>(false);
    auto released = std::make_shared<std::atomic<bool>>(false);
    auto release = std::make_shared<net::Signal>();
    svc_.get("/slow", [entered, released, release](Request&) -> Task<Response> {
        auto seen = release->epoch();
        entered->store(true);
        if (!released->load()) co_await release->wait(kWait, seen);
        co_return plexus::json_response(200, R"({"done":true})");
    });
    ASSERT_NO_FATAL_FAILURE(start());

    auto slow = call_async("/slow");
    ASSERT_TRUE(wait_until([&] { return entered->load(); }));
    send_sigterm();
    ASSERT_TRUE(wait_until([&] { return !logs_.with_msg("shutting down").empty(); }));
    EXPECT_FALSE(exited()) << "run() returned with a request in flight";

    released->store(true);
    release->notify_all();
    auto res = wait(slow);
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, R"({"done":true})");
    EXPECT_EQ(header(*res, "Connection"), "close");
    EXPECT_EQ(wait_exit(), 0);
}

TEST_F(SdkService, BadFlagsMakeRunReturnTwo) {
    const std::vector<Flags> bad{
        {{"--threads", "many"}},        {{"--threads", "257"}},
        {{"--log-level", "loud"}},      {{"--listen", "nowhere"}},
        {{"--heartbeat", "0s"}},        {{"--heartbeat", "2s"}, {"--ttl", "1s"}},
        {{"--check-interval", "10ms"}}, {{"--registry", "not a url"}},
    };
    for (const auto& overrides : bad) {
        std::string shown;
        for (const auto& [k, v] : overrides) shown += k + " " + v + " ";
        SCOPED_TRACE(shown);
        plexus::Service svc{kName};
        EXPECT_EQ(run_expecting_exit(svc, flags(overrides)), 2);
    }
    EXPECT_TRUE(logs_.with_msg("listening").empty());
}

// A flag the parser itself rejects (unknown, missing value) is a bad flag like the others: 2.
TEST_F(SdkService, UnknownFlagStopsStartupWithTwo) {
    auto args = flags();
    args.push_back("--no-such-flag");
    EXPECT_EQ(run_expecting_exit(svc_, args), 2);
    EXPECT_TRUE(logs_.with_msg("listening").empty());
}

TEST_F(SdkService, FailedOnStartMakesRunReturnOne) {
    svc_.on_start([] { throw std::runtime_error("database is locked"); });
    EXPECT_EQ(run_expecting_exit(svc_, flags()), 1);
    auto failed = logs_.with_msg("startup failed");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(member(failed[0], "error"), R"("database is locked")");
}

TEST_F(SdkService, PortInUseMakesRunReturnOne) {
    ClosedPort taken;  // bound by this process, so the service cannot bind it
    EXPECT_EQ(run_expecting_exit(svc_, flags({{"--listen", taken.address()}})), 1);
    EXPECT_EQ(logs_.with_msg("cannot listen").size(), 1u);
}

TEST_F(SdkService, RegistersItsPortAndDeregistersOnSigterm) {
    plexus::discovery::test::InProcessRegistry registry;
    svc_.set_metadata("version", "1.2.3");
    ASSERT_NO_FATAL_FAILURE(start(
        {{"--registry", "http://" + registry.endpoint().to_string()}, {"--instance-id", "sdk-test-1"}}));

    auto snapshot = [&] {
        return registry.run(plexus::discovery::test::owned(
            // watch() takes the name by reference: it must live in `owned`'s frame, not be a temporary.
            [c = registry.client(), service = std::string(kName)] {
                return c.watch(service, 0, 0ms, /*all=*/true);
            }));
    };
    std::optional<plexus::discovery::InstanceInfo> self;
    ASSERT_TRUE(wait_until([&] {
        auto snap = snapshot();
        if (snap && !snap->instances.empty()) self = snap->instances.front();
        return self.has_value();
    })) << "the service did not register";
    EXPECT_EQ(self->id, "sdk-test-1");
    EXPECT_EQ(self->address, "127.0.0.1");
    EXPECT_EQ(self->port, port_);
    EXPECT_EQ(self->ttl, 5s);
    EXPECT_EQ(self->metadata, (std::map<std::string, std::string>{{"version", "1.2.3"}}));
    ASSERT_TRUE(self->check.has_value());
    EXPECT_EQ(self->check->http, "/health/ready");
    EXPECT_EQ(self->check->interval, 1s);
    EXPECT_EQ(self->check->timeout, 500ms);

    EXPECT_EQ(stop(), 0);
    auto after = snapshot();
    ASSERT_TRUE(after);
    EXPECT_TRUE(after->instances.empty());
    EXPECT_EQ(logs_.with_msg("deregistered").size(), 1u);
}

// ---------------------------------------------------------------- clients: failures and fallbacks

namespace {

// An upstream on its own runtime: GET /ok answers 200, /fail 500, /slow after 30 s.
// An HTTP server on a runtime of its own: subclasses add routes to router_, then start().
class TestServer {
  public:
    // Terminal stop: handlers still sleeping are destroyed with the runtime's work.
    ~TestServer() {
        runtime_.stop();
        if (runner_.joinable()) runner_.join();
        server_.reset();
    }
    std::uint16_t port() const { return server_->port(); }

  protected:
    void start() {
        server_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_.handler(),
                                                router_.body_limit_fn());
        server_->start();
        runner_ = std::thread([this] { runtime_.run(); });
    }
    net::Router router_;

  private:
    net::Runtime runtime_{1};
    std::unique_ptr<net::Server> server_;
    std::thread runner_;
};

class Upstream : public TestServer {
  public:
    Upstream() {
        router_.add("GET", "/ok", [](net::Request&, net::Response& res) -> net::Task<void> {
            res.json(200, R"({"from":"upstream"})");
            co_return;
        });
        router_.add("GET", "/fail", [](net::Request&, net::Response& res) -> net::Task<void> {
            res.json(500, R"({"upstream":"broke"})");
            co_return;
        });
        router_.add("GET", "/slow", [](net::Request&, net::Response& res) -> net::Task<void> {
            co_await net::sleep_for(30s);
            res.json(200, R"({"from":"upstream, late"})");
        });
        start();
    }
};

// ---------------------------------------------------------------- components

// A component that records its start and stop in a shared journal.
struct Journal {
    std::mutex mutex;
    std::vector<std::string> events;
    void add(std::string e) {
        std::lock_guard lock(mutex);
        events.push_back(std::move(e));
    }
    std::vector<std::string> all() {
        std::lock_guard lock(mutex);
        return events;
    }
};

class Recorded final : public plexus::Component {
  public:
    Recorded(std::string name, std::vector<std::string> deps, Journal& journal, bool fail_start = false)
        : name_(std::move(name)), deps_(std::move(deps)), journal_(journal), fail_start_(fail_start) {}
    std::string name() const override { return name_; }
    std::vector<std::string> depends_on() const override { return deps_; }
    plexus::Task<void> start() override {
        co_await net::sleep_for(5ms);  // a start that waits, as a real one does
        if (fail_start_) throw std::runtime_error(name_ + " cannot connect");
        journal_.add("start " + name_);
    }
    bool ready() const override { return ready_.load(); }
    plexus::Task<void> stop() override {
        journal_.add("stop " + name_);
        co_return;
    }
    std::atomic<bool> ready_{true};

  private:
    std::string name_;
    std::vector<std::string> deps_;
    Journal& journal_;
    bool fail_start_;
};

TEST_F(SdkService, ComponentsStartInDependencyOrderCountInReadinessAndStopInReverse) {
    Journal journal;
    auto api = std::make_shared<Recorded>("api", std::vector<std::string>{"db", "cache"}, journal);
    auto cache = std::make_shared<Recorded>("cache", std::vector<std::string>{"db"}, journal);
    auto db = std::make_shared<Recorded>("db", std::vector<std::string>{}, journal);
    svc_.add_component(api);
    svc_.add_component(cache);
    svc_.add_component(db);
    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_EQ(journal.all(), (std::vector<std::string>{"start db", "start cache", "start api"}));

    EXPECT_EQ(call("GET", "/health/ready").status, 200);
    cache->ready_ = false;
    auto not_ready = call("GET", "/health/ready");
    EXPECT_EQ(not_ready.status, 503);
    auto checks = json::parse(not_ready.body).as_object().at("checks").as_object();
    EXPECT_EQ(checks.at("cache").as_string(), "fail");
    EXPECT_EQ(checks.at("db").as_string(), "pass");
    cache->ready_ = true;
    EXPECT_EQ(call("GET", "/health/ready").status, 200);

    EXPECT_EQ(stop(), 0);
    EXPECT_EQ(journal.all(), (std::vector<std::string>{"start db", "start cache", "start api", "stop api",
                                                       "stop cache", "stop db"}));
}

TEST_F(SdkService, AComponentThatFailsToStartStopsTheOnesStartedAndRunReturnsOne) {
    Journal journal;
    svc_.add_component(std::make_shared<Recorded>("db", std::vector<std::string>{}, journal));
    svc_.add_component(std::make_shared<Recorded>("broker", std::vector<std::string>{"db"}, journal, true));
    svc_.add_component(std::make_shared<Recorded>("api", std::vector<std::string>{"broker"}, journal));
    EXPECT_EQ(run_expecting_exit(svc_, flags()), 1);
    EXPECT_EQ(journal.all(), (std::vector<std::string>{"start db", "stop db"}));
    auto failed = logs_.with_msg("component failed to start");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(member(failed[0], "component"), R"("broker")");
    EXPECT_EQ(member(failed[0], "error"), R"("broker cannot connect")");
    EXPECT_TRUE(logs_.with_msg("listening").empty());
}

TEST_F(SdkService, ComponentWiringMistakesMakeRunReturnTwo) {
    Journal journal;
    {
        plexus::Service svc{kName};
        svc.add_component(std::make_shared<Recorded>("a", std::vector<std::string>{"b"}, journal));
        svc.add_component(std::make_shared<Recorded>("b", std::vector<std::string>{"c"}, journal));
        svc.add_component(std::make_shared<Recorded>("c", std::vector<std::string>{"a"}, journal));
        EXPECT_EQ(run_expecting_exit(svc, flags()), 2);
    }
    {
        plexus::Service svc{kName};
        svc.add_component(std::make_shared<Recorded>("a", std::vector<std::string>{"nosuch"}, journal));
        EXPECT_EQ(run_expecting_exit(svc, flags()), 2);
    }
    {
        plexus::Service svc{kName};
        svc.add_component(std::make_shared<Recorded>("a", std::vector<std::string>{}, journal));
        svc.add_component(std::make_shared<Recorded>("a", std::vector<std::string>{}, journal));
        EXPECT_EQ(run_expecting_exit(svc, flags()), 2);
    }
    EXPECT_TRUE(journal.all().empty());  // nothing was started
}

}  // namespace

TEST_F(SdkService, ClientFailuresAnswerAsProblemsOrThePolicyFallback) {
    using plexus::discovery::test::instance;
    plexus::discovery::test::InProcessRegistry registry;
    Upstream upstream;
    ClosedPort closed;
    // "stock" and "stock-fb" are the same upstream; "dead" accepts no connection; "nothing" has no
    // instance at all.
    ASSERT_FALSE(registry.register_instance(instance("stock", "stock-1", upstream.port())));
    ASSERT_FALSE(registry.register_instance(instance("stock-fb", "stock-fb-1", upstream.port())));
    ASSERT_FALSE(registry.register_instance(instance("dead", "dead-1", closed.port())));

    plexus::resilience::CallPolicy short_calls;
    short_calls.timeout = 300ms;
    short_calls.retry.attempts = 1;
    svc_.client("stock").set_policy(short_calls);
    auto with_fallback = short_calls;
    with_fallback.fallback.enabled = true;
    with_fallback.fallback.status = 200;
    with_fallback.fallback.body = R"({"from":"fallback"})";
    svc_.client("stock-fb").set_policy(with_fallback);
    // No code fallback anywhere: failures take the policy's fallback or become HttpErrors.
    svc_.get("/call/{service}/{what}", [this](Request& req) -> Task<Response> {
        co_return co_await svc_.client(std::string(req.param("service")))
            .get(req, "/" + std::string(req.param("what")));
    });
    ASSERT_NO_FATAL_FAILURE(start(
        {{"--registry", "http://" + registry.endpoint().to_string()}, {"--instance-id", "sdk-test-1"}}));

    auto ok = call("GET", "/call/stock/ok");
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.body, R"({"from":"upstream"})");

    // The upstream's own 5xx comes back as it is, for the caller to judge.
    auto failed = call("GET", "/call/stock/fail");
    EXPECT_EQ(failed.status, 500);
    EXPECT_EQ(failed.body, R"({"upstream":"broke"})");

    struct Problem {
        std::string target;
        int status;
        std::string detail;
    };
    for (const auto& p : {Problem{"/call/stock/slow", 504, "stock did not answer within 300ms"},
                          Problem{"/call/nothing/ok", 503, "no healthy instance of nothing"},
                          Problem{"/call/dead/ok", 502, "dead failed: "}}) {
        auto res = call("GET", p.target);
        EXPECT_EQ(res.status, p.status) << p.target << ": " << res.body;
        EXPECT_EQ(header(res, "content-type"), "application/problem+json") << p.target;
        auto problem = parse_object(res.body);
        EXPECT_EQ(member(problem, "status"), std::to_string(p.status)) << p.target;
        EXPECT_EQ(member(problem, "detail").rfind("\"" + p.detail, 0), 0u) << p.target << ": " << res.body;
    }

    // With the policy's fallback: the static answer, marked with why.
    for (const auto& [what, why] : {std::pair{"slow", "timeout"}, std::pair{"fail", "status"}}) {
        auto res = call("GET", std::string("/call/stock-fb/") + what);
        EXPECT_EQ(res.status, 200) << what << ": " << res.body;
        EXPECT_EQ(res.body, R"({"from":"fallback"})") << what;
        EXPECT_EQ(header(res, "x-plexus-fallback"), why) << what;
    }

    auto metrics = call("GET", "/metrics").body;
    for (const auto& [service, kind] :
         {std::pair{"stock", "timeout"}, std::pair{"nothing", "no_instance"},
          std::pair{"dead", "connect_failure"}, std::pair{"stock-fb", "timeout"}}) {
        auto series =
            std::string("plexus_client_errors_total{service=\"") + service + "\",kind=\"" + kind + "\"}";
        EXPECT_EQ(sample(metrics, series), 1.0) << series << "\n" << metrics;
    }
    EXPECT_EQ(stop(), 0);
}

// ---------------------------------------------------------------- credentials

namespace {

// The platform's identity server on a runtime of its own, with a workload client "svc" (scope
// things:write) provisioned into `credentials`.
class Identity {
  public:
    explicit Identity(const std::filesystem::path& dir) : credentials((dir / "svc.json").string()) {
        plexus::identity::Settings s;
        s.data_dir = (dir / "identity").string();
        std::filesystem::create_directories(s.data_dir);
        s.issuer = "http://127.0.0.1:8080/auth";
        s.provision = {{"svc", {"things:write"}, credentials}};
        server_ = std::make_unique<plexus::identity::Server>(s, metrics_);
        server_->add_routes(router_);
        http_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_.handler(),
                                              router_.body_limit_fn());
        http_->start();
        runner_ = std::thread([this] { runtime_.run(); });
    }
    ~Identity() {
        server_->stop_watches();
        runtime_.stop();
        runner_.join();
        http_.reset();
        server_.reset();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(http_->port()); }

    // A client-credentials access token of a new client with `scopes`.
    std::string token(std::vector<std::string> scopes) {
        plexus::identity::ClientInfo info;
        info.name = "caller";
        info.scopes = scopes;
        auto [client, secret] = server_->create_client(info);
        std::string scope;
        for (const auto& s : scopes) scope += (scope.empty() ? "" : "+") + s;
        auto res = post("/token", "grant_type=client_credentials&scope=" + scope +
                                      "&client_id=" + client.client_id + "&client_secret=" + secret);
        return std::string(json::parse(res.body).at("access_token").as_string());
    }
    // An API key for subject `subject` with `scopes`.
    std::string api_key(const std::string& subject, std::vector<std::string> scopes) {
        plexus::identity::ApiKeyInfo info;
        info.name = "key";
        info.subject = subject;
        info.scopes = std::move(scopes);
        return server_->create_api_key(info).second;
    }

    std::string credentials;

  private:
    Response post(std::string target, std::string form) {
        auto req = net::make_request("POST", std::move(target), std::move(form),
                                     "application/x-www-form-urlencoded");
        auto r = net::run_blocking(runtime_.executor(0),
                                   send_owned({"127.0.0.1", http_->port()}, std::move(req), 5s), kWait);
        if (!r || !*r) throw std::runtime_error("identity did not answer");
        return std::move(**r);
    }

    plexus::telemetry::Registry metrics_;
    net::Runtime runtime_{1};
    net::Router router_;
    std::unique_ptr<plexus::identity::Server> server_;
    std::unique_ptr<net::Server> http_;
    std::thread runner_;
};

// An upstream that answers with the Authorization header it was sent.
class AuthEcho : public TestServer {
  public:
    AuthEcho() {
        router_.add("GET", "/whoami", [](net::Request& req, net::Response& res) -> net::Task<void> {
            res.json(200,
                     json::serialize(json::object{
                         {"authorization", std::string(req.headers.get("Authorization").value_or(""))}}));
            co_return;
        });
        start();
    }
};

}  // namespace

TEST_F(SdkService, RequiredScopesAreCheckedWithThePlatformsCredentials) {
    Identity identity(data_dir_);
    svc_.put("/things",
             [](Request& req) -> Task<Response> {
                 co_return plexus::json_response(
                     200, json::serialize(json::object{
                              {"subject", std::string(req.headers.get("X-Plexus-Subject").value_or(""))}}));
             })
        .require({"things:write"}, {"jwt", "api_key"});
    svc_.get("/things", [](Request&) -> Task<Response> { co_return plexus::json_response(200, "[]"); });
    ASSERT_NO_FATAL_FAILURE(start({{"--identity", identity.url()},
                                   {"--issuer", "http://127.0.0.1:8080/auth"},
                                   {"--credentials", identity.credentials}}));

    EXPECT_EQ(call("GET", "/things").status, 200);  // not guarded
    auto none = call("PUT", "/things");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(header(none, "WWW-Authenticate"), R"(Bearer realm="plexus")");
    EXPECT_EQ(header(none, "Content-Type"), "application/problem+json");

    auto bad = call("PUT", "/things", {{"Authorization", "Bearer not.a.token"}});
    EXPECT_EQ(bad.status, 401);
    EXPECT_NE(header(bad, "WWW-Authenticate").find(R"(error="invalid_token")"), std::string::npos);

    auto reader = call("PUT", "/things", {{"Authorization", "Bearer " + identity.token({"things:read"})}});
    EXPECT_EQ(reader.status, 403);
    EXPECT_EQ(header(reader, "WWW-Authenticate"),
              R"(Bearer realm="plexus", error="insufficient_scope", scope="things:write")");

    auto writer = call(
        "PUT", "/things",
        {{"Authorization", "Bearer " + identity.token({"things:write"})}, {"X-Plexus-Subject", "forged"}});
    EXPECT_EQ(writer.status, 200) << writer.body;
    EXPECT_NE(member(parse_object(writer.body), "subject"), R"("forged")");

    auto key = identity.api_key("importer", {"things:write"});
    auto by_key = call("PUT", "/things", {{"X-API-Key", key}});
    EXPECT_EQ(by_key.status, 200) << by_key.body;
    EXPECT_EQ(member(parse_object(by_key.body), "subject"), R"("importer")");
    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, ClientsRelayTheCallersTokenOrSendTheServicesOwn) {
    using plexus::discovery::test::instance;
    Identity identity(data_dir_);
    plexus::discovery::test::InProcessRegistry registry;
    AuthEcho echo;
    ASSERT_FALSE(registry.register_instance(instance("relayed", "relayed-1", echo.port())));
    ASSERT_FALSE(registry.register_instance(instance("own", "own-1", echo.port())));
    svc_.client("relayed").relay_caller_token();
    svc_.client("own").use_service_token({"things:write"});
    svc_.get("/via/{service}", [this](Request& req) -> Task<Response> {
        co_return co_await svc_.client(std::string(req.param("service"))).get(req, "/whoami");
    });
    ASSERT_NO_FATAL_FAILURE(start({{"--registry", "http://" + registry.endpoint().to_string()},
                                   {"--identity", identity.url()},
                                   {"--credentials", identity.credentials}}));

    auto relayed = call("GET", "/via/relayed", {{"Authorization", "Bearer caller-token"}});
    ASSERT_EQ(relayed.status, 200) << relayed.body;
    EXPECT_EQ(member(parse_object(relayed.body), "authorization"), R"("Bearer caller-token")");

    auto own = call("GET", "/via/own", {{"Authorization", "Bearer caller-token"}});
    ASSERT_EQ(own.status, 200) << own.body;
    auto sent = std::string(parse_object(own.body).at("authorization").as_string());
    ASSERT_TRUE(sent.starts_with("Bearer ey")) << sent;  // a JWT of the service's own client
    auto claims = json::parse(*plexus::security::base64url_decode(
                                  sent.substr(sent.find('.') + 1, sent.rfind('.') - sent.find('.') - 1)))
                      .as_object();
    EXPECT_EQ(claims.at("client_id").as_string(), "svc");
    EXPECT_EQ(claims.at("scope").as_string(), "things:write");
    // Reused while fresh: the next call sends the same token.
    EXPECT_EQ(parse_object(call("GET", "/via/own").body).at("authorization").as_string(), sent);
    EXPECT_EQ(stop(), 0);
}

TEST_F(SdkService, CredentialRequirementsWithoutTheirFlagsMakeRunReturnTwo) {
    {
        plexus::Service svc{kName};
        svc.put("/x", [](Request&) -> Task<Response> { co_return plexus::json_response(200, "{}"); })
            .require({"x:write"});
        EXPECT_EQ(run_expecting_exit(svc, flags()), 2);  // no --identity / --issuer
    }
    {
        plexus::Service svc{kName};
        svc.put("/x", [](Request&) -> Task<Response> { co_return plexus::json_response(200, "{}"); })
            .require({"x:write"}, {"api_key"});
        EXPECT_EQ(run_expecting_exit(svc, flags({{"--identity", "http://127.0.0.1:1"},
                                                 {"--issuer", "http://127.0.0.1:8080/auth"}})),
                  2);  // API keys are introspected: --credentials needed
    }
    {
        plexus::Service svc{kName};
        svc.client("other").use_service_token();
        EXPECT_EQ(run_expecting_exit(svc, flags()), 2);
    }
}
