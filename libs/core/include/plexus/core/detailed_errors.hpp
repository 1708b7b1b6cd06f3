#pragma once
/// Error categories whose codes carry a detail for people ("constraint violated: UNIQUE
/// constraint failed: users.email"), while comparing equal to the plain code of their enum.
/// A library keeps one DetailedErrors for its enum and makes its codes through it:
///
///     const core::DetailedErrors& errors() {
///         static auto* e = new core::DetailedErrors(0x5e7cd0a13b9f4a21ULL, "plexus.etcd", message_of);
///         return *e;   // never destroyed: error codes may outlive static destruction
///     }
///     ErrorCode make_error(errc e, std::string_view detail) { return errors().make(int(e), detail); }
///
/// Each distinct detail is a category of its own (an error code keeps only a pointer to its
/// category), interned for the life of the process; categories with one non-zero id compare
/// equal, so every detailed code still equals the plain one. To bound memory, after 1024 distinct
/// details further ones are dropped (the plain code is returned), and details longer than 512
/// bytes are cut. Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "plexus/core/result.hpp"

namespace plexus::core {

class DetailedErrors {
  public:
    /// `id`: the category's id (non-zero, unique to it); `name`: its name ("plexus.etcd");
    /// `message`: the message of a code without detail.
    DetailedErrors(unsigned long long id, const char* name, std::string (*message)(int));
    ~DetailedErrors();
    DetailedErrors(const DetailedErrors&) = delete;
    DetailedErrors& operator=(const DetailedErrors&) = delete;

    /// The plain category: make_error_code() of the library's enum uses it.
    const boost::system::error_category& category() const noexcept;
    /// Code `value` whose message is the plain message followed by ": " + `detail`.
    ErrorCode make(int value, std::string_view detail) const;
    /// The detail of a code made by make() ("" for none, or a code of another category).
    std::string_view detail(const ErrorCode& ec) const noexcept;

    class Category;

  private:
    unsigned long long id_;
    const char* name_;
    std::string (*message_)(int);
    std::unique_ptr<Category> plain_;
    mutable std::mutex mutex_;
    mutable std::map<std::string, std::unique_ptr<Category>, std::less<>> detailed_;
};

}  // namespace plexus::core
