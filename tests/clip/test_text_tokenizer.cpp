// The byte-level tokenizer: layout of BOS/bytes/EOS/PAD, round trips through decode, truncation
// at a whole UTF-8 character with a count, and refusal of a context that cannot hold BOS+EOS.
#include <boost/test/unit_test.hpp>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "data/text_tokenizer.h"

using tessera::data::ByteTokenizer;

BOOST_AUTO_TEST_SUITE(text_tokenizer)

BOOST_AUTO_TEST_CASE(layout_of_a_batch) {
  const ByteTokenizer tok(8);
  const auto batch = tok.encode_batch({"ab", "", "hello"});
  BOOST_TEST(batch.ids.shape() == (tessera::Shape{3, 8}));
  const auto ids = batch.ids.to_vector<int64_t>();
  const int64_t P = ByteTokenizer::kPad, B = ByteTokenizer::kBos, E = ByteTokenizer::kEos;
  const std::vector<int64_t> expected{B, 'a', 'b', E, P, P, P, P,  //
                                      B, E, P, P, P, P, P, P,      //
                                      B, 'h', 'e', 'l', 'l', 'o', E, P};
  BOOST_TEST(ids == expected, boost::test_tools::per_element());
  BOOST_TEST(batch.eos_index.to_vector<int64_t>() == (std::vector<int64_t>{3, 1, 6}), boost::test_tools::per_element());
  BOOST_TEST(batch.lengths.to_vector<int64_t>() == (std::vector<int64_t>{4, 2, 7}), boost::test_tools::per_element());
  BOOST_TEST(batch.truncated == 0);
  // EOS is the largest id, so argmax over a row finds it (what CLIP's pooling relies on).
  BOOST_TEST(tessera::argmax(batch.ids.to(tessera::DType::f32), 1).to_vector<int64_t>() ==
                 batch.eos_index.to_vector<int64_t>(),
             boost::test_tools::per_element());
  BOOST_TEST(tok.vocab_size() == 259);
}

BOOST_AUTO_TEST_CASE(round_trip_of_utf8) {
  const ByteTokenizer tok(64);
  for (const std::string text : {"a photo of a sneaker.", "Ünïcödé ✓ 日本語", ""}) {
    bool cut = true;
    const auto ids = tok.encode(text, &cut);
    BOOST_TEST(!cut);
    BOOST_TEST(int64_t(ids.size()) == int64_t(text.size()) + 2);
    BOOST_TEST(tok.decode(ids) == text);
  }
}

BOOST_AUTO_TEST_CASE(truncation_keeps_whole_characters_and_is_counted) {
  const ByteTokenizer tok(6);  // room for 4 bytes
  bool cut = false;
  BOOST_TEST(tok.decode(tok.encode("abcdefg", &cut)) == "abcd");
  BOOST_TEST(cut);
  // "ab" + "日" (3 bytes) = 5 bytes: the 3-byte character does not fit and is dropped whole.
  const auto ids = tok.encode("ab\xE6\x97\xA5", &cut);
  BOOST_TEST(cut);
  BOOST_TEST(tok.decode(ids) == "ab");
  BOOST_TEST(ids.back() == ByteTokenizer::kEos);
  const auto batch = tok.encode_batch({"abcd", "abcde", "x"});
  BOOST_TEST(batch.truncated == 1);
  BOOST_TEST(batch.eos_index.to_vector<int64_t>() == (std::vector<int64_t>{5, 5, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(context_too_short_is_an_error) {
  BOOST_CHECK_THROW(ByteTokenizer(1), tessera::Error);
  try {
    ByteTokenizer bad(0);
  } catch (const tessera::Error& e) {
    BOOST_TEST(std::string(e.what()).find("at least 2") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
