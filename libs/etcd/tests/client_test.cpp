// The client's failover and watch resumption against stand-in members (in-process HTTP servers
// that answer as etcd's gateway does, or fail as members fail), where every case can be set up
// exactly: which member is asked, what it is sent, and what the caller sees.

#include "plexus/etcd/client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "plexus/etcd/testing.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"

namespace etcd = plexus::etcd;
namespace net = plexus::net;
using namespace std::chrono_literals;
using namespace plexus::net::testing;

namespace {

using plexus::etcd::testing::range_of;
using plexus::etcd::testing::watch_of;

constexpr std::string_view kNoLeader =
    R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})";
constexpr std::string_view kTimedOut =
    R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14})";
constexpr std::string_view kDuplicateKey =
    R"({"error":"etcdserver: duplicate key given in txn request","message":"etcdserver: duplicate key given in txn request","code":3})";
constexpr std::string_view kRangeAnswer =
    R"({"header":{"revision":"7"},"kvs":[{"key":"Zm9v","create_revision":"7","mod_revision":"7","version":"1","value":"YmFy"}],"count":"1"})";
constexpr std::string_view kPutAnswer = R"({"header":{"revision":"8"}})";

// A stand-in member: an HTTP server that counts and records what it is sent and answers with
// `script` (after `delay`, to play a member that hangs).
class FakeMember {
  public:
    using Script = std::function<void(const net::Request&, net::Response&, int call)>;

    FakeMember(net::Runtime& rt, Script script, std::chrono::milliseconds delay = 0ms)
        : script_(std::move(script)), delay_(delay) {
        server_ = std::make_unique<net::Server>(
            rt, net::ServerSettings{}, [this](net::Request& req, net::Response& res) -> net::Task<void> {
                int call = record(req);
                if (delay_ > 0ms) co_await net::sleep_for(delay_);
                script_(req, res, call);
            });
        server_->start();
    }
    /// An answer for every call: `status` with a JSON body.
    FakeMember(net::Runtime& rt, int status, std::string_view body, std::chrono::milliseconds delay = 0ms)
        : FakeMember(
              rt,
              [status, body = std::string(body)](const net::Request&, net::Response& res, int) {
                  res.json(status, body);
              },
              delay) {}

    net::Endpoint endpoint() const { return {"127.0.0.1", server_->port()}; }
    int calls() const { return calls_; }
    std::vector<std::string> bodies() const {
        std::lock_guard lock(mutex_);
        return bodies_;
    }
    std::vector<std::string> metadata() const {
        std::lock_guard lock(mutex_);
        return metadata_;
    }

  private:
    int record(const net::Request& req) {
        std::lock_guard lock(mutex_);
        bodies_.push_back(req.target + " " + req.body);
        metadata_.emplace_back(req.headers.get("Grpc-Metadata-Hasleader").value_or(""));
        return calls_++;
    }

    Script script_;
    std::chrono::milliseconds delay_;
    std::unique_ptr<net::Server> server_;
    std::atomic<int> calls_{0};
    mutable std::mutex mutex_;
    std::vector<std::string> bodies_;
    std::vector<std::string> metadata_;
};

class ClientTest : public ::testing::Test {
  protected:
    void SetUp() override {
        runtime_ = std::make_unique<net::Runtime>(1);
        runner_ = std::thread([rt = runtime_.get()] { rt->run(); });
    }
    void TearDown() override {
        fakes_.clear();
        runtime_->stop();
        runner_.join();
    }

    FakeMember& fake(int status, std::string_view body, std::chrono::milliseconds delay = 0ms) {
        fakes_.push_back(std::make_unique<FakeMember>(*runtime_, status, body, delay));
        return *fakes_.back();
    }
    FakeMember& fake(FakeMember::Script script) {
        fakes_.push_back(std::make_unique<FakeMember>(*runtime_, std::move(script)));
        return *fakes_.back();
    }

    static etcd::Settings settings(std::vector<net::Endpoint> members) {
        etcd::Settings s;
        s.members = std::move(members);
        s.timeout = 3s;
        s.retry_backoff = 10ms;
        return s;
    }

    template <class T>
    T run(net::Task<T> task) {
        auto f = net::start(runtime_->executor(0), std::move(task));
        return wait(f);
    }

    std::unique_ptr<net::Runtime> runtime_;
    std::thread runner_;
    std::vector<std::unique_ptr<FakeMember>> fakes_;
};

