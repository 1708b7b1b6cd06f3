// Daemons take their settings in layers: `--config FILE` (YAML) under flags and environment, the
// same loader for each layer, so a mistake in the file stops the start naming the file, line and
// key; and the config server's document `plexus-<daemon>` between the file and the flags (the
// config server itself takes only the file).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/http.hpp"
#include "support/process.hpp"
#include "support/stub_server.hpp"

using namespace plexus::test;

namespace {

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
}

// Runs `argv` to its exit (bounded); its exit code and output.
int run_to_exit(std::vector<std::string> argv, const std::string& log, std::string& out) {
    Process p(std::move(argv), {}, log);
    int code = p.wait();
    out = p.log();
    return code;
}

}  // namespace

TEST(DaemonSettings, AFileSetsWhatFlagsDoNotAndFlagsWin) {
    TempDir dir;
    StubServer upstream;
    const int file_port = free_port(), flag_port = free_port(), admin_port = free_port();
    auto config = dir.path() + "/gateway.yaml";
    write_file(dir.path() + "/routes.yaml",
               "routes:\n  - name: only\n    match: {prefix: /a}\n    upstreams: [\"127.0.0.1:" +
                   std::to_string(upstream.port()) + "\"]\n");
    write_file(config, "listen: 127.0.0.1:" + std::to_string(file_port) +
                           "\nadmin_listen: 127.0.0.1:" + std::to_string(admin_port) +
                           "\nroutes: " + dir.path() + "/routes.yaml\nthreads: 1\n");
    {
        Process gw({PLEXUS_BIN, "gateway", "--config", config}, {}, dir.path() + "/a.log");
        EXPECT_TRUE(eventually([&] { return http_get(file_port, "/a/x").status == 200; })) << gw.log();
        gw.signal(SIGTERM);
        EXPECT_EQ(gw.wait(), 0) << gw.log();
    }
    {
        Process gw(
            {PLEXUS_BIN, "gateway", "--config", config, "--listen", "127.0.0.1:" + std::to_string(flag_port)},
            {}, dir.path() + "/b.log");
        EXPECT_TRUE(eventually([&] { return http_get(flag_port, "/a/x").status == 200; })) << gw.log();
        EXPECT_EQ(http_get(file_port, "/a/x").status, 0);  // the flag won: nothing listens there
        gw.signal(SIGTERM);
        EXPECT_EQ(gw.wait(), 0) << gw.log();
    }
}

TEST(DaemonSettings, AMistakeInTheFileStopsTheStartNamingFileLineAndKey) {
    TempDir dir;
    auto config = dir.path() + "/limits.yaml";
    std::string out;
    write_file(config, "listen: 127.0.0.1:0\nthreads: 2\nmax_kyes: 10\n");
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "limits", "--config", config}, dir.path() + "/1.log", out), 2);
    EXPECT_NE(out.find(config + ":3: max_kyes: unknown key"), std::string::npos) << out;
    write_file(config, "threads: many\n");
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "limits", "--config", config}, dir.path() + "/2.log", out), 2);
    EXPECT_NE(out.find(config + ":1: threads"), std::string::npos) << out;
    write_file(config, "auth:\n  max_introspections: 0\n");
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "gateway", "--config", config}, dir.path() + "/3.log", out), 2);
    EXPECT_NE(out.find(config + ":2: auth.max_introspections"), std::string::npos) << out;
    write_file(config, "listen: 127.0.0.1:0\nlimits:\n  max_ttl: forever\n");
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "registry", "--config", config}, dir.path() + "/7.log", out), 2);
    EXPECT_NE(out.find(config + ":3: limits.max_ttl"), std::string::npos) << out;
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "limits", "--config", dir.path() + "/missing.yaml"},
                          dir.path() + "/4.log", out),
              2);
    EXPECT_NE(out.find("missing.yaml"), std::string::npos) << out;
    // Flags are checked by the same loader.
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "identity", "--data-dir", dir.path() + "/id", "--access-ttl", "0s"},
                          dir.path() + "/5.log", out),
              2);
    EXPECT_NE(out.find("access_ttl"), std::string::npos) << out;
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "identity", "--data-dir", dir.path() + "/id", "--algorithm", "HS256"},
                          dir.path() + "/6.log", out),
              2);
    EXPECT_NE(out.find("algorithm: must be ES256, RS256 or EdDSA"), std::string::npos) << out;
}

