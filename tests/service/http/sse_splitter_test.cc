#include "service/http/sse_splitter.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::http {
namespace {

using ::testing::ElementsAre;
using ::testing::FieldsAre;
using ::testing::IsEmpty;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

// Three events shaped like a recorded streamGenerateContent?alt=sse body (CRLF framing). The
// second carries JSON-escaped control characters ("\r", "\n" as two-character escapes) and a
// "data:"-looking text inside the JSON, which must not confuse line splitting.
constexpr std::string_view kEvent1 =
    R"({"candidates": [{"content": {"parts": [{"text": "A red"}],"role": "model"},"index": 0}],)"
    R"("usageMetadata": {"promptTokenCount": 266,"totalTokenCount": 268},)"
    R"("modelVersion": "gemini-2.5-flash","responseId": "4HkhaaajEJaY0-kPyI_b2A4"})";
constexpr std::string_view kEvent2 =
    R"({"candidates": [{"content": {"parts": [{"text": " square\r\nand a \"blue\" data: circle\n"}],)"
    R"("role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 266,)"
    R"("totalTokenCount": 275},"modelVersion": "gemini-2.5-flash","responseId": "4Hkh"})";
constexpr std::string_view kEvent3 =
    R"({"candidates": [{"content": {"parts": [{"text": "."}],"role": "model"},)"
    R"("finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 266,)"
    R"("candidatesTokenCount": 10,"totalTokenCount": 276},"modelVersion": "gemini-2.5-flash"})";

std::string GeminiStream(std::string_view eol) {
  std::string out;
  for (std::string_view json : {kEvent1, kEvent2, kEvent3}) {
    out.append("data: ").append(json).append(eol).append(eol);
  }
  return out;
}

// `text` with every '\n' replaced by `eol`.
std::string WithLineEnding(std::string_view text, std::string_view eol) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out.append(eol);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct Collected {
  absl::Status status;
  std::vector<SseEvent> events;
};

// Feeds `body` in pieces cut at `cuts` (sorted offsets), then Finish().
Collected FeedPieces(std::string_view body, const std::vector<std::size_t>& cuts,
                     std::size_t max_event_bytes = 1 << 20) {
  SseSplitter splitter(max_event_bytes);
  Collected out;
  auto on_event = [&out](SseEvent e) { out.events.push_back(std::move(e)); };
  std::size_t start = 0;
  for (std::size_t cut : cuts) {
    out.status.Update(splitter.Feed(body.substr(start, cut - start), on_event));
    start = cut;
  }
  out.status.Update(splitter.Feed(body.substr(start), on_event));
  if (out.status.ok()) splitter.Finish(on_event);
  return out;
}

MATCHER_P2(IsEvent, data, raw, "") {
  return ::testing::ExplainMatchResult(FieldsAre(data, raw), arg, result_listener);
}

class SseSplitterLineEndingTest : public ::testing::TestWithParam<std::string_view> {};

TEST_P(SseSplitterLineEndingTest, SameEventsAtEverySplitPoint) {
  const std::string body = GeminiStream(GetParam());
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    const Collected got = FeedPieces(body, {cut});
    ASSERT_THAT(got.status, IsOk());
    ASSERT_THAT(got.events, ElementsAre(IsEvent(std::string(kEvent1), ""),
                                        IsEvent(std::string(kEvent2), ""),
                                        IsEvent(std::string(kEvent3), "")))
        << "split at byte " << cut;
  }
}

TEST_P(SseSplitterLineEndingTest, SameEventsAtEveryPairOfSplitPoints) {
  const std::string body = GeminiStream(GetParam());
  // Every pair of cuts around the first event boundary and a sample elsewhere.
  for (std::size_t a = 0; a <= body.size(); a += 7) {
    for (std::size_t b = a; b <= body.size(); b += 13) {
      const Collected got = FeedPieces(body, {a, b});
      ASSERT_THAT(got.status, IsOk());
      ASSERT_EQ(got.events.size(), 3u) << "split at " << a << " and " << b;
      EXPECT_EQ(got.events[1].data, kEvent2);
    }
  }
}

TEST_P(SseSplitterLineEndingTest, SameEventsByteByByte) {
  const std::string body = GeminiStream(GetParam());
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < body.size(); ++i) cuts.push_back(i);
  const Collected got = FeedPieces(body, cuts);
  ASSERT_THAT(got.status, IsOk());
  EXPECT_THAT(got.events, ElementsAre(IsEvent(std::string(kEvent1), ""),
                                      IsEvent(std::string(kEvent2), ""),
                                      IsEvent(std::string(kEvent3), "")));
}

TEST_P(SseSplitterLineEndingTest, BareErrorObjectAfterEventsShowsUpInRawAfterFinish) {
  const std::string_view eol = GetParam();
  const std::string expected_raw =
      "{\n"
      "  \"error\": {\n"
      "    \"code\": 503,\n"
      "    \"message\": \"The model is overloaded. Please try again later.\",\n"
      "    \"status\": \"UNAVAILABLE\"\n"
      "  }\n"
      "}";
  const std::string body = WithLineEnding(
      "data: " + std::string(kEvent1) + "\n\ndata: " + std::string(kEvent2) + "\n\n" +
          expected_raw + "\n",
      eol);
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    SseSplitter splitter;
    std::vector<SseEvent> events;
    auto on_event = [&events](SseEvent e) { events.push_back(std::move(e)); };
    ASSERT_THAT(splitter.Feed(std::string_view(body).substr(0, cut), on_event), IsOk());
    ASSERT_THAT(splitter.Feed(std::string_view(body).substr(cut), on_event), IsOk());
    // Not terminated by a blank line: nothing of the error object is emitted before Finish().
    ASSERT_EQ(events.size(), 2u) << "split at byte " << cut;
    splitter.Finish(on_event);
    ASSERT_THAT(events, ElementsAre(IsEvent(std::string(kEvent1), ""),
                                    IsEvent(std::string(kEvent2), ""), IsEvent("", expected_raw)))
        << "split at byte " << cut;
  }
}

