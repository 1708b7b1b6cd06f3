#include "headers.hpp"

#include <boost/json.hpp>
#include <stdexcept>

#include "plexus/core/settings.hpp"

namespace plexus::gateway::filters {

namespace {

// Fields the server and the gateway's forwarding own: changing them would break framing or the
// connection, or hide where a request came from.
constexpr std::string_view kOwned[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "te",
    "trailer",        "upgrade",           "host",       "expect",     "date"};

std::optional<std::string> name_problem(std::string_view name) {
    if (!net::is_token(name)) return "'" + std::string(name) + "' is not a header field name";
    for (auto owned : kOwned) {
        if (net::iequals(name, owned)) return "'" + std::string(name) + "' is set by the gateway itself";
    }
    return std::nullopt;
}

std::optional<std::string> edits_problem(const HeaderEdits& e) {
    for (const auto& name : e.remove) {
        if (auto p = name_problem(name)) return "remove: " + *p;
    }
    for (const auto* list : {&e.set, &e.add}) {
        const char* key = list == &e.set ? "set" : "add";
        for (const auto& [name, value] : *list) {
            if (auto p = name_problem(name)) return std::string(key) + ": " + *p;
            if (!net::is_field_value(value))
                return std::string(key) + "." + name + ": the value has control characters";
        }
    }
    return std::nullopt;
}

void read_edits(core::SettingsReader& r, HeaderEdits& e) {
    std::map<std::string, std::string> set, add;
    r.field("set", set);
    r.field("add", add);
    r.field("remove", e.remove);
    e.set.assign(set.begin(), set.end());
    e.add.assign(add.begin(), add.end());
    r.done();
    if (auto p = edits_problem(e)) fail_setting(r, *p);
}

boost::json::object edits_json(const HeaderEdits& e) {
    boost::json::object o;
    if (!e.set.empty()) {
        boost::json::object set;
        for (const auto& [n, v] : e.set) set[n] = v;
        o["set"] = std::move(set);
    }
    if (!e.add.empty()) {
        boost::json::object add;
        for (const auto& [n, v] : e.add) add[n] = v;
        o["add"] = std::move(add);
    }
    if (!e.remove.empty()) {
        boost::json::array remove;
        for (const auto& n : e.remove) remove.emplace_back(n);
        o["remove"] = std::move(remove);
    }
    return o;
}

class HeadersFilter final : public Filter {
  public:
    explicit HeadersFilter(const HeadersConfig& c)
        : Filter((c.request.empty() ? 0 : kRequestHead) | (c.response.empty() ? 0 : kResponseHead)),
          config_(c) {}

    FilterResult on_request_head(Exchange& x) const override {
        config_.request.apply(x.request.headers);
        return FilterResult::next;
    }
    void on_response_head(Exchange& x) const override { config_.response.apply(x.response.headers); }

  private:
    HeadersConfig config_;
};

class HeadersFactory final : public FilterFactory {
  public:
    std::string_view name() const noexcept override { return "headers"; }

    std::shared_ptr<const FilterConfig> parse(core::SettingsReader& r) const override {
        auto c = std::make_shared<HeadersConfig>();
        r.section("request", [&](core::SettingsReader& s) { read_edits(s, c->request); });
        r.section("response", [&](core::SettingsReader& s) { read_edits(s, c->response); });
        r.done();  // a misspelt key is the likelier mistake: name it first
        if (c->request.empty() && c->response.empty())
            r.fail("", "headers: nothing to change in request or response");
        return c;
    }

    std::shared_ptr<const Filter> create(const FilterConfig& config, FilterContext&) const override {
        const auto& c = dynamic_cast<const HeadersConfig&>(config);
        if (auto p = edits_problem(c.request)) throw std::invalid_argument("request." + *p);
        if (auto p = edits_problem(c.response)) throw std::invalid_argument("response." + *p);
        return std::make_shared<HeadersFilter>(c);
    }
};

}  // namespace

void HeaderEdits::apply(net::Headers& headers) const {
    for (const auto& name : remove) headers.remove(name);
    for (const auto& [name, value] : set) headers.set(name, value);
    for (const auto& [name, value] : add) headers.add(name, value);
}

void HeadersConfig::to_json(boost::json::object& out) const {
    if (!request.empty()) out["request"] = edits_json(request);
    if (!response.empty()) out["response"] = edits_json(response);
}

const FilterFactory& headers_factory() noexcept {
    static const HeadersFactory factory;
    return factory;
}

}  // namespace plexus::gateway::filters
