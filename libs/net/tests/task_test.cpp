// Ownership across co_await: temporaries of a co_await expression (closures, aggregates) are
// destroyed exactly once. GCC 12.2 destroys them twice, which is why the project builds with
// Clang; these tests fail on a compiler with that defect.

#include "plexus/net/task.hpp"

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "plexus/net/runtime.hpp"

using namespace plexus;

namespace {

struct Holder {
    std::shared_ptr<int> value;
};

net::Task<void> hold_across_suspension(const Holder& h) {
    co_await net::sleep_for(std::chrono::milliseconds(1));
    (void)h;
}

// Runs `body` on a one-thread runtime and returns what it reports, bounded by 10 s.
long run(std::function<net::Task<long>()> body) {
    net::Runtime rt(1);
    std::promise<long> result;
    auto future = result.get_future();
    net::spawn(
        rt.executor(0),
        [](std::function<net::Task<long>()>* body, std::promise<long>* result,
           net::Runtime* rt) -> net::Task<void> {
            result->set_value(co_await (*body)());
            rt->stop();
        }(&body, &result, &rt),
        "task test");
    std::thread io([&] { rt.run(); });
    auto status = future.wait_for(std::chrono::seconds(10));
    rt.stop();
    io.join();
    EXPECT_EQ(status, std::future_status::ready);
    return status == std::future_status::ready ? future.get() : -1;
}

}  // namespace

TEST(Task, ClosureTemporaryOfAnAwaitedOffloadIsReleasedOnce) {
    auto p = std::make_shared<int>(7);
    long after = run([p]() -> net::Task<long> {
        auto local = p;
        int seen = co_await net::offload([local] { return *local; });
        EXPECT_EQ(seen, 7);
        co_return local.use_count();
    });
    EXPECT_EQ(after, 3);  // p, the closure copy held by `run`'s lambda, `local`
    EXPECT_EQ(p.use_count(), 1);
}

TEST(Task, AggregateTemporaryOfACoAwaitExpressionIsReleasedOnce) {
    auto p = std::make_shared<int>(7);
    long after = run([p]() -> net::Task<long> {
        auto local = p;
        co_await hold_across_suspension(Holder{local});
        co_return local.use_count();
    });
    EXPECT_EQ(after, 3);
    EXPECT_EQ(p.use_count(), 1);
}