INSTANTIATE_TEST_SUITE_P(LineEndings, SseSplitterLineEndingTest,
                         ::testing::Values("\r\n", "\n", "\r"),
                         [](const ::testing::TestParamInfo<std::string_view>& info) {
                           if (info.param == "\r\n") return std::string("CRLF");
                           if (info.param == "\n") return std::string("LF");
                           return std::string("CR");
                         });

TEST(SseSplitterTest, CrLfSplitBetweenCrAndLfIsOneLineEnd) {
  SseSplitter splitter;
  std::vector<SseEvent> events;
  auto on_event = [&events](SseEvent e) { events.push_back(std::move(e)); };
  ASSERT_THAT(splitter.Feed("data: a\r", on_event), IsOk());
  ASSERT_THAT(splitter.Feed("\ndata: b\r", on_event), IsOk());
  // A lone CR then LF would be two line ends (a blank line) and end the event early.
  EXPECT_THAT(events, IsEmpty());
  ASSERT_THAT(splitter.Feed("\n\r", on_event), IsOk());
  ASSERT_THAT(splitter.Feed("\n", on_event), IsOk());
  EXPECT_THAT(events, ElementsAre(IsEvent("a\nb", "")));
}

TEST(SseSplitterTest, MixedLineEndingsAndIgnoredFields) {
  SseSplitter splitter;
  std::vector<SseEvent> events;
  auto on_event = [&events](SseEvent e) { events.push_back(std::move(e)); };
  ASSERT_THAT(splitter.Feed(": keep-alive comment\r\n"
                            "event: message\n"
                            "id: 7\r"
                            "retry: 1000\r\n"
                            "data:no-space\n"
                            "data:  two spaces\r\n"
                            "\n"
                            "event: only-a-name\r\n\r\n"
                            "data: {\"x\": 1}\r\r",
                            on_event),
              IsOk());
  EXPECT_THAT(events, ElementsAre(IsEvent("no-space\n two spaces", ""), IsEvent("{\"x\": 1}", "")));
}

TEST(SseSplitterTest, EmptyDataLineIsAnEvent) {
  SseSplitter splitter;
  std::vector<SseEvent> events;
  auto on_event = [&events](SseEvent e) { events.push_back(std::move(e)); };
  ASSERT_THAT(splitter.Feed("data:\n\n", on_event), IsOk());
  EXPECT_THAT(events, ElementsAre(IsEvent("", "")));
}

TEST(SseSplitterTest, FinishFlushesUnterminatedDataEventOnce) {
  SseSplitter splitter;
  std::vector<SseEvent> events;
  auto on_event = [&events](SseEvent e) { events.push_back(std::move(e)); };
  ASSERT_THAT(splitter.Feed("data: {\"a\": 1}", on_event), IsOk());
  EXPECT_THAT(events, IsEmpty());
  splitter.Finish(on_event);
  splitter.Finish(on_event);
  EXPECT_THAT(events, ElementsAre(IsEvent("{\"a\": 1}", "")));
}

TEST(SseSplitterTest, OversizedEventIsResourceExhausted) {
  SseSplitter splitter(/*max_event_bytes=*/100);
  std::vector<SseEvent> events;
  auto on_event = [&events](SseEvent e) { events.push_back(std::move(e)); };
  const std::string small = "data: " + std::string(80, 'a') + "\r\n\r\n";
  ASSERT_THAT(splitter.Feed(small, on_event), IsOk());
  ASSERT_EQ(events.size(), 1u);
  // Many lines, each small, that together exceed the bound: the bound is per event.
  absl::Status status;
  for (int i = 0; i < 10 && status.ok(); ++i) {
    status = splitter.Feed("data: " + std::string(30, 'b') + "\r\n", on_event);
  }
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted));
  // Stays failed.
  EXPECT_THAT(splitter.Feed("\r\n", on_event), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(events.size(), 1u);
}

TEST(SseSplitterTest, OversizedSingleLineWithoutTerminatorIsResourceExhausted) {
  SseSplitter splitter(/*max_event_bytes=*/1000);
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) {
    status = splitter.Feed(std::string(100, 'x'), [](SseEvent) {});
  }
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted));
}

// Found by sse_splitter_fuzz (tests/fuzz/corpus/sse_splitter/raw_lines_at_the_bound): the '\n'
// joining non-field lines counts against the bound too, so no event is ever larger than it.
TEST(SseSplitterTest, JoinedRawLinesNeverExceedTheBound) {
  for (const int lines : {50, 51, 52}) {
    SseSplitter splitter(/*max_event_bytes=*/100);
    std::vector<SseEvent> events;
    std::string body;
    for (int i = 0; i < lines; ++i) body += "x\n";
    body += "\n";
    const absl::Status status =
        splitter.Feed(body, [&events](SseEvent e) { events.push_back(std::move(e)); });
    for (const SseEvent& e : events) EXPECT_LE(e.data.size() + e.raw.size(), 100u) << lines;
    if (lines * 2 - 1 <= 100) {
      EXPECT_THAT(status, IsOk()) << lines;
      ASSERT_EQ(events.size(), 1u) << lines;
    } else {
      EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted)) << lines;
    }
  }
}

}  // namespace
}  // namespace vision_gateway::http
