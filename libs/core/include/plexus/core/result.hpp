#pragma once
/// Result<T>: the value of an operation that can fail in ordinary ways (a lookup that finds
/// nothing, a peer that went away), or the error_code that says why. Each library defines its own
/// `errc` enum and error category; core::DetailedErrors (detailed_errors.hpp) makes one whose codes
/// carry a detail for people.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <string_view>

namespace plexus {

template <class T>
using Result = boost::system::result<T>;
using ErrorCode = boost::system::error_code;

namespace core {

/// Errors of the core library.
enum class errc {
    invalid_argument = 1,  ///< input that does not parse or is out of range
    not_found,             ///< a looked-up thing does not exist
    io_error,              ///< a file could not be read or written
};

/// The category of `core::errc`; thread-safe, a process-wide singleton.
const boost::system::error_category& core_category() noexcept;

inline ErrorCode make_error_code(errc e) noexcept { return {static_cast<int>(e), core_category()}; }

}  // namespace core
}  // namespace plexus

template <>
struct boost::system::is_error_code_enum<plexus::core::errc> : std::true_type {};
