// The cost of one JWT: signing it (the identity server's token endpoint) and verifying it in
// full (signature, header rules and claims), per algorithm; then what a gateway or service pays
// for a token it has seen before (auth::Verifier::check answering from its cache: the lookup
// keyed by the token and the revocation check), on one thread and on two sharing the verifier.

#include <benchmark/benchmark.h>

#include <boost/json.hpp>
#include <chrono>

#include "plexus/auth/verifier.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/security/jwt.hpp"

using namespace plexus;

namespace {

boost::json::object claims() {
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    return {{"iss", "https://id.example"}, {"aud", "shop"}, {"sub", "user-1"},  {"client_id", "web"},
            {"scope", "catalog:read"},     {"iat", now},    {"exp", now + 600}, {"jti", "abc123"}};
}

void BM_Sign(benchmark::State& state) {
    auto key = security::Key::generate(static_cast<security::Algorithm>(state.range(0)), "k");
    auto c = claims();
    for (auto _ : state) benchmark::DoNotOptimize(security::sign_jwt(key, c));
    state.SetLabel(std::string(security::to_string(key.algorithm())));
}

void BM_Verify(benchmark::State& state) {
    auto key = security::Key::generate(static_cast<security::Algorithm>(state.range(0)), "k");
    security::KeySet keys;
    keys.add(key);
    auto token = security::sign_jwt(key, claims());
    security::JwtVerifier verifier({.issuer = "https://id.example", .audiences = {"shop"}});
    for (auto _ : state) {
        auto v = verifier.verify(token, keys);
        if (!v) state.SkipWithError(v.detail.c_str());
        benchmark::DoNotOptimize(v);
    }
    state.SetLabel(std::string(security::to_string(key.algorithm())));
}

// A repeated token: the first check verifies it (outside the timing) and caches what it
// established; every later one is answered from the cache.
void BM_CheckCached(benchmark::State& state) {
    static std::shared_ptr<auth::Verifier> verifier;
    static std::string token;
    if (state.thread_index() == 0) {
        auto key = security::Key::generate(security::Algorithm::es256, "k");
        security::KeySet keys;
        keys.add(key);
        token = security::sign_jwt(key, claims());
        verifier = std::make_shared<auth::Verifier>(
            auth::ProviderSettings{.issuer = "https://id.example", .audience = "shop"}, std::move(keys),
            10'000, core::Clock::real());
        if (verifier->check(token, auth::kJwt).status != auth::Check::ok) state.SkipWithError("not verified");
    }
    for (auto _ : state) {
        auto c = verifier->check(token, auth::kJwt);
        benchmark::DoNotOptimize(c);
    }
    state.SetLabel("ES256, " + std::to_string(token.size()) + "-byte token");
}

}  // namespace

BENCHMARK(BM_CheckCached)->Threads(1)->Threads(2)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Sign)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Verify)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
