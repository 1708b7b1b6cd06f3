// The JSON gateway's wire format, with answers as etcd 3.4 sends them (captured from a real
// member): base64 keys and values, int64 as strings, default fields left out, both error shapes.

#include "codec.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "plexus/etcd/error.hpp"
#include "plexus/etcd/testing.hpp"

namespace etcd = plexus::etcd;
namespace detail = plexus::etcd::detail;
namespace json = boost::json;

namespace {

using plexus::etcd::testing::range_of;
using plexus::etcd::testing::watch_of;

etcd::RangeRequest counting(std::string key) {
    auto r = range_of(std::move(key));
    r.count_only = true;
    r.serializable = true;
    return r;
}

json::value parse(std::string_view text) { return json::parse(text); }

TEST(PrefixEnd, IncrementsTheLastByteThatCan) {
    EXPECT_EQ(etcd::prefix_end("a"), "b");
    EXPECT_EQ(etcd::prefix_end("services/"), "services0");
    EXPECT_EQ(etcd::prefix_end(std::string("a\xff", 2)), "b");
    EXPECT_EQ(etcd::prefix_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
    EXPECT_EQ(etcd::prefix_end(""), std::string(1, '\0'));
    auto r = etcd::RangeRequest::with_prefix("k/");
    EXPECT_EQ(r.key, "k/");
    EXPECT_EQ(r.range_end, "k0");
}

TEST(RequestBodies, EncodeKeysAsBase64AndIntegersAsStrings) {
    etcd::RangeRequest r;
    r.key = "foo";
    r.range_end = "fop";
    r.limit = 10;
    r.revision = 7;
    r.keys_only = true;
    EXPECT_EQ(parse(detail::range_body(r)),
              parse(R"({"key":"Zm9v","range_end":"Zm9w","limit":"10","revision":"7","keys_only":true})"));
    EXPECT_EQ(parse(detail::range_body(counting("foo"))),
              parse(R"({"key":"Zm9v","count_only":true,"serializable":true})"));

    EXPECT_EQ(parse(detail::put_body({"foo", "", 0, false})), parse(R"({"key":"Zm9v","value":""})"));
    EXPECT_EQ(parse(detail::put_body({"foo", "bar", 2324035844627952141, true})),
              parse(R"({"key":"Zm9v","value":"YmFy","lease":"2324035844627952141","prev_kv":true})"));
    EXPECT_EQ(parse(detail::delete_body(etcd::DeleteRequest::with_prefix("foo"))),
              parse(R"({"key":"Zm9v","range_end":"Zm9w"})"));
    EXPECT_EQ(parse(detail::lease_grant_body(std::chrono::seconds(5))), parse(R"({"TTL":"5"})"));
    EXPECT_EQ(parse(detail::lease_id_body(42)), parse(R"({"ID":"42"})"));
}

TEST(RequestBodies, EncodeATransaction) {
    using Op = etcd::Compare::Op;
    etcd::TxnRequest t;
    t.compare = {etcd::Compare::mod_revision("k", Op::equal, 5), etcd::Compare::version("n", Op::greater, 0),
                 etcd::Compare::with_value("v", Op::not_equal, "x"),
                 etcd::Compare::create_revision("c", Op::less, 3), etcd::Compare::lease("l", Op::equal, 9)};
    t.success = {etcd::PutRequest{"k", "1", 0, false}, etcd::DeleteRequest{"d", {}, false}};
    t.failure = {range_of("k")};
    EXPECT_EQ(parse(detail::txn_body(t)), parse(R"({
        "compare":[
            {"key":"aw==","target":"MOD","result":"EQUAL","mod_revision":"5"},
            {"key":"bg==","target":"VERSION","result":"GREATER","version":"0"},
            {"key":"dg==","target":"VALUE","result":"NOT_EQUAL","value":"eA=="},
            {"key":"Yw==","target":"CREATE","result":"LESS","create_revision":"3"},
            {"key":"bA==","target":"LEASE","result":"EQUAL","lease":"9"}],
        "success":[{"request_put":{"key":"aw==","value":"MQ=="}},{"request_delete_range":{"key":"ZA=="}}],
        "failure":[{"request_range":{"key":"aw=="}}]})"));
    EXPECT_FALSE(detail::read_only(t));
    EXPECT_TRUE(detail::read_only(etcd::TxnRequest{{}, {range_of("a")}, {}}));
}

TEST(RequestBodies, EncodeAWatchFromARevisionOrFromNow) {
    auto w = etcd::WatchRequest::with_prefix("k/", 0);
    w.prev_kv = true;
    EXPECT_EQ(
        parse(detail::watch_body(w, 0, true)),
        parse(
            R"({"create_request":{"key":"ay8=","range_end":"azA=","prev_kv":true,"progress_notify":true}})"));
    EXPECT_EQ(parse(detail::watch_body(watch_of("foo"), 12, false)),
              parse(R"({"create_request":{"key":"Zm9v","start_revision":"12"}})"));
}

constexpr std::string_view kHeader =
    R"("header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"7","raft_term":"2"})";

