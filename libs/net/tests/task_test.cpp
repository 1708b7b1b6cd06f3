// Ownership across co_await: temporaries of a co_await expression (closures, aggregates) are
// destroyed exactly once. GCC 12.2 destroys them twice, which is why the project builds with
// Clang; these tests fail on a compiler with that defect.

#include "plexus/net/task.hpp"

#include <gtest/gtest.h>

#include <atomic>
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

// A daemon stops its runtime and then destroys what its tasks use (a registry's catalog): run()
// must not return while an offloaded job that uses it is still running.
TEST(Runtime, RunReturnsOnlyAfterTheOffloadedJobsOfItsTasksHaveFinished) {
    auto rt = std::make_unique<net::Runtime>(1);
    std::promise<void> started, release;
    auto release_future = release.get_future();
    std::atomic<bool> job_done{false}, returned{false}, done_at_return{false};
    net::spawn(
        rt->executor(0),
        [](std::promise<void>* started, std::shared_future<void> release,
           std::atomic<bool>* job_done) -> net::Task<void> {
            co_await net::offload([&] {
                started->set_value();
                release.wait();
                job_done->store(true);
            });
        }(&started, release_future.share(), &job_done),
        "offload");
    std::thread io([&] {
        rt->run();
        done_at_return = job_done.load();
        returned = true;
    });
    ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    rt->stop();
    // Given time to return early (it must not), then the job is let finish.
    for (int i = 0; i < 50 && !returned; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_FALSE(returned.load());
    release.set_value();
    io.join();
    EXPECT_TRUE(done_at_return.load());
    rt.reset();  // destroying the contexts after the job posted its completion to them is safe
}