TEST_F(ClientTest, ParsesMemberLists) {
    auto m = etcd::parse_members("http://127.0.0.1:2379, 127.0.0.1:22379,");
    ASSERT_TRUE(m);
    EXPECT_EQ(*m, (std::vector<net::Endpoint>{{"127.0.0.1", 2379}, {"127.0.0.1", 22379}}));
    auto bad = etcd::parse_members("http://127.0.0.1:2379,https://x:1");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("https://x:1"), std::string::npos) << bad.error().message();
    EXPECT_FALSE(etcd::parse_members(" , "));
    EXPECT_THROW(etcd::Client(""), std::invalid_argument);
    EXPECT_THROW(etcd::Client(etcd::Settings{}), std::invalid_argument);
}

TEST_F(ClientTest, AReadMovesOnPastARefusingAndALeaderlessMemberAndRemembersWhoAnswered) {
    ClosedPort refused;
    auto& leaderless = fake(503, kNoLeader);
    auto& good = fake(200, kRangeAnswer);
    etcd::Client client(settings({refused.endpoint(), leaderless.endpoint(), good.endpoint()}));

    auto r = run(client.range(range_of("foo")));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->kvs.size(), 1u);
    EXPECT_EQ(r->kvs[0].value, "bar");
    EXPECT_EQ(leaderless.calls(), 1);
    EXPECT_EQ(client.preferred_member(), 2u);
    EXPECT_EQ(good.metadata().at(0), "true");  // hasleader metadata on every request
    EXPECT_EQ(good.bodies().at(0), R"(/v3/kv/range {"key":"Zm9v"})");

    auto again = run(client.get("foo"));
    ASSERT_TRUE(again);
    ASSERT_TRUE(*again);
    EXPECT_EQ((*again)->value, "bar");
    EXPECT_EQ(leaderless.calls(), 1);  // straight to the member that answered
    EXPECT_EQ(good.calls(), 2);
}

TEST_F(ClientTest, AWriteMovesOnWhenTheMemberHasNoLeader) {
    auto& leaderless = fake(503, kNoLeader);
    auto& good = fake(200, kPutAnswer);
    etcd::Client client(settings({leaderless.endpoint(), good.endpoint()}));
    auto r = run(client.put("foo", "bar"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->header.revision, 8);
    EXPECT_EQ(leaderless.calls(), 1);
    EXPECT_EQ(good.bodies().at(0), R"(/v3/kv/put {"key":"Zm9v","value":"YmFy"})");
}

TEST_F(ClientTest, AWriteEtcdGaveUpOnIsNotRepeated) {
    auto& slow = fake(503, kTimedOut);
    auto& good = fake(200, kPutAnswer);
    etcd::Client client(settings({slow.endpoint(), good.endpoint()}));
    auto r = run(client.put("foo", "bar"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), etcd::errc::outcome_unknown);
    EXPECT_EQ(r.error().message(), "outcome unknown: member " + slow.endpoint().to_string() +
                                       ": etcdserver: request timed out (grpc code 14)");
    EXPECT_EQ(good.calls(), 0);

    // The same answer to a read moves on.
    auto read = run(client.range(range_of("foo")));
    ASSERT_TRUE(read) << read.error().message();  // a bare header is a valid (empty) range
    EXPECT_EQ(read->header.revision, 8);
    EXPECT_EQ(good.calls(), 1);
}

TEST_F(ClientTest, AReadMovesOnFromAHangingMemberAfterItsAttemptTimeout) {
    auto& hanging = fake(200, kRangeAnswer, 5s);
    auto& good = fake(200, kRangeAnswer);
    auto s = settings({hanging.endpoint(), good.endpoint()});
    s.read_attempt_timeout = 200ms;
    etcd::Client client(s);
    auto t0 = std::chrono::steady_clock::now();
    auto r = run(client.range(range_of("foo")));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_LT(since(t0), 2s);
    EXPECT_EQ(good.calls(), 1);

    // A write is not: its outcome is unknown when the time runs out.
    etcd::Client writer(settings({hanging.endpoint(), good.endpoint()}));
    auto w = run(writer.with_timeout(300ms).put("foo", "bar"));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), etcd::errc::outcome_unknown);
    EXPECT_EQ(good.calls(), 1);
}

