// catalog: products, in its own SQLite database. A product's availability comes from the
// inventory service, called through discovery.
//
//   GET  /products          list
//   GET  /products/{id}     one product with {"availability": {...}} from inventory, or
//                           "availability": "unknown" when inventory cannot answer in time
//   POST /products          {"name": "...", "description": "...", "price_cents": 1299, "stock": 10}
//                           needs scope catalog:write (checked here too, not only at the gateway);
//                           "stock" (optional) is set in inventory with the catalog's own service
//                           token (scope inventory:write)

#include <boost/json.hpp>
#include <charconv>
#include <mutex>
#include <plexus/service.hpp>
#include <plexus/store/database.hpp>

namespace json = boost::json;

namespace {

struct Products {
    std::mutex mutex;  // one connection, used from the blocking pool
    std::optional<plexus::store::Database> db;

    void open(const std::string& dir) {
        auto opened = plexus::store::Database::open(dir + "/catalog.db");
        if (!opened) throw std::runtime_error("cannot open catalog.db: " + opened.error().message());
        db.emplace(std::move(*opened));
        auto migrated = db->migrate({
            "CREATE TABLE products (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
            "description TEXT NOT NULL, price_cents INTEGER NOT NULL CHECK (price_cents >= 0))",
            "INSERT INTO products (name, description, price_cents) VALUES "
            "('Espresso beans', 'Dark roast, 1 kg', 2490), "
            "('Pour-over kettle', 'Gooseneck, 1 l', 5900), "
            "('Paper filters', 'Size 02, 100 pieces', 690), "
            "('Hand grinder', 'Conical burrs', 8900), "
            "('Ceramic mug', '350 ml', 1490)",
        });
        if (!migrated) throw std::runtime_error("cannot migrate catalog.db: " + migrated.error().message());
    }

    // The readiness check: a one-row read. It runs on an io thread, so it never waits for the
    // connection: while a request holds it, the database is evidently answering.
    bool answers() {
        std::unique_lock lock(mutex, std::try_to_lock);
        if (!lock.owns_lock()) return true;
        return db && db->query("SELECT 1 FROM products LIMIT 1").has_value();
    }
};

json::object product_json(const plexus::store::Row& r) {
    return {{"id", r.get<std::int64_t>(0)},
            {"name", r.get<std::string>(1)},
            {"description", r.get<std::string>(2)},
            {"price_cents", r.get<std::int64_t>(3)}};
}

// How GET /products pages: live settings from the config server (section `listing`).
struct Listing {
    int default_limit = 20;
    int max_limit = 100;
};

void load_listing(plexus::core::SettingsReader& r, Listing& l) {
    r.field("default_limit", l.default_limit, 1, 1000);
    r.field("max_limit", l.max_limit, 1, 1000);
    if (l.default_limit > l.max_limit) r.fail("default_limit", "must not be above max_limit");
}

// A positive integer query parameter, or `fallback` when absent; 400 otherwise.
std::int64_t positive_param(const plexus::Request& req, std::string_view name, std::int64_t fallback) {
    auto text = req.query_param(name);
    if (!text) return fallback;
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc{} || p != text->data() + text->size() || v <= 0)
        throw plexus::HttpError(400, "Bad Request", std::string(name) + " must be a positive integer");
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    plexus::Service svc{"catalog"};
    Products products;
    auto inventory = svc.client("inventory");
    // Without inventory (down, slow, or its breaker open) a product is still served, with its
    // availability unknown. The client's timeout, retries and breaker come from --config.
    inventory.set_fallback(
        [](const plexus::CallFailure&) { return plexus::json_response(200, R"({"quantity":null})"); });
    // Calls to inventory carry the catalog's own token: setting stock needs inventory:write.
    inventory.use_service_token({"inventory:write"});
    svc.on_start([&] { products.open(svc.data_dir()); });
    svc.add_readiness_check("database", [&] { return products.answers(); });

    auto listing = svc.settings<Listing>("listing", load_listing);

    // A page of products in id order: ?limit=N (default and maximum from the `listing` settings)
    // and ?after=ID (the `next` of the page before).
    svc.get("/products", [&](plexus::Request& req) -> plexus::Task<plexus::Response> {
        auto page = listing.get();
        auto limit = positive_param(req, "limit", page->default_limit);
        if (limit > page->max_limit)
            throw plexus::HttpError(400, "Bad Request",
                                    "limit must be at most " + std::to_string(page->max_limit));
        auto after = req.query_param("after") ? positive_param(req, "after", 0) : 0;
        auto rows = co_await plexus::net::offload([&] {
            std::lock_guard lock(products.mutex);
            return products.db->query(
                "SELECT id, name, description, price_cents FROM products WHERE id > ? ORDER BY id LIMIT ?",
                after, limit + 1);
        });
        if (!rows) throw std::runtime_error(rows.error().message());
        json::object body;
        if (static_cast<std::int64_t>(rows->size()) > limit) {
            rows->pop_back();
            body["next"] = std::to_string(rows->back().get<std::int64_t>(0));
        }
        json::array items;
        for (const auto& r : *rows) items.push_back(product_json(r));
        body["items"] = std::move(items);
        co_return plexus::json_response(200, json::serialize(body));
    });