TEST(DaemonSettings, TheConfigServerDocumentLiesBetweenTheFileAndTheFlags) {
    TempDir dir;
    const int config_port = free_port(), server_port = free_port(), file_port = free_port();
    Process config({PLEXUS_BIN, "config", "serve", "--anonymous", "--data-dir", dir.path() + "/config",
                    "--listen", "127.0.0.1:" + std::to_string(config_port)},
                   {}, dir.path() + "/config.log");
    ASSERT_TRUE(eventually([&] { return http_get(config_port, "/health/ready").status == 200; }))
        << config.log();
    const std::string server = "http://127.0.0.1:" + std::to_string(config_port);
    auto write = [&](const std::string& content) {
        return http("PUT", config_port, "/v1/documents/plexus-limits", R"({"content":)" + content + "}",
                    {{"Content-Type", "application/json"}});
    };

    // A document the daemon cannot load stops its start, naming the version and key.
    ASSERT_EQ(write(R"({"listn":"x"})").status, 200);
    std::string out;
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "limits", "--config-server", server}, dir.path() + "/bad.log", out),
              2);
    EXPECT_NE(out.find("plexus-limits"), std::string::npos) << out;
    EXPECT_NE(out.find("listn: unknown key"), std::string::npos) << out;

    auto put = write(R"({"listen":"127.0.0.1:)" + std::to_string(server_port) + R"(","threads":1})");
    ASSERT_EQ(put.status, 200) << put.body;
    auto file = dir.path() + "/limits.yaml";
    write_file(file, "listen: 127.0.0.1:" + std::to_string(file_port) + "\n");
    Process limits({PLEXUS_BIN, "limits", "--config", file, "--config-server", server}, {},
                   dir.path() + "/limits.log");
    EXPECT_TRUE(eventually([&] { return http_get(server_port, "/health/ready").status == 200; }))
        << limits.log();
    EXPECT_EQ(http_get(file_port, "/health/ready").status, 0);

    // The daemon published the schema of what it loads: a change it could not load is refused
    // by the config server, naming the key, and the document stays as it was.
    EXPECT_EQ(http_get(config_port, "/v1/schemas/plexus-limits").status, 200);
    auto refused = write(R"({"listen":"127.0.0.1:1","threads":"many"})");
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_NE(refused.body.find("threads"), std::string::npos) << refused.body;
    auto unknown = write(R"({"listn":"x"})");
    EXPECT_EQ(unknown.status, 400) << unknown.body;
    EXPECT_NE(unknown.body.find("listn"), std::string::npos) << unknown.body;
    auto now = http_get(config_port, "/v1/config/plexus-limits/default");
    EXPECT_NE(now.body.find(std::to_string(server_port)), std::string::npos) << now.body;

    limits.signal(SIGTERM);
    EXPECT_EQ(limits.wait(), 0) << limits.log();
    config.signal(SIGTERM);
    EXPECT_EQ(config.wait(), 0) << config.log();
}

TEST(DaemonSettings, TheConfigServerTakesAFileUnderItsFlags) {
    TempDir dir;
    const int file_port = free_port(), flag_port = free_port();
    auto file = dir.path() + "/config.yaml";
    write_file(file, "listen: 127.0.0.1:" + std::to_string(file_port) +
                         "\nanonymous: true\ndata_dir: " + dir.path() + "/from-file\nthreads: 1\n");
    {
        Process config({PLEXUS_BIN, "config", "serve", "--config", file}, {}, dir.path() + "/a.log");
        ASSERT_TRUE(eventually([&] { return http_get(file_port, "/health/ready").status == 200; }))
            << config.log();
        // anonymous: every caller may write; data_dir: that is where the documents are kept.
        auto put = http("PUT", file_port, "/v1/documents/catalog", R"({"content":{"page":2}})",
                        {{"Content-Type", "application/json"}});
        EXPECT_EQ(put.status, 200) << put.body;
        EXPECT_TRUE(std::filesystem::exists(dir.path() + "/from-file/config.db"));
        config.signal(SIGTERM);
        EXPECT_EQ(config.wait(), 0) << config.log();
    }
    {
        Process config({PLEXUS_BIN, "config", "serve", "--config", file, "--listen",
                        "127.0.0.1:" + std::to_string(flag_port)},
                       {}, dir.path() + "/b.log");
        ASSERT_TRUE(eventually([&] { return http_get(flag_port, "/health/ready").status == 200; }))
            << config.log();
        EXPECT_EQ(http_get(file_port, "/health/ready").status, 0);     // the flag won: nothing listens there
        auto got = http_get(flag_port, "/v1/config/catalog/default");  // the same data_dir as before
        EXPECT_EQ(got.status, 200) << got.body;
        EXPECT_NE(got.body.find("\"page\":2"), std::string::npos) << got.body;
        config.signal(SIGTERM);
        EXPECT_EQ(config.wait(), 0) << config.log();
    }
}

TEST(DaemonSettings, AMistakeInTheConfigServersFileStopsItsStartNamingFileLineAndKey) {
    TempDir dir;
    auto file = dir.path() + "/config.yaml";
    std::string out;
    write_file(file, "listen: 127.0.0.1:0\nanonymous: true\ndata_dri: " + dir.path() + "\n");
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "config", "serve", "--config", file}, dir.path() + "/1.log", out), 2);
    EXPECT_NE(out.find(file + ":3: data_dri: unknown key"), std::string::npos) << out;
    write_file(file, "anonymous: true\nstore: postgres\n");
    EXPECT_EQ(run_to_exit({PLEXUS_BIN, "config", "serve", "--config", file}, dir.path() + "/2.log", out), 2);
    EXPECT_NE(out.find(file + ":2: store: must be sqlite or etcd"), std::string::npos) << out;
    // It is the config server: there is no other to read its settings from.
    EXPECT_EQ(run_to_exit(
                  {PLEXUS_BIN, "config", "serve", "--config", file, "--config-server", "http://127.0.0.1:1"},
                  dir.path() + "/3.log", out),
              2);
}