TEST(Responses, DecodeARangeWithStringIntegersAndLeftOutDefaults) {
    auto r = detail::decode_range(parse(std::string("{") + std::string(kHeader) + R"(,
        "kvs":[{"key":"Zm9v","create_revision":"7","mod_revision":"9","version":"3","value":"YmFy","lease":"12"},
               {"key":"Zm9w","create_revision":"8","mod_revision":"8","version":"1"}],
        "more":true,"count":"5"})"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->header.cluster_id, 324952591200643719u);
    EXPECT_EQ(r->header.member_id, 3319814642761637952u);
    EXPECT_EQ(r->header.revision, 7);
    EXPECT_EQ(r->header.raft_term, 2u);
    ASSERT_EQ(r->kvs.size(), 2u);
    EXPECT_EQ(r->kvs[0], (etcd::KeyValue{"foo", "bar", 7, 9, 3, 12}));
    EXPECT_EQ(r->kvs[1], (etcd::KeyValue{"fop", "", 8, 8, 1, 0}));  // an empty value is left out
    EXPECT_TRUE(r->more);
    EXPECT_EQ(r->count, 5);

    auto empty = detail::decode_range(parse(std::string("{") + std::string(kHeader) + "}"));
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->kvs.empty());
    EXPECT_EQ(empty->count, 0);
    EXPECT_FALSE(empty->more);
}

TEST(Responses, AcceptIntegersAsNumbersToo) {
    auto r = detail::decode_range(parse(R"({"header":{"revision":7},"count":2})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header.revision, 7);
    EXPECT_EQ(r->count, 2);
}

TEST(Responses, RefuseMalformedAnswersSayingWhat) {
    auto bad_key = detail::decode_range(parse(R"({"kvs":[{"key":"not base64!"}]})"));
    ASSERT_FALSE(bad_key);
    EXPECT_EQ(bad_key.error(), etcd::errc::bad_response);
    EXPECT_NE(bad_key.error().message().find("key is not base64"), std::string::npos)
        << bad_key.error().message();
    auto bad_rev = detail::decode_range(parse(R"({"header":{"revision":"7x"}})"));
    ASSERT_FALSE(bad_rev);
    EXPECT_NE(bad_rev.error().message().find("revision is not a 64-bit integer"), std::string::npos);
    EXPECT_FALSE(detail::decode_put(parse("[]")));
    EXPECT_FALSE(detail::decode_txn(parse(R"({"responses":[{"response_other":{}}]})")));
}

TEST(Responses, DecodePutAndDeleteWithPreviousValues) {
    auto p = detail::decode_put(parse(
        R"({"header":{"revision":"3"},"prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}})"));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->header.revision, 3);
    ASSERT_TRUE(p->prev_kv);
    EXPECT_EQ(p->prev_kv->value, "bar");
    auto first = detail::decode_put(parse(R"({"header":{"revision":"2"}})"));
    ASSERT_TRUE(first);
    EXPECT_FALSE(first->prev_kv);

    auto d = detail::decode_delete(parse(
        R"({"header":{"revision":"4"},"deleted":"1","prev_kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}]})"));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->deleted, 1);
    ASSERT_EQ(d->prev_kvs.size(), 1u);
    EXPECT_EQ(d->prev_kvs[0].value, "baz");
}

TEST(Responses, DecodeATransactionWhoseFalseSucceededIsLeftOut) {
    auto ok = detail::decode_txn(parse(R"({"header":{"revision":"5"},"succeeded":true,"responses":[
        {"response_put":{"header":{"revision":"5"}}},
        {"response_range":{"header":{"revision":"5"},"kvs":[{"key":"Zm9v","create_revision":"5","mod_revision":"5","version":"1","value":"MQ=="}],"count":"1"}}]})"));
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_TRUE(ok->succeeded);
    ASSERT_EQ(ok->responses.size(), 2u);
    EXPECT_EQ(std::get<etcd::PutResponse>(ok->responses[0]).header.revision, 5);
    EXPECT_EQ(std::get<etcd::RangeResponse>(ok->responses[1]).kvs.at(0).value, "1");

    auto failed = detail::decode_txn(parse(R"({"header":{"revision":"6"},"responses":[
        {"response_range":{"header":{"revision":"5"},"count":"1"}},
        {"response_delete_range":{"header":{"revision":"6"},"deleted":"1"}}]})"));
    ASSERT_TRUE(failed);
    EXPECT_FALSE(failed->succeeded);
    EXPECT_EQ(std::get<etcd::DeleteResponse>(failed->responses[1]).deleted, 1);
}