    svc.get("/products/{id}", [&](plexus::Request& req) -> plexus::Task<plexus::Response> {
        std::string id_text(req.param("id"));
        std::int64_t id = 0;
        auto [p, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
        if (ec != std::errc{} || p != id_text.data() + id_text.size() || id <= 0) {
            throw plexus::HttpError(400, "Bad Request", "product id must be a positive integer");
        }
        auto rows = co_await plexus::net::offload([&] {
            std::lock_guard lock(products.mutex);
            return products.db->query("SELECT id, name, description, price_cents FROM products WHERE id = ?",
                                      id);
        });
        if (!rows) throw std::runtime_error(rows.error().message());
        if (rows->empty()) throw plexus::HttpError(404, "Not Found", "no product " + id_text);
        auto product = product_json(rows->front());

        auto stock = co_await inventory.get(req, "/stock/" + id_text);
        if (stock.status != 200) {
            throw plexus::HttpError(502, "Bad Gateway", "inventory answered " + std::to_string(stock.status));
        }
        boost::system::error_code jec;
        auto sv = json::parse(stock.body, jec);
        const json::value* q = (!jec && sv.is_object()) ? sv.as_object().if_contains("quantity") : nullptr;
        if (q && q->is_null()) {
            product["availability"] = "unknown";
        } else if (q && q->is_int64()) {
            product["availability"] = {{"in_stock", q->as_int64() > 0}, {"quantity", q->as_int64()}};
        } else {
            throw plexus::HttpError(502, "Bad Gateway", "inventory sent an invalid answer");
        }
        product["served_by"] = svc.instance_id();
        co_return plexus::json_response(200, json::serialize(product));
    });

    svc.post("/products",
             [&](plexus::Request& req) -> plexus::Task<plexus::Response> {
                 boost::system::error_code ec;
                 auto body = json::parse(req.body, ec);
                 if (ec || !body.is_object())
                     throw plexus::HttpError(400, "Bad Request", "body must be a JSON object");
                 const auto& o = body.as_object();
                 auto* name = o.if_contains("name");
                 auto* description = o.if_contains("description");
                 auto* price = o.if_contains("price_cents");
                 if (!name || !name->is_string() || name->as_string().empty() ||
                     name->as_string().size() > 200) {
                     throw plexus::HttpError(400, "Bad Request",
                                             "name must be a non-empty string of at most 200 characters");
                 }
                 if (description && !description->is_string()) {
                     throw plexus::HttpError(400, "Bad Request", "description must be a string");
                 }
                 if (!price || !price->is_int64() || price->as_int64() < 0) {
                     throw plexus::HttpError(400, "Bad Request",
                                             "price_cents must be a non-negative integer");
                 }
                 auto* stock = o.if_contains("stock");
                 if (stock && (!stock->is_int64() || stock->as_int64() < 0)) {
                     throw plexus::HttpError(400, "Bad Request", "stock must be a non-negative integer");
                 }
                 std::string n(name->as_string());
                 std::string d = description ? std::string(description->as_string()) : "";
                 auto cents = price->as_int64();
                 auto created = co_await plexus::net::offload([&] {
                     std::lock_guard lock(products.mutex);
                     return products.db->query(
                         "INSERT INTO products (name, description, price_cents) VALUES (?, ?, ?) "
                         "RETURNING id, name, description, price_cents",
                         n, d, cents);
                 });
                 if (!created) throw std::runtime_error(created.error().message());
                 auto product = product_json(created->front());
                 auto id = std::to_string(created->front().get<std::int64_t>(0));
                 if (stock) {
                     auto quantity = stock->as_int64();
                     auto set = co_await inventory.put(req, "/stock/" + id,
                                                       json::serialize(json::object{{"quantity", quantity}}));
                     // The fallback answers {"quantity": null}: only inventory's own answer confirms it.
                     boost::system::error_code sec;
                     auto confirmed = set.status == 200 ? json::parse(set.body, sec) : json::value();
                     const auto* q = !sec && confirmed.is_object()
                                         ? confirmed.as_object().if_contains("quantity")
                                         : nullptr;
                     if (!q || !q->is_int64() || q->as_int64() != quantity) {
                         throw plexus::HttpError(502, "Bad Gateway",
                                                 "product " + id +
                                                     " was created, but its stock was not set: inventory "
                                                     "answered " +
                                                     std::to_string(set.status));
                     }
                     product["stock"] = quantity;
                 }
                 auto res = plexus::json_response(201, json::serialize(product));
                 res.headers.set("Location", "/products/" + id);
                 co_return res;
             })
        .require({"catalog:write"});

    return svc.run(argc, argv);
}
