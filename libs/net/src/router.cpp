#include "plexus/net/router.hpp"

#include <algorithm>
#include <set>

namespace plexus::net {

PathPattern::PathPattern(std::string_view pattern) : text_(pattern) {
    if (pattern.empty() || pattern.front() != '/') {
        throw std::invalid_argument("path pattern must start with '/': " + std::string(pattern));
    }
    std::set<std::string, std::less<>> names;
    std::string_view rest = pattern.substr(1);
    while (true) {
        auto slash = rest.find('/');
        auto seg = rest.substr(0, slash);
        if (!segments_.empty() && segments_.back().kind == Segment::rest) {
            throw std::invalid_argument("a catch-all {name...} must be the last segment: " +
                                        std::string(pattern));
        }
        if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
            auto name = seg.substr(1, seg.size() - 2);
            auto kind = Segment::param;
            if (name.size() >= 3 && name.substr(name.size() - 3) == "...") {
                name.remove_suffix(3);
                kind = Segment::rest;
            }
            if (name.empty()) throw std::invalid_argument("empty parameter name in " + std::string(pattern));
            if (!names.emplace(name).second) {
                throw std::invalid_argument("duplicate parameter {" + std::string(name) + "} in " +
                                            std::string(pattern));
            }
            segments_.push_back({std::string(name), kind});
        } else {
            if (seg.find_first_of("{}") != std::string_view::npos) {
                throw std::invalid_argument("malformed segment '" + std::string(seg) + "' in " +
                                            std::string(pattern));
            }
            segments_.push_back({std::string(seg), Segment::literal});
        }
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
}

std::size_t PathPattern::literal_count() const noexcept {
    std::size_t n = 0;
    for (const auto& s : segments_) n += s.kind == Segment::literal;
    return n;
}

bool PathPattern::match(std::string_view path, PathParams* params) const {
    if (path.empty() || path.front() != '/') return false;
    std::size_t mark = params ? params->size() : 0;
    std::string_view rest = path.substr(1);
    auto fail = [&] {
        if (params) params->resize(mark);
        return false;
    };
    for (std::size_t i = 0; i < segments_.size(); ++i) {
        const auto& s = segments_[i];
        if (s.kind == Segment::rest) {
            if (params) params->emplace_back(s.text, std::string(rest));
            return true;
        }
        if (rest.data() == nullptr) return fail();  // path ran out
        auto slash = rest.find('/');
        auto seg = rest.substr(0, slash);
        if (s.kind == Segment::literal) {
            if (seg != s.text) return fail();
        } else {
            if (seg.empty()) return fail();
            if (params) {
                auto decoded = percent_decode(seg);
                if (!decoded) return fail();
                params->emplace_back(s.text, std::move(*decoded));
            }
        }
        if (slash == std::string_view::npos) {
            rest = std::string_view{};
            if (i + 1 < segments_.size()) {
                // Only a trailing catch-all may match nothing more.
                if (segments_[i + 1].kind == Segment::rest && i + 2 == segments_.size()) {
                    if (params) params->emplace_back(segments_[i + 1].text, std::string());
                    return true;
                }
                return fail();
            }
            return true;
        }
        rest.remove_prefix(slash + 1);
    }
    return fail();  // path has more segments than the pattern
}

void Router::add(std::string method, std::string_view pattern, Handler handler, std::size_t max_body_bytes) {
    Route route{std::move(method), PathPattern(pattern), std::move(handler), max_body_bytes};
    // Keep routes ordered by literal segments, most first; equal ones stay in insertion order.
    auto at = std::find_if(routes_.begin(), routes_.end(), [&](const Route& r) {
        return r.pattern.literal_count() < route.pattern.literal_count();
    });
    routes_.insert(at, std::move(route));
}

namespace {
// Whether the comma-separated `list` ("GET, PUT") holds `method`.
bool lists(std::string_view list, std::string_view method) {
    for (std::size_t pos = 0; pos < list.size();) {
        auto end = list.find(", ", pos);
        if (end == std::string_view::npos) end = list.size();
        if (list.substr(pos, end - pos) == method) return true;
        pos = end + 2;
    }
    return false;
}
}  // namespace

const Router::Route* Router::find(const Request& req, PathParams* params, std::string* allow,
                                  bool* malformed) const {
    auto path = req.path();
    for (const auto& r : routes_) {
        if (!r.pattern.match(path, nullptr)) continue;
        if (r.method == "*" || r.method == req.method || (req.method == "HEAD" && r.method == "GET")) {
            // The pre-check skips decoding; a parameter with a malformed escape does not match.
            if (params && !r.pattern.match(path, params)) {
                if (malformed) *malformed = true;
                continue;
            }
            return &r;
        }
        if (allow && !lists(*allow, r.method)) {  // two patterns may match with one method
            if (!allow->empty()) *allow += ", ";
            *allow += r.method;
        }
    }
    return nullptr;
}

Task<void> Router::dispatch(Request& req, Response& res) const {
    std::string allow;
    bool malformed = false;
    const Route* r = find(req, &req.params, &allow, &malformed);
    if (!r) {
        if (malformed) {
            res.problem(400, "Bad Request", "the path has a malformed percent-escape", req.path());
        } else if (!allow.empty()) {
            res.problem(405, "Method Not Allowed", "method " + req.method + " is not allowed here",
                        req.path());
            res.headers.set("Allow", allow);
        } else {
            res.problem(404, "Not Found", "no route for " + std::string(req.path()), req.path());
        }
        if (unmatched_) co_await unmatched_(req, res);
        co_return;
    }
    co_await r->handler(req, res);
}

void Router::set_unmatched(Handler handler) { unmatched_ = std::move(handler); }

std::size_t Router::body_limit(const Request& req) const {
    const Route* r = find(req, nullptr, nullptr, nullptr);
    return r ? r->max_body_bytes : 0;
}

Handler Router::handler() const {
    return [this](Request& req, Response& res) { return dispatch(req, res); };
}

BodyLimit Router::body_limit_fn() const {
    return [this](const Request& req) { return body_limit(req); };
}

}  // namespace plexus::net
