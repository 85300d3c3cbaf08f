// decode_split's task boundaries (test_infer's part for native/src/infer/linear.cc), both forms: the 90 / 10
// split (the default) and the guided one (APL_DEC_GUIDED=1). Included by test_infer.cc after its helpers.
#pragma once

static void test_decode_split() {
  std::vector<int64_t> b;
  decode_guided() = false;
  for (int64_t total : {1, 3, 4, 5, 7, 64, 301, 2560, 11264, 32000})
    for (int threads : {1, 2, 3, 4}) {
      decode_split(total, threads, b);
      CHECK(b.front() == 0 && b.back() == total, "decode_split(%lld, %d): ends %lld, %lld", (long long)total,
            threads, (long long)b.front(), (long long)b.back());
      for (size_t i = 1; i < b.size(); i++) {
        CHECK(b[i] > b[i - 1], "decode_split(%lld, %d): empty task %zu", (long long)total, threads, i);
        CHECK(i + 1 == b.size() || b[i] % 2 == 0, "decode_split(%lld, %d): odd boundary %lld",
              (long long)total, threads, (long long)b[i]);
      }
      if (threads == 1)
        CHECK(b.size() == 2, "decode_split(%lld, 1): %zu tasks", (long long)total, b.size() - 1);
      if (threads > 1 && total >= 64) {
        // the first `threads` parts are the big ones: equal, 90 % of the rows together
        CHECK(b.size() > (size_t)threads + 1, "decode_split(%lld, %d): no small parts", (long long)total,
              threads);
        for (int i = 1; i <= threads; i++)
          CHECK(b[(size_t)i] - b[(size_t)i - 1] == b[1], "decode_split(%lld, %d): unequal big parts",
                (long long)total, threads);
        CHECK(b[(size_t)threads] * 10 >= total * 9 - 20 * threads && b[(size_t)threads] * 10 <= total * 9,
              "decode_split(%lld, %d): big parts end at %lld", (long long)total, threads,
              (long long)b[(size_t)threads]);
      }
    }
  // guided: each task half of the rows left over the threads (even), never below the small size, so the
  // sizes do not grow (the last one may be the remainder)
  decode_guided() = true;
  for (int64_t total : {1, 3, 4, 5, 7, 64, 301, 2560, 11264, 32000})
    for (int threads : {1, 2, 3, 4}) {
      decode_split(total, threads, b);
      CHECK(b.front() == 0 && b.back() == total, "guided decode_split(%lld, %d): ends", (long long)total,
            threads);
      if (threads == 1 || total <= 2 * threads) {
        CHECK(b.size() == 2, "guided decode_split(%lld, %d): %zu tasks", (long long)total, threads,
              b.size() - 1);
        continue;
      }
      const int64_t small = std::max<int64_t>(2, total / (80 * threads) / 2 * 2);
      for (size_t i = 1; i < b.size(); i++) {
        const int64_t size = b[i] - b[i - 1], left = total - b[i - 1];
        CHECK(size > 0 && (i + 1 == b.size() || b[i] % 2 == 0), "guided decode_split(%lld, %d): task %zu",
              (long long)total, threads, i);
        CHECK(i + 1 == b.size() ? size <= std::max(small, left / (2 * threads) / 2 * 2)
                                : size == std::max(small, left / (2 * threads) / 2 * 2),
              "guided decode_split(%lld, %d): task %zu has %lld rows of %lld left", (long long)total, threads,
              i, (long long)size, (long long)left);
      }
    }
  decode_guided() = false;
}