TEST(Responses, DecodeLeasesAndAKeepaliveOfAnUnknownLease) {
    auto g = detail::decode_lease_grant(
        parse(std::string("{") + std::string(kHeader) + R"(,"ID":"2324035844627952141","TTL":"2"})"));
    ASSERT_TRUE(g);
    EXPECT_EQ(g->id, 2324035844627952141);
    EXPECT_EQ(g->ttl, std::chrono::seconds(2));

    auto k = detail::decode_keep_alive(
        parse(R"({"result":{"header":{"revision":"4"},"ID":"2324035844627952141","TTL":"2"}})"));
    ASSERT_TRUE(k);
    EXPECT_EQ(k->ttl, std::chrono::seconds(2));
    // etcd 3.4 answers a keepalive of an expired or unknown lease with 200, its id and no TTL.
    auto gone = detail::decode_keep_alive(parse(R"({"result":{"header":{"revision":"4"},"ID":"123"}})"));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error(), etcd::errc::lease_not_found);
}

TEST(Responses, DecodeAMemberStatus) {
    auto s = detail::decode_status(parse(std::string("{") + std::string(kHeader) + R"(,
        "version":"3.4.23","dbSize":"20480","leader":"3319814642761637952","raftIndex":"4","raftTerm":"2",
        "raftAppliedIndex":"4","dbSizeInUse":"16384"})"));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->version, "3.4.23");
    EXPECT_EQ(s->leader, 3319814642761637952u);
    EXPECT_EQ(s->header.member_id, s->leader);
    EXPECT_EQ(s->db_size, 20480);
    EXPECT_EQ(s->raft_index, 4u);
}

TEST(Errors, DecodeTheUnaryAndTheStreamShapes) {
    auto unary = detail::decode_error(parse(
        R"({"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11})"));
    ASSERT_TRUE(unary);
    EXPECT_EQ(unary->code, 11);
    EXPECT_EQ(unary->message, "etcdserver: mvcc: required revision has been compacted");
    auto streamed = detail::decode_error(parse(
        R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})"));
    ASSERT_TRUE(streamed);
    EXPECT_EQ(streamed->code, 14);
    EXPECT_EQ(streamed->message, "etcdserver: no leader");
    EXPECT_FALSE(detail::decode_error(parse(R"({"header":{}})")));
    EXPECT_FALSE(detail::decode_error(parse(R"({"ID":"1","error":""})")));  // a lease grant's empty error

    auto not_json = detail::error_of_answer(404, "Not Found\n");
    EXPECT_EQ(not_json.message, "HTTP 404: Not Found");
    EXPECT_EQ(not_json.code, detail::kGrpcUnknown);
    EXPECT_EQ(detail::error_of_answer(502, "").code, detail::kGrpcUnavailable);
}

TEST(Errors, JudgeWhichFailuresMayGoToTheNextMember) {
    auto verdict = [](int code, std::string msg, bool read) {
        return detail::judge({code, std::move(msg)}, read);
    };
    // Refused before anything was proposed: even a write moves on.
    auto no_leader = verdict(14, "etcdserver: no leader", false);
    EXPECT_EQ(no_leader.error, etcd::errc::unavailable);
    EXPECT_TRUE(no_leader.try_next);
    EXPECT_TRUE(verdict(2, "raft proposal dropped", false).try_next);
    EXPECT_TRUE(verdict(8, "etcdserver: too many requests", false).try_next);
    // Given up on after proposing: a read moves on, a write's outcome is unknown.
    EXPECT_TRUE(verdict(14, "etcdserver: request timed out", true).try_next);
    auto timed_out_write = verdict(14, "etcdserver: request timed out", false);
    EXPECT_EQ(timed_out_write.error, etcd::errc::outcome_unknown);
    EXPECT_FALSE(timed_out_write.try_next);
    EXPECT_EQ(verdict(14, "etcdserver: leader changed", false).error, etcd::errc::outcome_unknown);
    // A write etcd stopped waiting for when it had no leader: code 2 with a Go context message.
    EXPECT_EQ(verdict(2, "context deadline exceeded", false).error, etcd::errc::outcome_unknown);
    EXPECT_TRUE(verdict(2, "context deadline exceeded", true).try_next);
    // Answers about the request itself end the call.
    EXPECT_EQ(verdict(11, "etcdserver: mvcc: required revision has been compacted", true).error,
              etcd::errc::compacted);
    EXPECT_EQ(verdict(11, "etcdserver: mvcc: required revision is a future revision", true).error,
              etcd::errc::future_revision);
    EXPECT_EQ(verdict(5, "etcdserver: requested lease not found", false).error, etcd::errc::lease_not_found);
    auto dup = verdict(3, "etcdserver: duplicate key given in txn request", false);
    EXPECT_EQ(dup.error, etcd::errc::rejected);
    EXPECT_FALSE(dup.try_next);
}

