// The cost of one JWT: signing it (the identity server's token endpoint) and verifying it in
// full (signature, header rules and claims), per algorithm. A gateway that caches verified tokens
// pays the verification once per token, not per request.

#include <benchmark/benchmark.h>

#include <boost/json.hpp>
#include <chrono>

#include "plexus/security/jwt.hpp"

using namespace plexus;

namespace {

boost::json::object claims() {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count();
    return {{"iss", "https://id.example"}, {"aud", "shop"},         {"sub", "user-1"},   {"client_id", "web"},
            {"scope", "catalog:read"},     {"iat", now},            {"exp", now + 600}, {"jti", "abc123"}};
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

}  // namespace

BENCHMARK(BM_Sign)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Verify)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
