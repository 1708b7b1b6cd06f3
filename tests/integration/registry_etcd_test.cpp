// `plexus registry --store etcd` as real processes: two registries on one etcd member (started by
// the test on loopback) serve one catalog; a registration through one is listed, watched,
// heartbeat and removed through the other. Settings that cannot work stop the start with a
// message.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>

#include "plexus/etcd/testing.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
namespace json = boost::json;

namespace {

class RegistriesOnEtcd : public ::testing::Test {
  protected:
    Process start_registry(int port, const std::string& name) {
        Process p({PLEXUS_BIN, "registry", "--listen", "127.0.0.1:" + std::to_string(port), "--store", "etcd",
                   "--etcd", etcd.endpoint_list(), "--etcd-prefix", "/shop/registry/"},
                  {}, dir.path() + "/" + name + ".log");
        EXPECT_TRUE(eventually([&] { return http_get(port, "/health/ready").status == 200; })) << p.log();
        return p;
    }

    static json::object body(const HttpResult& r) { return json::parse(r.body).as_object(); }

    plexus::etcd::testing::EtcdCluster etcd{1};
    TempDir dir;
};

TEST_F(RegistriesOnEtcd, TwoRegistriesServeOneCatalog) {
    int pa = free_port(), pb = free_port();
    auto a = start_registry(pa, "a");
    auto b = start_registry(pb, "b");

    auto before = http_get(pb, "/v1/services/web");
    ASSERT_EQ(before.status, 200) << before.body;
    auto index = body(before).at("index").as_int64();

    // A watch on B answers when A takes a registration.
    std::string watch_target = "/v1/services/web?index=" + std::to_string(index) + "&wait=10s";
    auto put =
        http("PUT", pa, "/v1/services/web/instances/web-1",
             R"({"address":"127.0.0.1","port":9001,"ttl_ms":30000})", {{"content-type", "application/json"}});
    ASSERT_EQ(put.status, 200) << put.body;
    auto written = body(put).at("index").as_int64();
    auto watched = http_get(pb, watch_target);
    ASSERT_EQ(watched.status, 200) << watched.body;
    EXPECT_EQ(body(watched).at("index").as_int64(), written) << "both registries give the change one index";
    ASSERT_EQ(body(watched).at("instances").as_array().size(), 1u) << watched.body;

    // Heartbeats and draining through B; A sees the draining.
    EXPECT_EQ(http("PUT", pb, "/v1/services/web/instances/web-1/heartbeat").status, 204);
    ASSERT_EQ(http("PUT", pb, "/v1/services/web/instances/web-1/draining").status, 200);
    EXPECT_TRUE(eventually(
        [&] { return body(http_get(pa, "/v1/services/web")).at("instances").as_array().empty(); }));

    // A registry started later reads the catalog; a removal through it reaches both others.
    int pc = free_port();
    auto c = start_registry(pc, "c");
    auto all = http_get(pc, "/v1/services/web?all=true");
    ASSERT_EQ(body(all).at("instances").as_array().size(), 1u) << all.body;
    ASSERT_EQ(http("DELETE", pc, "/v1/services/web/instances/web-1").status, 200);
    for (int port : {pa, pb}) {
        EXPECT_TRUE(eventually([&] {
            return body(http_get(port, "/v1/services/web?all=true")).at("instances").as_array().empty();
        })) << port;
    }
    for (auto* p : {&a, &b, &c}) {
        p->signal(SIGTERM);
        EXPECT_EQ(p->wait(), 0) << p->log();
    }
}

TEST_F(RegistriesOnEtcd, SettingsThatCannotWorkStopTheStart) {
    // etcd without its members: a usage error.
    Process no_members({PLEXUS_BIN, "registry", "--listen", "127.0.0.1:0", "--store", "etcd"}, {},
                       dir.path() + "/no-members.log");
    EXPECT_EQ(no_members.wait(), 2);
    EXPECT_NE(no_members.log().find("--etcd"), std::string::npos) << no_members.log();

    // A cluster nobody answers at: exit 1 naming the problem, not a registry that serves nothing.
    int nobody = free_port();
    Process unreachable({PLEXUS_BIN, "registry", "--listen", "127.0.0.1:0", "--store", "etcd", "--etcd",
                         "http://127.0.0.1:" + std::to_string(nobody)},
                        {}, dir.path() + "/unreachable.log");
    EXPECT_EQ(unreachable.wait(std::chrono::seconds(20)), 1);
    EXPECT_NE(unreachable.log().find("cannot read the registry's catalog from etcd"), std::string::npos)
        << unreachable.log();
}

}  // namespace
