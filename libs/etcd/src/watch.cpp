#include <algorithm>

#include "call.hpp"
#include "codec.hpp"

namespace plexus::etcd::detail {

namespace {

// The most of an error answer's body kept to explain it.
constexpr std::size_t kMaxErrorBody = 4096;

// How one watch stream ended, when it was not simply broken.
struct StreamEnd {
    std::optional<WatchEnd> end;  // the watch is over
    std::string why;              // why the stream ended without ending the watch (for the detail)
};

}  // namespace

net::Task<WatchEnd> run_watch(std::shared_ptr<Client::State> state, WatchRequest request,
                              WatchHandler on_batch, WatchInterruptionHandler on_interrupted) {
    const auto& settings = state->settings;
    const auto& members = settings.members;
    // The revision to ask for when (re)creating the watch: 0 until a member fixes "now".
    std::int64_t resume_from = request.start_revision;
    // The last revision handed to on_batch; anything at or below it is a repeat.
    std::int64_t delivered = 0;
    MemberRounds rounds(*state);

    while (true) {
        const auto index = rounds.index();
        const auto& member = members[index];
        const auto req = gateway_request("/v3/watch", watch_body(request, resume_from, true));
        LineSplitter lines;
        StreamEnd result;
        int status = 0;
        std::string error_body;

        auto on_message = [&](std::string_view line) -> bool {
            auto msg = decode_watch_message(line);
            if (!msg) {
                result.why = std::string(error_detail(msg.error()));
                return false;
            }
            switch (msg->kind) {
                case WatchMessage::Kind::created:
                    if (resume_from == 0) resume_from = msg->header.revision + 1;
                    return true;
                case WatchMessage::Kind::progress:
                    // etcd tells progress only to a watch that has every event up to the header's
                    // revision: a resumption may start past it (a quiet watch keeps up with
                    // compaction), and this member works.
                    resume_from = std::max(resume_from, msg->header.revision + 1);
                    rounds.progress(*state);
                    return true;
                case WatchMessage::Kind::events: {
                    WatchBatch batch;
                    batch.revision = msg->header.revision;
                    batch.member = index;
                    for (auto& e : msg->events) {
                        if (e.kv.mod_revision > delivered) batch.events.push_back(std::move(e));
                    }
                    if (batch.events.empty()) return true;
                    delivered = batch.events.back().kv.mod_revision;
                    resume_from = delivered + 1;
                    // Progress made: the next failure starts a fresh round. (Not on `created`: a
                    // member that accepts a watch and then fails it would be retried at once,
                    // again and again.)
                    rounds.progress(*state);
                    if (!on_batch(batch)) {
                        result.end = WatchEnd{{}, 0, resume_from};
                        return false;
                    }
                    return true;
                }
                case WatchMessage::Kind::canceled:
                    if (msg->compact_revision > 0) {
                        result.end =
                            WatchEnd{make_error(errc::compacted,
                                                member_name(member) + ": watch from a compacted revision"),
                                     msg->compact_revision, resume_from};
                        return false;
                    }
                    if (judge(GatewayError{kGrpcUnknown, msg->cancel_reason}, true).try_next) {
                        result.why = "watch canceled: " + msg->cancel_reason;
                        return false;
                    }
                    result.end =
                        WatchEnd{make_error(errc::watch_canceled,
                                            member_name(member) + ": " +
                                                (msg->cancel_reason.empty() ? std::string("no reason given")
                                                                            : msg->cancel_reason)),
                                 0, resume_from};
                    return false;
                case WatchMessage::Kind::error: {
                    auto verdict = judge(msg->error, true);
                    auto what = describe(msg->error);
                    if (!verdict.try_next) {
                        result.end = WatchEnd{make_error(verdict.error, member_name(member) + ": " + what), 0,
                                              resume_from};
                    } else {
                        result.why = what;
                    }
                    return false;
                }
            }
            return false;
        };

        auto ec = co_await net::stream(
            member, req,
            [&](std::string_view data) {
                if (status != 200) {
                    error_body.append(
                        data.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
                    return error_body.size() < kMaxErrorBody;
                }
                return lines.feed(data, on_message);
            },
            settings.watch_idle_timeout, [&](const net::Response& head) { status = head.status; });

        if (status == 200 && !result.end && result.why.empty()) {
            auto rest = lines.take_rest();
            if (!rest.empty()) on_message(rest);
        }
        if (result.end) co_return std::move(*result.end);
        if (status != 0 && status != 200) {
            auto refused = error_of_answer(status, error_body);
            auto verdict = judge(refused, true);
            if (!verdict.try_next) {
                co_return WatchEnd{make_error(verdict.error, member_name(member) + ": " + refused.message), 0,
                                   resume_from};
            }
            result.why = describe(refused);
        }
        if (result.why.empty()) result.why = ec ? ec.message() : std::string("the stream ended");
        if (on_interrupted)
            on_interrupted(make_error(errc::unavailable, member_name(member) + ": " + result.why), index);

        if (auto pause = rounds.failed(*state); pause.count() > 0) co_await net::sleep_for(pause);
    }
}

}  // namespace plexus::etcd::detail
