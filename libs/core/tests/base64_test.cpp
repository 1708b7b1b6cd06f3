// Base64 in both alphabets, as etcd, HTTP Basic credentials and JOSE use it.

#include "plexus/core/base64.hpp"

#include <gtest/gtest.h>

using namespace plexus;

TEST(Base64, RoundTripsEveryLengthAndByte) {
    EXPECT_EQ(core::base64_encode(""), "");
    EXPECT_EQ(core::base64_encode("f"), "Zg==");
    EXPECT_EQ(core::base64_encode("fo"), "Zm8=");
    EXPECT_EQ(core::base64_encode("foo"), "Zm9v");
    EXPECT_EQ(core::base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(core::base64_encode(std::string(1, '\0')), "AA==");
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    for (std::size_t n = 0; n <= all.size(); n += 7) {
        auto part = all.substr(0, n);
        auto decoded = core::base64_decode(core::base64_encode(part));
        ASSERT_TRUE(decoded) << n;
        EXPECT_EQ(*decoded, part) << n;
    }
}

TEST(Base64, RejectsWhatIsNotPaddedStandardBase64) {
    EXPECT_FALSE(core::base64_decode("Zm9"));   // not a multiple of 4
    EXPECT_FALSE(core::base64_decode("Zm9*"));  // not in the alphabet
    EXPECT_FALSE(core::base64_decode("Zm-_"));  // URL alphabet
    EXPECT_FALSE(core::base64_decode("=m9v"));  // padding first
    EXPECT_EQ(*core::base64_decode(""), "");
}

TEST(Base64, UrlAlphabetHasNoPaddingAndIsStrict) {
    EXPECT_EQ(core::base64_encode("\xfb\xff", core::Base64::url), "-_8");
    EXPECT_EQ(*core::base64_decode("-_8", core::Base64::url), "\xfb\xff");
    EXPECT_FALSE(core::base64_decode("-_8=", core::Base64::url));   // padding
    EXPECT_FALSE(core::base64_decode("-_9", core::Base64::url));    // leftover bits not zero
    EXPECT_FALSE(core::base64_decode("+/8", core::Base64::url));    // standard alphabet
    EXPECT_FALSE(core::base64_decode("Zm9vY", core::Base64::url));  // a length base64 cannot have
}
