#pragma once
/// Base64 (RFC 4648) in its two alphabets: standard ('+', '/', padded with '=' to a multiple of
/// four: etcd's JSON gateway, HTTP Basic credentials) and url ('-', '_', no padding: JOSE, tokens).
/// Decoding is strict, so that one text means one byte string: a character outside the alphabet,
/// a wrong length or padding, or leftover bits that are not zero are refused.

#include <optional>
#include <string>
#include <string_view>

namespace plexus::core {

enum class Base64 { standard, url };

std::string base64_encode(std::string_view bytes, Base64 alphabet = Base64::standard);
/// The bytes of `text`, or nullopt when it is not base64 of `alphabet` (see above).
std::optional<std::string> base64_decode(std::string_view text, Base64 alphabet = Base64::standard);

}  // namespace plexus::core