TEST(WatchMessages, DecodeCreatedEventsProgressAndCancellation) {
    auto created = detail::decode_watch_message(
        R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"6","raft_term":"2"},"created":true}})");
    ASSERT_TRUE(created);
    EXPECT_EQ(created->kind, detail::WatchMessage::Kind::created);
    EXPECT_EQ(created->header.revision, 6);

    auto events = detail::decode_watch_message(R"({"result":{"header":{"revision":"9"},"events":[
        {"kv":{"key":"Zm9v","create_revision":"7","mod_revision":"7","version":"1","value":"YmFy"}},
        {"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"9"},"prev_kv":{"key":"Zm9v","create_revision":"7","mod_revision":"8","version":"2","value":"MQ=="}}]}})");
    ASSERT_TRUE(events) << events.error().message();
    EXPECT_EQ(events->kind, detail::WatchMessage::Kind::events);
    ASSERT_EQ(events->events.size(), 2u);
    EXPECT_EQ(events->events[0].type, etcd::Event::Type::put);  // PUT, the default, is left out
    EXPECT_EQ(events->events[0].kv, (etcd::KeyValue{"foo", "bar", 7, 7, 1, 0}));
    EXPECT_EQ(events->events[1].type, etcd::Event::Type::del);
    EXPECT_EQ(events->events[1].kv.mod_revision, 9);
    ASSERT_TRUE(events->events[1].prev_kv);
    EXPECT_EQ(events->events[1].prev_kv->value, "1");

    auto progress = detail::decode_watch_message(R"({"result":{"header":{"revision":"12"}}})");
    ASSERT_TRUE(progress);
    EXPECT_EQ(progress->kind, detail::WatchMessage::Kind::progress);

    // A start revision below the compaction: created, then canceled with no header revision.
    auto compacted = detail::decode_watch_message(
        R"({"result":{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},"canceled":true,"compact_revision":"5"}})");
    ASSERT_TRUE(compacted);
    EXPECT_EQ(compacted->kind, detail::WatchMessage::Kind::canceled);
    EXPECT_EQ(compacted->compact_revision, 5);

    auto error = detail::decode_watch_message(
        R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})");
    ASSERT_TRUE(error);
    EXPECT_EQ(error->kind, detail::WatchMessage::Kind::error);
    EXPECT_EQ(error->error.code, 14);

    EXPECT_FALSE(detail::decode_watch_message("{\"result\":"));
    EXPECT_FALSE(detail::decode_watch_message(R"({"result":{"events":[{"type":"MERGE","kv":{}}]}})"));
}

TEST(LineSplitter, FramesLinesAcrossArbitraryPieces) {
    detail::LineSplitter lines;
    std::vector<std::string> seen;
    auto collect = [&](std::string_view l) {
        seen.emplace_back(l);
        return true;
    };
    EXPECT_TRUE(lines.feed("{\"a\":", collect));
    EXPECT_TRUE(seen.empty());
    EXPECT_TRUE(lines.feed("1}\n\n{\"b\":2}\r\n{\"c\"", collect));
    EXPECT_EQ(seen, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
    EXPECT_EQ(lines.pending(), 4u);
    // Stops at the line the callback refuses and keeps the rest for later.
    EXPECT_FALSE(lines.feed(":3}\n{\"d\":4}\n", [&](std::string_view l) {
        seen.emplace_back(l);
        return false;
    }));
    EXPECT_EQ(seen.back(), "{\"c\":3}");
    EXPECT_EQ(lines.pending(), 8u);
    lines.clear();
    // The error that ends a gateway stream has no line break after it.
    EXPECT_TRUE(lines.feed("{\"result\":{}}\n{\"error\":{}}", collect));
    EXPECT_EQ(lines.take_rest(), "{\"error\":{}}");
    EXPECT_EQ(lines.pending(), 0u);
    EXPECT_TRUE(lines.feed(" \r\n", collect));
    EXPECT_EQ(lines.take_rest(), "");
}

TEST(ErrorCodes, CarryTheDetailAndCompareByErrc) {
    auto ec = etcd::make_error(etcd::errc::unavailable, "member 127.0.0.1:2379: etcdserver: no leader");
    EXPECT_EQ(ec, etcd::errc::unavailable);
    EXPECT_EQ(ec, etcd::make_error_code(etcd::errc::unavailable));
    EXPECT_EQ(ec.message(), "unavailable: member 127.0.0.1:2379: etcdserver: no leader");
    EXPECT_EQ(etcd::error_detail(ec), "member 127.0.0.1:2379: etcdserver: no leader");
    EXPECT_STREQ(ec.category().name(), "plexus.etcd");
    EXPECT_EQ(etcd::make_error(etcd::errc::compacted, "").message(), "revision compacted");
}

}  // namespace