TEST_F(ClientTest, GivesUpAsUnavailableWhenNoMemberAnswersInTime) {
    ClosedPort a, b;
    etcd::Client client(settings({a.endpoint(), b.endpoint()}));
    auto t0 = std::chrono::steady_clock::now();
    auto r = run(client.with_timeout(300ms).put("foo", "bar"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), etcd::errc::unavailable);
    EXPECT_NE(r.error().message().find("member 127.0.0.1:"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("connection refused"), std::string::npos) << r.error().message();
    EXPECT_GE(since(t0), 100ms);  // it went round the members more than once, with pauses
    EXPECT_LT(since(t0), 2s);
}

TEST_F(ClientTest, ARejectedRequestEndsTheCall) {
    auto& refusing = fake(400, kDuplicateKey);
    auto& good = fake(200, kPutAnswer);
    etcd::Client client(settings({refusing.endpoint(), good.endpoint()}));
    etcd::TxnRequest t;
    t.success = {etcd::PutRequest{"k", "1"}, etcd::PutRequest{"k", "2"}};
    auto r = run(client.txn(t));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), etcd::errc::rejected);
    EXPECT_NE(r.error().message().find("duplicate key given in txn request (grpc code 3)"),
              std::string::npos);
    EXPECT_EQ(good.calls(), 0);
}

TEST_F(ClientTest, AKeepaliveOfAnUnknownLeaseIsLeaseNotFound) {
    auto& member = fake(200, R"({"result":{"header":{"revision":"4"},"ID":"123"}})");
    etcd::Client client(settings({member.endpoint()}));
    auto r = run(client.lease_keep_alive_once(123));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), etcd::errc::lease_not_found);
    EXPECT_EQ(member.bodies().at(0), R"(/v3/lease/keepalive {"ID":"123"})");
}

// Watch stand-ins answer a whole stream at once; when it ends, the client resumes elsewhere.
std::string lines(std::initializer_list<std::string_view> messages) {
    std::string out;
    for (auto m : messages) out.append(m).append("\n");
    return out;
}

constexpr std::string_view kCreated4 = R"({"result":{"header":{"revision":"4"},"created":true}})";
constexpr std::string_view kEvents5 = R"({"result":{"header":{"revision":"5"},"events":[
    {"kv":{"key":"YQ==","create_revision":"5","mod_revision":"5","version":"1","value":"MQ=="}},
    {"kv":{"key":"Yg==","create_revision":"5","mod_revision":"5","version":"1","value":"Mg=="}}]}})";
constexpr std::string_view kEvents6 = R"({"result":{"header":{"revision":"6"},"events":[
    {"type":"DELETE","kv":{"key":"YQ==","mod_revision":"6"}}]}})";
constexpr std::string_view kEvents7 = R"({"result":{"header":{"revision":"7"},"events":[
    {"kv":{"key":"Yw==","create_revision":"7","mod_revision":"7","version":"1","value":"Mw=="}}]}})";

std::string one_line(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c != '\n') out.push_back(c);
    }
    return out;
}

struct Seen {
    std::vector<std::int64_t> revisions;
    std::vector<std::size_t> members;
    std::vector<std::string> keys;
};

TEST_F(ClientTest, AWatchResumesOnTheNextMemberFromOnePastTheLastRevisionDelivered) {
    auto& first = fake([](const net::Request&, net::Response& res, int) {
        res.json(200, lines({kCreated4, one_line(kEvents5), one_line(kEvents6)}));
    });
    auto& second = fake([](const net::Request&, net::Response& res, int) {
        // Repeats revision 6 (a member that was asked from earlier): it must not be delivered twice.
        res.json(200, lines({kCreated4, one_line(kEvents6), one_line(kEvents7)}));
    });
    etcd::Client client(settings({first.endpoint(), second.endpoint()}));
    auto seen = std::make_shared<Seen>();
    auto interruptions = std::make_shared<std::vector<std::string>>();
    auto end = run(client.watch(
        etcd::WatchRequest::with_prefix(""),
        [seen](const etcd::WatchBatch& b) {
            for (const auto& e : b.events) {
                seen->revisions.push_back(e.kv.mod_revision);
                seen->keys.push_back(e.kv.key);
            }
            seen->members.push_back(b.member);
            return b.revision < 7;
        },
        [interruptions](const plexus::ErrorCode& why, std::size_t member) {
            interruptions->push_back(std::to_string(member) + " " + why.message());
        }));
    EXPECT_FALSE(end.error) << end.error.message();
    EXPECT_EQ(end.next_revision, 8);
    EXPECT_EQ(seen->revisions, (std::vector<std::int64_t>{5, 5, 6, 7}));
    EXPECT_EQ(seen->keys, (std::vector<std::string>{"a", "b", "a", "c"}));
    EXPECT_EQ(seen->members, (std::vector<std::size_t>{0, 0, 1}));
    ASSERT_EQ(second.bodies().size(), 1u);
    EXPECT_NE(second.bodies()[0].find(R"("start_revision":"7")"), std::string::npos) << second.bodies()[0];
    EXPECT_EQ(first.bodies()[0].find("start_revision"), std::string::npos) << first.bodies()[0];
    ASSERT_EQ(interruptions->size(), 1u);
    EXPECT_EQ(interruptions->at(0),
              "0 unavailable: member " + first.endpoint().to_string() + ": the stream ended");
}

