// inventory: stock per product, in its own SQLite database.
//
//   GET /stock               all stock levels
//   GET /stock/{product_id}  {"product_id":1,"quantity":12}
//   PUT /stock/{product_id}  {"quantity":12}: needs scope inventory:write, from an API key (an
//                            importer, a person's script) or an access token (the catalog's own
//                            service token); checked here, not only at the gateway

#include <boost/json.hpp>
#include <charconv>
#include <mutex>
#include <plexus/service.hpp>
#include <plexus/store/database.hpp>

namespace json = boost::json;

namespace {

struct Stock {
    std::mutex mutex;  // one connection, used from the blocking pool
    std::optional<plexus::store::Database> db;

    void open(const std::string& dir) {
        auto opened = plexus::store::Database::open(dir + "/inventory.db");
        if (!opened) throw std::runtime_error("cannot open inventory.db: " + opened.error().message());
        db.emplace(std::move(*opened));
        auto migrated = db->migrate({
            "CREATE TABLE stock (product_id INTEGER PRIMARY KEY, quantity INTEGER NOT NULL CHECK (quantity "
            ">= 0))",
            "INSERT INTO stock (product_id, quantity) VALUES (1, 25), (2, 0), (3, 140), (4, 7), (5, 60)",
        });
        if (!migrated) throw std::runtime_error("cannot migrate inventory.db: " + migrated.error().message());
    }

    // The readiness check: a one-row read. It runs on an io thread, so it never waits for the
    // connection: while a request holds it, the database is evidently answering.
    bool answers() {
        std::unique_lock lock(mutex, std::try_to_lock);
        if (!lock.owns_lock()) return true;
        return db && db->query("SELECT 1 FROM stock LIMIT 1").has_value();
    }
};

std::int64_t product_id(const plexus::Request& req) {
    auto text = req.param("product_id");
    std::int64_t id = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc{} || p != text.data() + text.size() || id <= 0) {
        throw plexus::HttpError(400, "Bad Request", "product id must be a positive integer");
    }
    return id;
}

}  // namespace

int main(int argc, char** argv) {
    plexus::Service svc{"inventory"};
    Stock stock;
    svc.on_start([&] { stock.open(svc.data_dir()); });
    svc.add_readiness_check("database", [&] { return stock.answers(); });

    svc.get("/stock", [&](plexus::Request&) -> plexus::Task<plexus::Response> {
        auto rows = co_await plexus::net::offload([&] {
            std::lock_guard lock(stock.mutex);
            return stock.db->query("SELECT product_id, quantity FROM stock ORDER BY product_id");
        });
        if (!rows) throw std::runtime_error(rows.error().message());
        json::array items;
        for (const auto& r : *rows) {
            items.push_back({{"product_id", r.get<std::int64_t>(0)}, {"quantity", r.get<std::int64_t>(1)}});
        }
        co_return plexus::json_response(200, json::serialize(json::object{{"items", items}}));
    });

    svc.get("/stock/{product_id}", [&](plexus::Request& req) -> plexus::Task<plexus::Response> {
        auto id = product_id(req);
        auto row = co_await plexus::net::offload([&] {
            std::lock_guard lock(stock.mutex);
            return stock.db->query("SELECT quantity FROM stock WHERE product_id = ?", id);
        });
        if (!row) throw std::runtime_error(row.error().message());
        std::int64_t quantity = row->empty() ? 0 : row->front().get<std::int64_t>(0);
        co_return plexus::json_response(
            200, json::serialize(json::object{{"product_id", id}, {"quantity", quantity}}));
    });

    svc.put("/stock/{product_id}",
            [&](plexus::Request& req) -> plexus::Task<plexus::Response> {
                auto id = product_id(req);
                boost::system::error_code ec;
                auto body = json::parse(req.body, ec);
                const json::value* q =
                    (!ec && body.is_object()) ? body.as_object().if_contains("quantity") : nullptr;
                if (!q || !q->is_int64() || q->as_int64() < 0) {
                    throw plexus::HttpError(400, "Bad Request",
                                            "body must be {\"quantity\": <non-negative integer>}");
                }
                auto quantity = q->as_int64();
                auto done = co_await plexus::net::offload([&] {
                    std::lock_guard lock(stock.mutex);
                    return stock.db->execute(
                        "INSERT INTO stock (product_id, quantity) VALUES (?, ?) "
                        "ON CONFLICT (product_id) DO UPDATE SET quantity = excluded.quantity",
                        id, quantity);
                });
                if (!done) throw std::runtime_error(done.error().message());
                plexus::telemetry::info(
                    "stock set", {{"product_id", id},
                                  {"quantity", quantity},
                                  {"by", std::string(req.headers.get("X-Plexus-Subject").value_or(""))}});
                co_return plexus::json_response(
                    200, json::serialize(json::object{{"product_id", id}, {"quantity", quantity}}));
            })
        .require({"inventory:write"}, {"jwt", "opaque", "api_key"});

    return svc.run(argc, argv);
}
