#include "sweeper.hpp"

namespace plexus::net {

Sweeper::Sweeper(asio::execution_context& ctx)
    : asio::execution_context::service(ctx), io_(static_cast<asio::io_context&>(ctx)) {
    head_.prev = head_.next = &head_;
    timer_ = std::make_unique<asio::steady_timer>(io_);
}

Sweeper& Sweeper::of(const Executor& ex) { return asio::use_service<Sweeper>(ex.context()); }

void Sweeper::add(Deadline& d) {
    d.owner = this;
    d.next = &head_;
    d.prev = head_.prev;
    head_.prev->next = &d;
    head_.prev = &d;
    arm();
}

void Sweeper::remove(Deadline& d) noexcept {
    if (!d.owner) return;
    d.prev->next = d.next;
    d.next->prev = d.prev;
    d.prev = d.next = nullptr;
    d.owner = nullptr;
}

void Sweeper::arm() {
    if (armed_ || stopped_) return;
    armed_ = true;
    timer_->expires_after(kTick);
    timer_->async_wait([this](boost::system::error_code ec) {
        armed_ = false;
        if (ec || stopped_) return;
        tick();
    });
}

void Sweeper::tick() {
    auto now = std::chrono::steady_clock::now();
    for (Deadline* d = head_.next; d != &head_;) {
        Deadline* next = d->next;
        if (d->at <= now && !d->expired && d->socket) {
            d->expired = true;
            boost::system::error_code ignored;
            d->socket->close(ignored);
        }
        d = next;
    }
    if (head_.next != &head_) arm();
}

void Sweeper::shutdown() {
    stopped_ = true;
    timer_.reset();
}

}  // namespace plexus::net