TEST_F(ClientTest, AWatchFromNowResumesAfterTheRevisionTheFirstMemberFixed) {
    auto& first = fake(200, lines({R"({"result":{"header":{"revision":"10"},"created":true}})"}));
    auto& second = fake([](const net::Request& req, net::Response& res, int) {
        if (req.body.find(R"("start_revision":"11")") == std::string::npos) {
            res.json(400, R"({"error":"wrong start","message":"wrong start","code":3})");
            return;
        }
        res.json(
            200,
            lines(
                {R"({"result":{"header":{"revision":"11"},"created":true}})",
                 R"({"result":{"header":{"revision":"11"},"events":[{"kv":{"key":"YQ==","mod_revision":"11"}}]}})"}));
    });
    etcd::Client client(settings({first.endpoint(), second.endpoint()}));
    auto end = run(client.watch(watch_of("a"), [](const etcd::WatchBatch&) { return false; }));
    EXPECT_FALSE(end.error) << end.error.message();
    EXPECT_EQ(end.next_revision, 12);
}

TEST_F(ClientTest, AWatchFromACompactedRevisionReportsTheCompactRevision) {
    auto& member = fake(
        200, lines({kCreated4,
                    R"({"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"5"}})"}));
    etcd::Client client(settings({member.endpoint()}));
    auto end = run(client.watch(watch_of("a", 2), [](const etcd::WatchBatch&) { return true; }));
    EXPECT_EQ(end.error, etcd::errc::compacted);
    EXPECT_EQ(end.compact_revision, 5);
    EXPECT_EQ(end.next_revision, 2);
    EXPECT_NE(end.error.message().find(member.endpoint().to_string()), std::string::npos);
}

TEST_F(ClientTest, AWatchLeavesAMemberThatLostItsLeader) {
    // As the gateway ends a stream on an error: the error message with no line break after it.
    auto& leaderless = fake(
        200,
        lines({kCreated4}) +
            R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})");
    auto& refusing = fake(503, kNoLeader);
    auto& good = fake(200, lines({kCreated4, one_line(kEvents5)}));
    etcd::Client client(settings({leaderless.endpoint(), refusing.endpoint(), good.endpoint()}));
    auto interruptions = std::make_shared<std::vector<std::string>>();
    auto end = run(client.watch(
        watch_of("a", 5), [](const etcd::WatchBatch&) { return false; },
        [interruptions](const plexus::ErrorCode& why, std::size_t) {
            interruptions->push_back(why.message());
        }));
    EXPECT_FALSE(end.error) << end.error.message();
    EXPECT_EQ(end.next_revision, 6);
    ASSERT_EQ(interruptions->size(), 2u);
    EXPECT_NE(interruptions->at(0).find("etcdserver: no leader (grpc code 14)"), std::string::npos)
        << interruptions->at(0);
    EXPECT_NE(interruptions->at(1).find("etcdserver: no leader"), std::string::npos) << interruptions->at(1);
}

TEST_F(ClientTest, AWatchEtcdCanceledForAnotherReasonEnds) {
    auto& member =
        fake(200, lines({kCreated4,
                         R"({"result":{"header":{},"canceled":true,"cancel_reason":"permission denied"}})"}));
    etcd::Client client(settings({member.endpoint()}));
    auto end = run(client.watch(watch_of("a"), [](const etcd::WatchBatch&) { return true; }));
    EXPECT_EQ(end.error, etcd::errc::watch_canceled);
    EXPECT_NE(end.error.message().find("permission denied"), std::string::npos);
}

}  // namespace
